"""``python -m phonehome``: the phonehome command."""

from phonehome._tools.cli import main

main()
