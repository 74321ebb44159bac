"""``python -m actors.decode``: the decode command (``actors.tools.decode``) under its shorter, earlier name, beside
``python -m actors.session`` and ``python -m actors.sweep`` (as ``actors.calibrate`` is)."""

import sys

from actors.tools.decode import run

if __name__ == "__main__":
    sys.exit(run())
