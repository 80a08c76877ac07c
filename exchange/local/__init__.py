"""The local stack: the broker launcher, the stack of background processes, the demo."""
