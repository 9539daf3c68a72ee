"""``python -m msgnet``: see :mod:`msgnet.cli`."""

from msgnet.cli import main

raise SystemExit(main())
