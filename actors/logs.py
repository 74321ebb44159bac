"""The log sinks, set up once by each program's entry point (``configure_logging``).

stderr is for people (through the live panel's console while it owns the terminal); the session log
(``session_<id>.log``) takes every line, DEBUG included, for ``tail -f`` and for the tracebacks the terminal
leaves out. Actors only bind their name (``logger.bind(actor=name)``); data files are never written here.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from loguru import logger

from actors.clock import patch_record

if TYPE_CHECKING:
    from loguru import Message
    from rich.console import Console

# a replay's lines also say the recording's time ("rec 14:02:11.250 | ", actors.clock)
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[actor]: <12} | {extra[market_time]}{message}"


class LogFile:
    """The session log as a loguru sink: line-buffered, and on a write error (disk full) it reports once on
    stderr and stops, where loguru's own file sink would print a traceback for every line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, message: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(message)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            sys.stderr.write(
                f"log file {self.path}: cannot write ({exc.strerror or exc}); logging to the terminal only\n"
            )

    def stop(self) -> None:
        """Called by loguru when the sink is removed."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


def configure_logging(log_path: Path | None, *, stderr_level: str = "INFO", console: Console | None = None) -> None:
    """stderr for people (through ``console`` when a live view owns the terminal) and a file per session."""
    logger.remove()
    logger.configure(extra={"actor": "-", "market_time": ""}, patcher=patch_record)
    if console is None:
        logger.add(sys.stderr, level=stderr_level, format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False)
    else:
        shown = console

        def sink(message: Message) -> None:
            shown.print(str(message).rstrip("\n"), markup=False, highlight=False, soft_wrap=True)

        logger.add(sink, level=stderr_level, format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False)
    if log_path is not None:
        logger.add(LogFile(log_path), level="DEBUG", format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False)


def configure_run_logs(logs: dict[str, Path], *, stderr_level: str = "CRITICAL") -> None:
    """Sessions that share one pass of a replay (``actors.session.group``), one log file each: a line with a
    ``run`` key (``logger.contextualize(run=key)``) goes to that session's file, a line without one (the
    replay's own) to every file."""
    configure_logging(None, stderr_level=stderr_level)
    for key, path in logs.items():
        logger.add(
            LogFile(path),
            level="DEBUG",
            format=LOG_FORMAT,
            colorize=False,
            backtrace=False,
            diagnose=False,
            filter=lambda record, key=key: record["extra"].get("run", key) == key,  # type: ignore[misc]
        )
