"""``python -m actors.session``: the session's command line (actors/cli.py)."""

import sys

from actors.cli import main

sys.exit(main())
