"""``python -m certs``: the PKI commands without the rest of the operator CLI."""

from __future__ import annotations

import sys

from certs.cli import main

sys.exit(main())
