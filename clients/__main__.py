"""``python -m clients``: the ``alliance`` command line."""

from __future__ import annotations

import sys

from clients.cli import main

sys.exit(main())
