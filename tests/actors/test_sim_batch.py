"""The batched simulated session (``actors.session.batch_sim``) against the actor path: the same session, byte for byte.

A simulated session (market = "sim") on the virtual clock runs batched by default: the seeded market stepped
straight into one pass of the pure core per step; ``sim.batched = false`` runs the embedded exchange's servers and
the feed, aggregator and executor actors over the in-memory network. Both must write the same fill events and
premium series and the same KPI document. Masked: the wall clock (``ts_utc`` in the fill events and the premium
series, the KPI's ``started_utc``: the session's start on the system clock) and, as for the batched replay
(tests/actors/test_replay_batch.py), the counters of how the feeds happened to batch their frames.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from markets import on_ou

from actors import config
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]
SCHEDULING = {"batches", "books", "books_superseded"}  # per feed: how frames happened to be batched
WALL_CLOCK = re.compile(rb'"ts_utc":"[^"]*"')


def _comparable(kpi: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in kpi.items() if k != "started_utc"}
    out["feeds"] = {venue: {k: v for k, v in f.items() if k not in SCHEDULING} for venue, f in kpi["feeds"].items()}
    return out


def _premium(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [row[:3] + row[4:] for row in rows]  # ts_utc (the fourth column) starts at the wall clock's time


def _session(run_virtual, folder: Path, base: str, overrides: dict[str, Any]) -> tuple[Any, str]:
    """A simulated session on the virtual clock: its result and its log's messages at INFO and above."""
    cfg = config.load(ROOT / "config" / base, overrides)
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        return run_virtual(cfg, SessionPaths(folder, "same")), "".join(lines)
    finally:
        logger.remove(sink)


def _both_paths(run_virtual, tmp_path: Path, base: str, duration_s: float, **sections: Any) -> dict[str, Any]:
    runs, logs = {}, {}
    for batched in (False, True):
        folder = tmp_path / ("batched" if batched else "actors")
        session = {"logs_dir": str(folder), "market": "sim", "duration_s": duration_s, **sections.get("session", {})}
        overrides = on_ou({**sections, "session": session})
        overrides["sim"]["batched"] = batched
        runs[batched], logs[batched] = _session(run_virtual, folder, base, overrides)
        assert runs[batched].kpi["status"] == "completed", runs[batched].kpi["fatal_errors"]
    actors, batched = runs[False], runs[True]
    assert "market path: batched" in logs[True] and "embedded exchange on" not in logs[True]
    assert "market path: actors (sim.batched = false)" in logs[False] and "embedded exchange on" in logs[False]
    fills = batched.paths.fill_events.read_bytes()
    assert WALL_CLOCK.sub(b"-", fills) == WALL_CLOCK.sub(b"-", actors.paths.fill_events.read_bytes())
    assert _premium(batched.paths.premium) == _premium(actors.paths.premium)
    assert _comparable(batched.kpi) == _comparable(actors.kpi)
    return batched.kpi


@pytest.mark.parametrize(
    ("base", "duration_s", "seed"),
    [
        ("d84_2.toml", 240, 84),  # calibrated fills
        ("d85_x.toml", 300, 85),  # depth sizing, split children
        ("d85_x.toml", 250.35, 3),  # a stop between two steps of the market
    ],
)
def test_a_simulated_session_runs_the_same_batched(tmp_path, run_virtual, base, duration_s, seed):
    kpi = _both_paths(run_virtual, tmp_path, base, duration_s, session={"seed": seed})
    assert kpi["fill_events"] >= 10
    # the feeds' counters the batched path keeps as the feed shells do: every frame the servers sent (the Upbit
    # server's {"status":"UP"} every 10 s among them), the pings, the one depth snapshot's weight
    assert kpi["feeds"]["upbit"]["messages"] > 2 * 10 * duration_s and kpi["feeds"]["upbit"]["pings_sent"] > 1
    assert kpi["feeds"]["binance"]["rest_weight"] > 0 and kpi["reconnects"] == {"upbit": 0, "binance": 0}


@pytest.mark.parametrize(
    ("sections", "reason"),
    [
        ({"chaos": {"kill_every_s": 10}}, "chaos kills need the actors"),
        ({"sim": {"fault_rate_per_min": 2}}, "[sim] faults are injected by the exchange's servers"),
        ({"session": {"record": True}}, "--record writes the frames as the feeds read them"),
        ({"sim": {"binance_overlap_after_snapshot": True}}, "sim.binance_overlap_after_snapshot: the Binance"),
        ({"sim": {"coins": 3}}, "sim.coins > 0: the many-coin market"),
    ],
)
def test_what_needs_the_actors_runs_on_them(tmp_path, run_virtual, sections, reason):
    session = {"logs_dir": str(tmp_path), "market": "sim", "duration_s": 5, **sections.get("session", {})}
    _, log = _session(run_virtual, tmp_path, "d84_2.toml", on_ou({**sections, "session": session}))
    assert f"market path: actors ({reason}" in log
    assert "market path: batched" not in log


def test_why_a_simulated_session_runs_on_the_actors():
    """Off the virtual clock (a live-paced session on the embedded exchange), with a step the feeds would find stale,
    a market of many pairs or sim.batched = false, the servers and the actors run."""
    from actors.session.batch_path import why_actors

    cfg = config.load(ROOT / "config" / "d84_2.toml", {"session": {"market": "sim"}})
    assert why_actors(cfg, virtual_clock=False) == "not on the virtual clock"
    assert why_actors(cfg, virtual_clock=True) is None
    stale = config.load(ROOT / "config" / "d84_2.toml", {"session": {"market": "sim"}, "sim": {"step_ms": 60_000}})
    assert "stale_after_s" in (why_actors(stale, virtual_clock=True) or "")
    market = config.load(ROOT / "config" / "kimchi_market.toml", {"session": {"market": "sim"}})
    assert "a market of many pairs" in (why_actors(market, virtual_clock=True) or "")
    forced = config.load(ROOT / "config" / "d84_2.toml", {"session": {"market": "sim"}, "sim": {"batched": False}})
    assert why_actors(forced, virtual_clock=True) == "sim.batched = false"
