"""``python -m tsclient``: :mod:`tsclient.cli`."""

import sys

from tsclient.cli import main

sys.exit(main())
