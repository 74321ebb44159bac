"""``python -m actors.tail``: the tail command (``actors.tools.tail``) under its shorter, earlier name, beside
``python -m actors.session`` and ``python -m actors.sweep`` (as ``actors.calibrate`` is)."""

import sys

from actors.tools.tail import run

if __name__ == "__main__":
    sys.exit(run())
