"""The session report: acceptance criteria, distributions and plots from a session's files (the criteria's own
rules: tests/core/test_acceptance.py)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors import config
from actors.records.paths import SessionPaths
from actors.tools.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def test_report_of_a_session(tmp_path, run_virtual):
    cfg = config.load(ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(tmp_path), "duration_s": 60}})
    paths = SessionPaths(tmp_path, "20260101_000020")
    result = run_virtual(cfg, paths)
    assert [c["passed"] for c in result.kpi["acceptance"]] == [True] * 7
    rows = paths.premium.read_text().splitlines()
    assert rows[0] == "t_s,premium_bps,baseline_bps,ts_utc,equity_usdt" and len(rows) > 50
    report = write_report(tmp_path)  # the latest session
    text = report.read_text()
    assert report == paths.report
    assert text.count("| PASS |") == 7 and "FAIL" not in text
    assert "| BUY | available_volume |" in text and "DISPERSED (values vary, std/mean " in text
    assert "Simple fill model (no calibration)" in text and "disagrees" not in text  # KPI medians agree
    for name in ("premium", "fill_ratio", "available_volume", "equity"):
        png = tmp_path / f"report_20260101_000020_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({png.name})" in text
    # every trade in the CSV; their PnL adds up to the KPI's, their fees to the KPI's fees (in USDT)
    with open(paths.trades, newline="") as f:
        trades = list(csv.DictReader(f))
    kpi = result.kpi
    assert len(trades) == kpi["entry_trades"] > 0
    assert sum(float(t["pnl_usdt"] or 0) for t in trades) == pytest.approx(kpi["pnl_usdt"], abs=1e-6)
    assert sum(t["exit_reason"] == "open at end" for t in trades) == kpi["open_trades"]
    closed = [t for t in trades if t["exit_reason"] in ("take_profit", "max_hold")]
    assert len(closed) == kpi["closed_trades"]
    assert f"- Closed trades: {kpi['closed_trades']} ({kpi['open_trades']} open at the end)" in text
    fees_usdt = sum(float(t["fees_usdt"]) for t in trades)
    assert f"| **all** | | | **{fees_usdt:,.4f}** |" in text
    for t in trades:
        assert t["direction"] in ("buy Binance / sell Upbit", "buy Upbit / sell Binance")
        assert f"| {t['trade_id']} | {float(t['opened_t_s']):.1f} s (" in text  # at most 20: all in the table


def test_report_cli_errors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "actors.tools.report", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and "no session files" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_sessions_with_different_l2_sources(tmp_path, run_virtual):
    folders = []
    for source in ("multi", "binance", "mock"):
        folder = tmp_path / source
        cfg = config.load(
            ROOT / "config" / "demo.toml",
            {"session": {"logs_dir": str(folder), "duration_s": 45}, "strategy": {"l2_source": source}},
        )
        result = run_virtual(cfg, SessionPaths(folder, "20260101_000040"))
        assert result.kpi["l2_source"] == source
        folders.append(str(folder))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "actors.tools.report", "--compare", *folders],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for source in ("multi", "binance", "mock"):
        assert f"| 20260101_000040 | {tmp_path / source} | {source} |" in text
    notes = text.split("## Differences against the first session")[1]
    assert "available_volume: mean" in notes and "with mock" in notes and "with binance" in notes
