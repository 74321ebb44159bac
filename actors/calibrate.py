"""``python -m actors.calibrate``: the calibration command (``actors.tools.calibrate``) under a shorter name,
beside ``python -m actors.session`` and ``python -m actors.sweep``."""

import sys

from actors.tools.calibrate import main

if __name__ == "__main__":
    sys.exit(main())
