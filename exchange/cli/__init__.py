"""The ``exchange`` command line: every command, on one shared context."""
