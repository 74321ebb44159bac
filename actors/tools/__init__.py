"""Command-line tools around sessions: report, calibrate, decode, tail (``python -m actors.tools.<name>``)."""

from __future__ import annotations

import os
import sys
from typing import Callable


def piped(main: Callable[[], int]) -> int:
    """Run a tool whose output may go to a pipe that closes early (``| head``): that is the reader's choice,
    not an error. Stop quietly (no traceback, nothing more written) with status 0."""
    try:
        return main()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0
