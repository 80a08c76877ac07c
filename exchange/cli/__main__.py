"""``python -m exchange.cli``: the same command line as the ``exchange`` script."""

from exchange.cli.main import main

main()
