"""Command lines run as ``python -m MODULE ARGS`` would run them, without starting an interpreter for each.

Tests of refusals (a hostile config, a damaged file: one line on stderr and an exit status) ran a fresh
interpreter per case, and each spent about a second of CPU importing the project before it read a byte of
its input. Here one server process per pytest worker imports the project once; each command runs in a child
forked from it: the child gets its own working folder, address-space limit, stdin (/dev/null), stdout and
stderr (files), ``sys.argv`` and ``sys.path[0]`` as ``python -m`` sets them, runs the module as ``__main__``
with ``runpy`` (as ``-m`` does) and exits with the status Python would give: ``SystemExit``'s code, 1 and
the traceback on stderr for an uncaught exception, after the ``atexit`` handlers. What it leaves out is only
the interpreter's start and the imports, the same for every case: tests/actors/test_forked_cli.py runs
commands both ways and compares them, and the files that use this keep one case on a real interpreter.

Not for sessions that run on the real clock, send signals or measure memory: those stay real subprocesses.
"""

from __future__ import annotations

import json
import locale
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# What the server imports once: the heavy part of every command line run through it, not the modules run as
# __main__ themselves (a child runs those afresh, as `python -m` does).
PRELOAD = ("actors.cli", "actors.tools.report", "actors.tools.calibrate", "actors.tools.decode")

_SERVER = r"""
import atexit, importlib, json, os, resource, runpy, sys, traceback

for name in sys.argv[1:]:
    importlib.import_module(name)
requests = os.fdopen(os.dup(0), "r")
replies = os.fdopen(os.dup(1), "w")
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(null, 1)


def exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def child(request):
    requests.close()
    replies.close()
    os.chdir(request["cwd"])
    if request["memory_limit"] is not None:
        resource.setrlimit(resource.RLIMIT_AS, (request["memory_limit"],) * 2)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    sys.path[0] = request["cwd"]
    sys.argv = [request["module"], *request["args"]]
    module = sys.modules.get(request["module"])  # run as __main__ only, as `python -m` runs it
    if module is not None and not hasattr(module, "__path__"):
        del sys.modules[request["module"]]
    sys.modules.pop(request["module"] + ".__main__", None)
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


for line in requests:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(request)
    replies.write(json.dumps({"pid": pid}) + "\n")
    replies.flush()
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
    replies.flush()
"""


class ForkedCli:
    """One server process; ``run`` is ``subprocess.run([python, "-m", module, *args], capture_output=True,
    text=True)`` from a child forked from it. One command at a time."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        # one BLAS thread: a forked child keeps a threaded pool's stacks in its address space, but not its threads
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, *preload],
            cwd=ROOT,
            env={**ENV, "OPENBLAS_NUM_THREADS": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._pending = b""
        self._folder = tempfile.TemporaryDirectory(prefix="forked_cli_")

    def run(
        self, module: str, *args: str, cwd: Path = ROOT, memory_limit: int | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        out, err = Path(self._folder.name, "stdout"), Path(self._folder.name, "stderr")
        request = {
            "module": module,
            "args": list(args),
            "cwd": str(cwd),
            "memory_limit": memory_limit,
            "stdout": str(out),
            "stderr": str(err),
        }
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request).encode() + b"\n")
        self._proc.stdin.flush()
        pid = self._reply(timeout)["pid"]
        try:
            returncode = self._reply(timeout)["returncode"]
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)  # the child this server forked for us, and only it
            self._reply(timeout)
            raise
        encoding = locale.getpreferredencoding(False)  # what text=True decodes with
        argv = [sys.executable, "-m", module, *args]
        return subprocess.CompletedProcess(
            argv, returncode, out.read_text(encoding=encoding), err.read_text(encoding=encoding)
        )

    def _reply(self, timeout: float) -> dict:
        assert self._proc.stdout is not None
        fd, deadline = self._proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise subprocess.TimeoutExpired("forked command", timeout)
            data = os.read(fd, 65536)
            if not data:
                raise RuntimeError(f"the fork server ended (exit status {self._proc.wait()})")
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._folder.cleanup()
