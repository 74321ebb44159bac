"""The session report: acceptance criteria, distributions and plots from a session's files (the criteria's own
rules: tests/core/test_acceptance.py)."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from markets import on_ou

from actors import config
from actors.records.paths import SessionPaths, point_latest
from actors.tools.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def test_report_of_a_session(tmp_path, run_virtual):
    cfg = config.load(ROOT / "config" / "demo.toml", on_ou({"session": {"logs_dir": str(tmp_path), "duration_s": 60}}))
    paths = SessionPaths(tmp_path, "20260101_000020")
    result = run_virtual(cfg, paths)
    assert [c["passed"] for c in result.kpi["acceptance"]] == [True] * 7
    rows = paths.premium.read_text().splitlines()
    assert rows[0] == "t_s,premium_bps,baseline_bps,ts_utc,equity_usdt,binance_mid,upbit_mid,krw_per_usdt"
    assert len(rows) > 50
    for row in rows[1:]:  # the premium is the one of the mids and the FX beside it
        premium, binance, upbit, fx = (float(row.split(",")[i]) for i in (1, 5, 6, 7))
        assert premium == pytest.approx((upbit / fx / binance - 1) * 1e4, abs=1e-3)
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


def test_report_cli_errors(forked_cli, tmp_path):
    proc = forked_cli.run("actors.tools.report", str(tmp_path))  # tests/forked_cli.py: as a fresh interpreter
    assert proc.returncode == 2 and "no session files" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_sessions_with_different_l2_sources(forked_cli, tmp_path, run_virtual):
    folders = []
    for source in ("multi", "binance", "mock"):
        folder = tmp_path / source
        cfg = config.load(
            ROOT / "config" / "demo.toml",
            on_ou({"session": {"logs_dir": str(folder), "duration_s": 45}, "strategy": {"l2_source": source}}),
        )
        result = run_virtual(cfg, SessionPaths(folder, "20260101_000040"))
        assert result.kpi["l2_source"] == source
        folders.append(str(folder))
    proc = forked_cli.run("actors.tools.report", "--compare", *folders)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for source in ("multi", "binance", "mock"):
        assert f"| 20260101_000040 | {tmp_path / source} | {source} |" in text
    notes = text.split("## Differences against the first session")[1]
    assert "available_volume: mean" in notes and "with mock" in notes and "with binance" in notes


def test_a_virtual_time_report_tells_the_markets_time_and_its_links_resolve_from_latest(tmp_path, run_virtual):
    """60 simulated seconds take a second or two of wall time: fill events, the premium series and the report's
    trade table say the market's time (the start plus the session clock), not the wall clock's; and every link
    of latest/report.md (the plots, the trades CSV) resolves from latest/ as from the session's folder."""
    cfg = config.load(ROOT / "config" / "demo.toml", on_ou({"session": {"logs_dir": str(tmp_path), "duration_s": 60}}))
    paths = SessionPaths(tmp_path, "virtual")
    result = run_virtual(cfg, paths)
    started = datetime.fromisoformat(result.kpi["started_utc"])
    events = [json.loads(line) for line in paths.fill_events.read_text().splitlines()]
    assert len(events) >= 4 and events[-1]["t_s"] > 20
    for e in events:
        assert (datetime.fromisoformat(e["ts_utc"]) - started).total_seconds() == pytest.approx(e["t_s"], abs=0.5)
    last = paths.premium.read_text().splitlines()[-1].split(",")
    assert (datetime.fromisoformat(last[3]) - started).total_seconds() == pytest.approx(float(last[0]), abs=0.5)
    text = write_report(tmp_path, "virtual").read_text()
    first = events[0]
    market_time = datetime.fromisoformat(first["ts_utc"]).strftime("%H:%M:%S")
    assert f"| 1 | {first['t_s']:.1f} s ({market_time}) |" in text
    point_latest(paths)
    page = tmp_path / "latest" / "report.md"
    targets = re.findall(r"\]\(([^)]+)\)", page.read_text())
    assert len(targets) >= 6 and any(t.endswith(".csv") for t in targets)  # the trades and the plots
    for target in targets:
        assert (page.parent / target).is_file(), f"latest/report.md links {target}, which latest/ does not hold"
        assert (tmp_path / target).is_file()  # and from the session's own folder, as before
