"""``python -m frontrun`` is the ``frontrun`` command."""

import sys

from frontrun.cli import main

sys.exit(main())
