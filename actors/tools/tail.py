"""Follow the current session's log: ``python -m actors.tools.tail [LOGS_DIR]`` (default ``logs``).

Follows ``<dir>/latest/session.log`` of the newest session under LOGS_DIR (searched recursively),
printing the last lines first, then new lines as they are written; when a newer session starts it
switches to it. Ctrl-C ends it.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections import deque
from pathlib import Path
from typing import TextIO

from actors.conventions import ExitCode
from actors.records.paths import file_pattern
from actors.tools import piped

POLL_S = 0.2


def newest_log(root: Path) -> Path | None:
    logs = [p for p in root.rglob(file_pattern("log")) if p.is_file()]
    return max(logs, key=lambda p: (p.stat().st_mtime, p.name)) if logs else None


def follow(root: Path, *, lines: int = 20, out: TextIO = sys.stdout, stop: threading.Event | None = None) -> int:
    """Print the newest log's last ``lines``, then what is written to it, every POLL_S, until ``stop`` is set
    (from another thread: a test, a program embedding this) or Ctrl-C."""
    stop = threading.Event() if stop is None else stop
    current = None
    handle = None
    while not stop.is_set():
        latest = newest_log(root)
        if latest is not None and latest != current:
            if handle is not None:
                handle.close()
            current = latest
            handle = open(current, encoding="utf-8", errors="replace")
            out.write(f"==> {current} <==\n")
            out.writelines(deque(handle, maxlen=lines))  # the last lines, then follow from the end
            out.flush()
        if handle is not None:
            chunk = handle.read()
            if chunk:
                out.write(chunk)
                out.flush()
        stop.wait(POLL_S)
    if handle is not None:
        handle.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.tools.tail",
        description="Follow the log of the newest session under LOGS_DIR (searched recursively), switching to "
        "a newer session when one starts; Ctrl-C ends it.",
    )
    parser.add_argument(
        "logs_dir", nargs="?", default="logs", metavar="LOGS_DIR", help="folder to search (default: %(default)s)"
    )
    parser.add_argument(
        "-n", "--lines", type=int, default=20, metavar="N", help="lines of history to show first (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    root = Path(args.logs_dir)
    if not root.is_dir():
        print(f"tail: {root} is not a folder", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return follow(root, lines=args.lines)
    except KeyboardInterrupt:
        return ExitCode.OK


def run() -> int:
    """The command (``python -m``, or the installed script): output into a pipe closed early is fine."""
    return piped(main)


if __name__ == "__main__":
    sys.exit(run())
