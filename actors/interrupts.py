"""Ctrl-C and SIGTERM for the whole life of a session process (docs/reliability.md)."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import trio
from loguru import logger

from actors.conventions import ExitCode
from actors.records.files import remove_temporaries

EXIT_INTERRUPTED = ExitCode.INTERRUPTED


class Interrupts:
    """Ctrl-C and SIGTERM, for the whole life of the process.

    The first one, in any phase, stops the session as if its time were up: the feeds stop, the pipeline
    drains, the final KPI file and the report are written, exit status 0 (``interrupted``). A second one,
    in any phase, exits at once with status 130: no traceback, no waiting. Nothing is lost by it: fill
    events are written line by line, the KPI file is replaced atomically, and a torn recording tail is
    read back as far as it goes.

    Inside the Trio run ``watch`` receives them (trio's signal receiver); before and after it, and while
    the final files are written, the process-level handlers ``install`` sets do the same.
    """

    def __init__(self) -> None:
        self.count = 0
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # a signal handler can interrupt a logging or printing call: only os.write is safe here
        self._count_or_exit(signum)
        os.write(2, f"{signal.Signals(signum).name} received: stopping (again to exit at once)\n".encode())
        if self._stop is not None and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._stop.set)

    def _count_or_exit(self, signum: int) -> None:
        self.count += 1
        if self.count > 1:
            remove_temporaries()  # a KPI snapshot or report file being written: the old file stays whole
            os.write(
                2,
                f"{signal.Signals(signum).name} received again: exited at once; the fill-event file is "
                "complete up to its last line\n".encode(),
            )
            os._exit(EXIT_INTERRUPTED)

    async def watch(self, stop: trio.Event) -> None:
        self._stop, self._token = stop, trio.lowlevel.current_trio_token()
        if self.count:
            stop.set()  # a signal came before the session started: it ends at once
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self._count_or_exit(signum)
                logger.bind(actor="session").warning(
                    "{} received: stopping (again to exit at once)", signal.Signals(signum).name
                )
                stop.set()
