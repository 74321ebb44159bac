"""A session in a subprocess whose output is read as it comes, so a test waits for a log line (with a deadline)
instead of polling the session's files.

The session logs at INFO to stderr as well as to its log file, so "both feeds ready" or a connect error shows
up on stderr the moment it is logged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
READER_JOIN_S = 10.0  # after the process ended, its pipes reach their end at once


class SessionProcess:
    """``python -m actors.session ARGS`` run from the project's folder. Two threads read stdout and stderr line
    by line (neither pipe can fill up and block the session); ``wait_for_stderr`` returns once a line holds a
    text. As a context manager it kills the process if a test leaves early."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.session", *args],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._changed = threading.Condition()
        self._out: list[str] = []
        self._err: list[str] = []
        self._err_ended = False
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> SessionProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(READER_JOIN_S)  # quietly: the test's own outcome says more

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_for_stderr(self, text: str, timeout_s: float) -> None:
        """Return once a line of stderr contains ``text``; fail at the deadline or when stderr ends without it."""
        with self._changed:
            self._changed.wait_for(lambda: self._err_ended or self._seen(text), timeout=timeout_s)
            if self._seen(text):
                return
            why = f"stderr ended (exit status {self.proc.poll()})" if self._err_ended else f"{timeout_s:g} s passed"
            tail = "".join(self._err[-20:])
            raise AssertionError(f"the session never logged {text!r}: {why}; the last lines of stderr:\n{tail}")

    def communicate(self, timeout_s: float) -> tuple[str, str]:
        """Wait for the process to end; everything it wrote, as (stdout, stderr)."""
        self.proc.wait(timeout=timeout_s)
        self._join_readers()
        return "".join(self._out), "".join(self._err)

    def _seen(self, text: str) -> bool:
        return any(text in line for line in self._err)

    def _read(self, pipe: IO[str], lines: list[str]) -> None:
        with pipe:
            for line in pipe:
                with self._changed:
                    lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            if lines is self._err:
                self._err_ended = True
            self._changed.notify_all()

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(READER_JOIN_S)
            if reader.is_alive():
                raise AssertionError(f"the session's output was still open {READER_JOIN_S:g} s after it ended")
