"""The standalone exchange (``python -m actors.sim``) in a subprocess, for tools and tests that need one.

``ExchangeProcess(*args)`` starts it; ``endpoints()`` waits for its first stdout line (the endpoints'
JSON) within a deadline; ``stop()`` sends Ctrl-C and waits, killing it if it does not end in time.
Two threads read its stdout and stderr as they come, so neither pipe fills up and stalls it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
START_S = 15.0  # the interpreter's start, the config, a replay's pre-roll
STOP_S = 10.0


class ExchangeNotStarted(Exception):
    """The exchange printed no endpoints: it ended first (str() has its last stderr line) or took too long."""


class ExchangeProcess:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.sim", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []  # stderr lines so far (logs, status lines)
        self._readers = [
            threading.Thread(target=self._read_out, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read_err, args=(self.proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> ExchangeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def _read_out(self, pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                self._out.put(line)
        self._out.put(None)

    def _read_err(self, pipe: IO[str]) -> None:
        with pipe:
            self.err.extend(pipe)

    def endpoints(self, timeout_s: float = START_S) -> dict[str, str]:
        """The first stdout line: {"upbit_url", "binance_ws_url", "binance_rest_url"}."""
        try:
            line = self._out.get(timeout=timeout_s)
        except queue.Empty:
            raise ExchangeNotStarted(f"the exchange printed no endpoints within {timeout_s:g} s") from None
        if line is None:
            last = next((x.strip() for x in reversed(self.err) if x.strip()), "nothing on stderr")
            raise ExchangeNotStarted(f"the exchange ended (exit {self.proc.wait()}) before serving: {last}")
        endpoints: dict[str, str] = json.loads(line)
        return endpoints

    def stop(self, signum: int = signal.SIGINT, timeout_s: float = STOP_S) -> tuple[int | None, str, str]:
        """Send ``signum``; (exit status, or None if it had to be killed; the rest of stdout; stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        returncode: int | None
        try:
            returncode = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            returncode = None
        for reader in self._readers:
            reader.join(timeout_s)
        rest = []
        while (line := self._out.get_nowait()) is not None:
            rest.append(line)
        return returncode, "".join(rest), "".join(self.err)
