"""The batched replay (``actors.session.batch``) against the actor path: the same session, byte for byte.

A direct replay on the virtual clock runs batched by default; ``replay.batched = false`` runs the feed,
aggregator and executor actors. Both must write the same fill events and premium series and the same KPI
document, except ``started_utc`` (the wall clock) and the counters of how the feeds happened to batch their
frames (``batches``, ``books``, ``books_superseded``), which depend on Trio's scheduling even between two runs
of the actor path. Covered: every shared recording (Binance-only hftbacktest with Upbit synthesised, the
cryptofeed Binance files, Upbit-only cryptofeed with Binance synthesised), the d84_2 and d85_x strategies
(calibrated fills, depth sizing with split children), and a two-venue recording of a simulated session
replayed through both paths.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import msgspec
import pytest
from loguru import logger
from markets import on_ou

from actors import config
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]
HFT = Path("recorded") / "hftbacktest" / "btcusdt_20240808.gz"
CF = Path("recorded") / "cryptofeed"
SCHEDULING = {"batches", "books", "books_superseded"}  # per feed: how frames happened to be batched


def _comparable(kpi: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in kpi.items() if k != "started_utc"}
    out["feeds"] = {venue: {k: v for k, v in f.items() if k not in SCHEDULING} for venue, f in kpi["feeds"].items()}
    return out


def _logged(run_virtual, cfg: config.Config, paths: SessionPaths) -> tuple[Any, str]:
    """The session's result and its log's messages at INFO and above."""
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        return run_virtual(cfg, paths), "".join(lines)
    finally:
        logger.remove(sink)


def _both_paths(run_virtual, tmp_path: Path, base: str, files: list[Path], **sections) -> dict[str, Any]:
    runs, logs = {}, {}
    for batched in (False, True):
        folder = tmp_path / ("batched" if batched else "actors")
        session = {"logs_dir": str(folder), "market": "replay", "duration_s": 600, **sections.pop("session", {})}
        overrides = on_ou({"session": session, **sections})
        overrides["replay"] = {"files": [str(f) for f in files], "as_fast_as_possible": True, "batched": batched}
        cfg = config.load(ROOT / "config" / base, overrides)
        runs[batched], logs[batched] = _logged(run_virtual, cfg, SessionPaths(folder, "same"))
        sections["session"] = {k: v for k, v in session.items() if k != "logs_dir"}
        assert runs[batched].kpi["status"] == "completed", runs[batched].kpi["fatal_errors"]
    actors, batched = runs[False], runs[True]
    assert "replay path: batched" in logs[True]
    assert "replay path: actors (replay.batched = false)" in logs[False]
    assert batched.paths.fill_events.read_bytes() == actors.paths.fill_events.read_bytes()
    assert batched.paths.premium.read_bytes() == actors.paths.premium.read_bytes()
    assert _comparable(batched.kpi) == _comparable(actors.kpi)
    return batched.kpi


def test_the_shared_binance_recording_replays_the_same_batched(tmp_path, fixtures, run_virtual):
    kpi = _both_paths(run_virtual, tmp_path, "demo.toml", [fixtures / HFT], session={"duration_s": 120})
    assert kpi["fill_events"] >= 5 and kpi["replay"]["synthesised"] == ["KRW-BTC", "KRW-USDT"]


def test_d85_x_depth_sizing_and_split_children_replay_the_same_batched(tmp_path, fixtures, run_virtual):
    kpi = _both_paths(run_virtual, tmp_path, "d85_x.toml", [fixtures / HFT], session={"duration_s": 200})
    assert kpi["orders"]["sizing"] == "depth"


def test_the_cryptofeed_binance_files_replay_the_same_batched(tmp_path, fixtures, run_virtual):
    quick = {"warmup_s": 1, "baseline_halflife_s": 2, "max_hold_s": 3, "zones": [[2, 2]]}
    files = [fixtures / CF / "BINANCE.ws.1.0", fixtures / CF / "BINANCE.http.0.0"]
    kpi = _both_paths(
        run_virtual, tmp_path, "demo.toml", files, feeds={"binance": {"symbol": "NKNUSDT"}}, strategy=quick
    )
    assert kpi["fill_events"] >= 2


def test_the_cryptofeed_upbit_file_replays_the_same_batched(tmp_path, fixtures, run_virtual):
    kpi = _both_paths(
        run_virtual, tmp_path, "demo.toml", [fixtures / CF / "UPBIT.ws.62.0"], feeds={"upbit": {"market": "KRW-WAVES"}}
    )
    assert "BTCUSDT" in kpi["replay"]["synthesised"]


@pytest.mark.parametrize("base", ["d84_2.toml", "d85_x.toml"])
def test_a_two_venue_recording_of_a_simulated_session_replays_the_same_batched(tmp_path, run_virtual, base):
    source = tmp_path / "source"
    cfg = config.load(
        ROOT / "config" / base,
        on_ou({"session": {"logs_dir": str(source), "duration_s": 60, "record": True, "market": "sim"}}),
    )
    recording = run_virtual(cfg, SessionPaths(source, "rec")).paths.recording
    kpi = _both_paths(run_virtual, tmp_path, base, [recording])
    assert kpi["replay"]["synthesised"] == [] and kpi["replay"]["recording_ended"]


def test_what_needs_the_actors_runs_on_them(tmp_path, fixtures, run_virtual):
    folder = tmp_path / "chaos"
    overrides = on_ou({"session": {"logs_dir": str(folder), "market": "replay", "duration_s": 30}})
    overrides["replay"] = {"files": [str(fixtures / HFT)], "as_fast_as_possible": True}
    overrides["chaos"] = {"kill_every_s": 10}
    _, log = _logged(run_virtual, config.load(ROOT / "config" / "demo.toml", overrides), SessionPaths(folder, "c"))
    assert "replay path: actors (chaos kills need the actors)" in log


def test_a_recording_with_a_gap_longer_than_stale_after_s_replays_on_the_actors(tmp_path, run_virtual):
    """A recording silent for longer than a feed's stale_after_s: the feed reconnects there, which only the actor
    path does. The pre-scan of the recording sends such a replay to the actors before it starts (the log says
    why): the default run completes and gives what replay.batched = false gives."""
    source = tmp_path / "source"
    cfg = config.load(
        ROOT / "config" / "d84_2.toml",
        on_ou({"session": {"logs_dir": str(source), "duration_s": 60, "record": True, "market": "sim"}}),
    )
    recording = run_virtual(cfg, SessionPaths(source, "rec")).paths.recording
    gapped = tmp_path / "gapped.jsonl.gz"
    with gzip.open(recording, "rb") as src, gzip.open(gapped, "wb") as out:
        for line in src:  # no stream frame of either venue from 20 s to 36 s (REST snapshots stay)
            record = msgspec.json.decode(line)
            if record["kind"] == "rest" or not 20.0 <= record["t_s"] < 36.0:
                out.write(line)
    stale = {"upbit": {"stale_after_s": 10}, "binance": {"stale_after_s": 10}}
    logs = {}
    for batched in (True, False):
        folder = tmp_path / ("default" if batched else "actors")
        overrides = on_ou({"session": {"logs_dir": str(folder), "market": "replay", "duration_s": 600}, "feeds": stale})
        overrides["replay"] = {"files": [str(gapped)], "as_fast_as_possible": True, "batched": batched}
        result, logs[batched] = _logged(
            run_virtual, config.load(ROOT / "config" / "d84_2.toml", overrides), SessionPaths(folder, "same")
        )
        assert result.kpi["status"] == "completed", result.kpi["fatal_errors"]
        assert result.kpi["replay"]["recording_ended"]
    assert "replay path: actors (the recording has no" in logs[True]
    assert "stale_after_s = 10" in logs[True]
    assert "replay path: batched" not in logs[True]


def test_a_recording_that_follows_within_the_limits_is_not_sent_to_the_actors(fixtures):
    """The pre-scan's verdict on the shared recording at the defaults, and with a stale_after_s it overruns."""
    from actors.session.batch_path import why_not_followed
    from actors.sim.recordings import Recording, scan

    found = scan(Recording.open([fixtures / HFT]))
    cfg = config.load(ROOT / "config" / "demo.toml")
    assert why_not_followed(cfg, ["BTCUSDT"], found) is None
    longest = found.silence_s[("binance", "BTCUSDT")]
    tight = config.load(ROOT / "config" / "demo.toml", {"feeds": {"binance": {"stale_after_s": longest}}})
    assert "no binance BTCUSDT frame" in (why_not_followed(tight, ["BTCUSDT"], found) or "")
