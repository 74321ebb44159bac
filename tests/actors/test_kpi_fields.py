"""What the KPI file says about a session beyond the counters: the calibration the fill model used, per-side
fill-ratio and slippage spreads that agree with the fill events, why no trade was taken, the equity column of
the premium series, and the reference config's acceptance thresholds (docs/kpis.md)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from markets import on_ou

from actors import config
from actors.core.kpi import Values
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]


def test_values_spread_is_exact_and_rounds_float_noise():
    v = Values()
    assert v.spread().count == 0 and v.spread().median is None
    for x in (0.1, 0.2, 0.3, 0.9):
        v.add(x)
    s = v.spread()
    assert (s.count, s.median) == (4, pytest.approx(0.25))
    assert s.mean == pytest.approx(0.375) and s.std == pytest.approx(statistics.pstdev([0.1, 0.2, 0.3, 0.9]))
    noise = Values()
    for x in (0.1 + 0.2 - 0.3, -4.1e-17):  # floating-point noise around zero
        noise.add(x)
    assert noise.spread().mean == 0.0 and str(noise.spread().mean) == "0.0"


def test_d84_2_kpi_names_its_calibration_spreads_and_thresholds(tmp_path, run_virtual, monkeypatch):
    monkeypatch.chdir(ROOT)  # the calibration path in the config is relative to the project
    cfg = config.load(
        ROOT / "config" / "d84_2.toml",
        on_ou({"session": {"logs_dir": str(tmp_path), "duration_s": 240, "market": "sim"}}),
    )
    assert (cfg.acceptance.min_fill_events, cfg.acceptance.min_volume_std_over_mean) == (50, 0.1)
    paths = SessionPaths(tmp_path, "20260101_000001")
    kpi = run_virtual(cfg, paths).kpi
    assert kpi["calibration"] == {
        "version": "d84_1",
        "path": "config/calibration/d84_1.json",
        "mode": "deterministic",
        "zones": ["5/5", "10/12", "15/10", "20/15"],  # numeric order
    }
    assert kpi["started_utc"].startswith("20") and kpi["started_utc"].endswith("+00:00")
    c2 = next(c for c in kpi["acceptance"] if c["id"] == "C2")
    assert c2["threshold"] == ">= 50"
    events = [json.loads(line) for line in paths.fill_events.read_text().splitlines()]
    assert events
    for side in ("BUY", "SELL"):
        legs = [e for e in events if e["side"] == side]
        ratios = [e["fill_ratio"] for e in legs]
        slips = [e["slippage_bps"] for e in legs if e["filled_qty"] > 0]
        assert kpi["fill_ratio"][side]["count"] == len(ratios)
        assert kpi["fill_ratio"][side]["median"] == pytest.approx(statistics.median(ratios), abs=1e-9)
        assert kpi["fill_ratio"][side]["std"] == pytest.approx(statistics.pstdev(ratios), abs=1e-9)
        assert kpi["slippage_bps"][side]["count"] == len(slips)
        assert kpi["slippage_bps"][side]["mean"] == pytest.approx(statistics.fmean(slips), abs=1e-9)
    # warm-up and views whose premium stayed inside the entry threshold are counted as refusals
    assert kpi["refusals"]["warmup"] > 0 and kpi["refusals"]["below_entry"] > 0
    rows = paths.premium.read_text().splitlines()
    equity_column = rows[0].split(",").index("equity_usdt")
    last_equity = float(rows[-1].split(",")[equity_column])
    realized = sum(e["trade_pnl_usdt"] for e in events if e["trade_pnl_usdt"] is not None)
    # the last sample is at most a second before the end: realized PnL then, plus what was open
    assert last_equity == pytest.approx(realized + kpi["unrealized_pnl_usdt"], abs=1.0)


def test_no_trade_when_warmup_outlasts_the_session(tmp_path, run_virtual):
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        {"session": {"logs_dir": str(tmp_path), "duration_s": 20}, "strategy": {"warmup_s": 600}},
    )
    kpi = run_virtual(cfg, SessionPaths(tmp_path, "20260101_000002")).kpi
    assert kpi["entry_trades"] == 0 and kpi["calibration"] is None
    assert set(kpi["refusals"]) == {"warmup"} and kpi["refusals"]["warmup"] > 10
    assert kpi["fill_ratio"]["BUY"] == {"count": 0, "mean": None, "median": None, "std": None}
