"""Every option of the project's command-line tools says its default in --help (or is a flag, or is
required), and no description shows reStructuredText markup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from actors.sweep import cli as sweep_cli
from actors.tools import calibrate, decode, realism, report, tail
from actors.tools import exchange as sim_cli
from bench import market_holdout, soak
from bench import run as bench_run

ROOT = Path(__file__).resolve().parents[2]
CLIS: dict[str, Callable[[list[str]], int]] = {
    "actors.sweep": sweep_cli.main,
    "actors.tools.calibrate": calibrate.main,
    "actors.tools.decode": decode.main,
    "actors.tools.tail": tail.main,
    "actors.tools.report": report.main,
    "actors.tools.realism": realism.main,
    "actors.sim": sim_cli.main,
    "bench.run": bench_run.main,
    "bench.soak": soak.main,
    "bench.market_holdout": market_holdout.main,
}


def _help(main: Callable[[list[str]], int], capsys) -> str:
    sigterm = signal.getsignal(signal.SIGTERM)  # actors.sim's main installs its own handler first
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> list[tuple[str, str]]:
    """(invocation, help) of every argument: an entry starts two spaces in, its help may wrap below."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"  \S", line):
            invocation, _, help_ = line.strip().partition("  ")
            entries.append([invocation, help_.strip()])
        elif entries and re.match(r"\s{3,}\S", line):
            entries[-1][1] += " " + line.strip()
    return [(invocation, help_) for invocation, help_ in entries]


def _is_flag(invocation: str) -> bool:
    """``-h, --help`` or ``--resume``: no value follows any of its spellings."""
    return all(token.startswith("-") for token in invocation.replace(",", " ").split())


@pytest.mark.parametrize("name", list(CLIS))
def test_help_shows_every_default_and_no_markup(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = _help(CLIS[name], capsys)
    assert "``" not in text
    entries = _entries(text)
    assert any(invocation.startswith("-h") for invocation, _ in entries), text
    for invocation, help_ in entries:
        assert help_, f"{name}: {invocation} has no help"
        if invocation.startswith("-") and not _is_flag(invocation):
            assert "default" in help_ or "required" in help_, f"{name}: {invocation}: {help_}"


@pytest.mark.parametrize("short", ["report", "decode", "tail", "calibrate"])
def test_the_short_names_every_earlier_doc_used_still_run_the_tools(short):
    """``python -m actors.report`` (and decode, tail, calibrate) is the same command as ``actors.tools.<name>``."""
    proc = subprocess.run(
        [sys.executable, "-m", f"actors.{short}", "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m actors.tools.{short} ")
