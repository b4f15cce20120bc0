"""``python -m phonehome``: the phonehome command."""

import sys

from phonehome._tools.cli import main

sys.exit(main())
