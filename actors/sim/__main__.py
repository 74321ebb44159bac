"""``python -m actors.sim``: the embedded exchange as a program (actors/sim/cli.py)."""

import signal
import sys

# from the start, SIGTERM stops the program as Ctrl-C does; either one while it is still importing (a few
# tenths of a second) ends it quietly, with status 0, as it does later
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    from actors.sim.cli import main
except KeyboardInterrupt:
    sys.exit(0)

sys.exit(main())
