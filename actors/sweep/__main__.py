import sys

from actors.sweep.cli import main

sys.exit(main())
