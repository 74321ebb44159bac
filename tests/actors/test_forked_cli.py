"""The fork server (tests/forked_cli.py) runs a command line as a fresh interpreter would: the same exit status,
stdout and stderr, byte for byte, for a refusal, a help text, an uncaught exception and an address-space limit."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 512 << 20


def _real(module: str, *args: str, cwd: Path = ROOT, memory_limit: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def _same(real: subprocess.CompletedProcess, forked: subprocess.CompletedProcess) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)
    assert forked.args == real.args


@pytest.mark.parametrize(
    "module, args",
    [
        ("actors.session", ["--config", "config/nowhere.toml"]),  # a refusal: one line, exit 2
        ("actors.session", ["--config", "config/demo.toml", "--speed", "10"]),  # a usage error
        ("actors.session", ["--help"]),  # stdout, exit 0
        ("actors.tools.report", ["/dev/zero"]),  # a module run as __main__ that the server imported too
    ],
    ids=["refusal", "usage", "help", "report-device"],
)
def test_a_forked_command_writes_what_a_fresh_interpreter_writes(forked_cli, module, args):
    real = _real(module, *args)
    assert real.stdout or real.stderr
    _same(real, forked_cli.run(module, *args))


def test_an_uncaught_exception_is_a_traceback_and_exit_1_both_ways(forked_cli, tmp_path):
    (tmp_path / "boom.py").write_text("import sys\nprint('before', flush=True)\nraise ValueError('boom')\n")
    real, forked = _real("boom", cwd=tmp_path), forked_cli.run("boom", cwd=tmp_path)
    assert real.returncode == forked.returncode == 1 and real.stdout == forked.stdout == "before\n"
    assert real.stderr.endswith("ValueError: boom\n") and forked.stderr.endswith("ValueError: boom\n")
    assert "Traceback (most recent call last):" in forked.stderr


def test_the_address_space_limit_holds_in_the_forked_child(forked_cli, tmp_path):
    (tmp_path / "hog.py").write_text("b = bytearray(1 << 30)\n")  # 1 GiB under a 512 MiB limit
    real = _real("hog", cwd=tmp_path, memory_limit=LIMIT)
    forked = forked_cli.run("hog", cwd=tmp_path, memory_limit=LIMIT)
    assert real.returncode == forked.returncode == 1
    assert real.stderr.endswith("MemoryError\n") and forked.stderr.endswith("MemoryError\n")
    assert forked_cli.run("hog", cwd=tmp_path).returncode == 0  # the limit was the child's, not the server's


def test_a_command_over_its_time_is_killed_and_the_server_goes_on(forked_cli, tmp_path):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        forked_cli.run("slow", cwd=tmp_path, timeout=0.5)
    assert forked_cli.run("actors.session", "--config", "config/nowhere.toml").returncode == 2
