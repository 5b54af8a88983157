"""``python -m wirestream``: the same command as the ``wirestream`` script."""

from wirestream.cli import main

main()
