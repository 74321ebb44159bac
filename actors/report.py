"""``python -m actors.report``: the report command (``actors.tools.report``) under its shorter, earlier name, beside
``python -m actors.session`` and ``python -m actors.sweep`` (as ``actors.calibrate`` is)."""

import sys

from actors.tools.report import main

if __name__ == "__main__":
    sys.exit(main())
