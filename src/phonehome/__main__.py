"""``python -m phonehome``: the phonehome command."""

from phonehome._cli import main

main()
