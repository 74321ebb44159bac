"""A session's trader refuses a view no entry can come of before walking its books (``Trader.skim``, set by
``wiring.trader``): the same fill events and the same KPI, refusal counters included, as the full decision on
every view. A view reaches a decision only with both books' mids, so every side has a level and the walk's
premiums exist: the refusal the full decision would count is the skim's (BELOW_ENTRY or WARMUP)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markets import on_ou

from actors import config, wiring
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]
HFT = Path("recorded") / "hftbacktest" / "btcusdt_20240808.gz"
WALL_CLOCK = re.compile(rb'"ts_utc":"[^"]*"')


def _both(run_virtual, monkeypatch, tmp_path: Path, base: str, overrides: dict[str, Any]) -> list[Any]:
    made = wiring.trader
    results = []
    for skim in (True, False):

        def trader(*args: Any, skim: bool = skim) -> Any:
            one = made(*args)
            assert one.skim  # what sessions get
            one.skim = skim
            return one

        monkeypatch.setattr(wiring, "trader", trader)
        folder = tmp_path / ("skim" if skim else "full")
        cfg = config.load(
            ROOT / "config" / base, {**overrides, "session": {**overrides["session"], "logs_dir": str(folder)}}
        )
        results.append(run_virtual(cfg, SessionPaths(folder, "same")))
    skimmed, full = results
    assert WALL_CLOCK.sub(b"-", skimmed.paths.fill_events.read_bytes()) == WALL_CLOCK.sub(
        b"-", full.paths.fill_events.read_bytes()
    )
    assert {k: v for k, v in skimmed.kpi.items() if k != "started_utc"} == {
        k: v for k, v in full.kpi.items() if k != "started_utc"
    }
    return results


@pytest.mark.parametrize(("base", "seed"), [("d84_2.toml", 3)])  # the skim comes before any sizing
def test_a_simulated_session_decides_the_same_skimming(tmp_path, run_virtual, monkeypatch, base, seed):
    overrides = on_ou({"session": {"market": "sim", "duration_s": 300, "seed": seed}})
    skimmed, _ = _both(run_virtual, monkeypatch, tmp_path, base, overrides)
    refusals = skimmed.kpi["refusals"]
    assert skimmed.kpi["fill_events"] >= 4 and refusals["below_entry"] > 100 and refusals["warmup"] > 0


def test_a_replay_decides_the_same_skimming(tmp_path, run_virtual, monkeypatch, fixtures):
    overrides = on_ou({"session": {"market": "replay", "duration_s": 150}})
    overrides["replay"] = {"files": [str(fixtures / HFT)], "as_fast_as_possible": True}
    skimmed, _ = _both(run_virtual, monkeypatch, tmp_path, "demo.toml", overrides)
    assert skimmed.kpi["fill_events"] >= 4 and skimmed.kpi["refusals"]["below_entry"] > 100
