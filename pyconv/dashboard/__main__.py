"""``python -m pyconv.dashboard``: see :mod:`pyconv.dashboard.command`."""
import sys

from .command import main

sys.exit(main())
