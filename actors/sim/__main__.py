"""``python -m actors.sim``: the embedded exchange as a program (actors/tools/exchange.py)."""

import signal
import sys

# from the start, SIGTERM stops the program as Ctrl-C does; either one while it is still importing (a few
# tenths of a second) ends it quietly, with status 0, as it does later
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    from actors.tools.exchange import main
except KeyboardInterrupt:
    sys.exit(0)

sys.exit(main())
