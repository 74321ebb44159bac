"""The documentation's examples, checked as they are written: the README's record-then-replay example makes a
trade, simulator.md's client example runs with what the project installs, slippage.md's recipe writes a new
file (not the tracked drift model), and every README example that needs ../shared says so."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def _blocks(doc: str) -> list[tuple[int, str]]:
    """(offset, text) of every fenced code block of a docs file (or the README)."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    return [(m.start(), m.group(1)) for m in FENCE.finditer(text)]


def _commands(block: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip().startswith(".venv/bin/")]


def _argv(command: str) -> list[str]:
    words = command.split()
    assert words[0] == ".venv/bin/python", command
    return [sys.executable, *words[1:]]


@pytest.mark.realtime
def test_the_readme_record_then_replay_example_makes_a_trade(tmp_path):
    """Record 100 s of the simulator (virtual clock), replay it at --speed 10 over loopback: at least one trade.
    The example used to record the demo's 60 s, whose replay at 10x ended before the warm-up did."""
    (block,) = [b for _, b in _blocks("README.md") if "--record" in b and "--speed 10" in b]
    record, replay = _commands(block)
    assert "--record" in record and "--speed 10" in replay
    logs = str(tmp_path / "logs")
    for command in (record, replay.replace("logs/demo/", f"{logs}/")):
        proc = subprocess.run(
            [*_argv(command), "--logs-dir", logs], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    (kpi_file,) = [p for p in (tmp_path / "logs").glob("kpi_*.json") if p.name != "kpi_rec.json"]
    kpi = json.loads(kpi_file.read_text())
    assert kpi["market"] == "replay" and kpi["status"] == "completed"
    assert kpi["entry_trades"] >= 1, kpi["refusals"]


@pytest.mark.realtime
def test_the_simulator_client_example_runs_with_what_the_project_installs():
    (code,) = [b for _, b in _blocks("docs/simulator.md") if "open_websocket_url" in b]
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the example starts the exchange with .venv/bin/python (make test makes it)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 8
    assert all(line.split()[0] in ("KRW-BTC", "KRW-USDT") for line in lines[:4])
    assert all(line.startswith("{'stream': 'btcusdt@") for line in lines[4:])


def test_the_slippage_recipe_writes_a_new_file_not_the_tracked_drift_model():
    (block,) = [b for _, b in _blocks("docs/slippage.md") if "calibrate --slippage" in b]
    (calibrate,) = [c for c in _commands(block) if "--slippage" in c]
    out = calibrate.split("--out ")[1].split()[0]
    tracked = tomllib.loads((ROOT / "config" / "d85_x.toml").read_text())["strategy"]["slippage_calibration"]
    assert out != tracked and not out.startswith("config/"), out


def test_every_readme_example_that_needs_shared_says_so():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    needing = [(at, block) for at, block in _blocks("README.md") if "../shared" in block]
    assert len(needing) >= 3
    for at, block in needing:
        before = text[max(0, at - 300) : at]
        assert "(needs ../shared)" in before, f"this README example needs ../shared and does not say so:\n{block}"
