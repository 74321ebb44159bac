"""Sessions sharing one pass of a replay (``actors.session.group``) against each run alone: byte for byte.

A sweep's grid points that differ only in the trader's sections run over one ``ReplayMarket``, one pacer and one
clock task. Each must write what it writes alone: the same fill events and premium series, the same KPI (but
``started_utc``, the wall clock). Covered: the shared Binance recording with Upbit synthesised (the demo and d85_x
strategies, thresholds, latencies, fill models and fees that differ), a replay stopped by its duration, and a
two-venue recording of a simulated session; configs whose market parts differ are refused with the sections named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from loguru import logger
from markets import on_ou

from actors import config, wiring
from actors.logs import configure_run_logs
from actors.net.memory import memory_network
from actors.records.paths import SessionPaths
from actors.session.group import SharedPassBroken, run_replay_group, run_sim_group, why_not_grouped

ROOT = Path(__file__).resolve().parents[2]
HFT = Path("recorded") / "hftbacktest" / "btcusdt_20240808.gz"


def _cfg(base: str, folder: Path, files: list[Path], duration_s: float, **sections: Any) -> config.Config:
    session = {"logs_dir": str(folder), "market": "replay", "duration_s": duration_s, **sections.pop("session", {})}
    overrides = on_ou({"session": session, **sections})
    overrides["replay"] = {"files": [str(f) for f in files], "as_fast_as_possible": True}
    return config.load(ROOT / "config" / base, overrides)


def _grouped(cfgs: list[config.Config], folders: list[Path], simulated: bool = False) -> list[Any]:
    """The sessions over one pass of their recording (or of their simulated market), each logging to its file."""
    replay = None if simulated else wiring.prepare_replay(cfgs[0])
    assert why_not_grouped(cfgs, replay) is None
    sessions = [(f"g{i}", cfg, SessionPaths(folder, "same")) for i, (cfg, folder) in enumerate(zip(cfgs, folders))]
    for folder in folders:
        folder.mkdir(parents=True)
    configure_run_logs({key: paths.log for key, _, paths in sessions})

    async def main() -> list[Any]:
        memory_network()
        return await (run_sim_group(sessions) if replay is None else run_replay_group(sessions, replay))

    try:
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        logger.remove()


def _same_as_alone(run_virtual, tmp_path: Path, base: str, files: list[Path], duration_s: float, variants) -> list:
    """Each variant (overrides of the trader's sections) alone, then all of them over one pass: the same files."""
    alone, cfgs, folders = [], [], []
    for i, sections in enumerate(variants):
        folder = tmp_path / f"alone{i}"
        alone.append(run_virtual(_cfg(base, folder, files, duration_s, **sections), SessionPaths(folder, "same")))
        folders.append(tmp_path / f"group{i}")
        cfgs.append(_cfg(base, folders[-1], files, duration_s, **sections))
    grouped = _grouped(cfgs, folders)
    assert len(grouped) == len(variants)
    for one, together in zip(alone, grouped):
        assert together.kpi["status"] == "completed", together.kpi["fatal_errors"]
        assert together.paths.fill_events.read_bytes() == one.paths.fill_events.read_bytes()
        assert together.paths.premium.read_bytes() == one.paths.premium.read_bytes()
        assert _comparable(together.kpi) == _comparable(one.kpi)
        log = together.paths.log.read_text()
        for line in ("replay path: batched", "replaying from", "stopping: cancelling the feeds", "book synced from"):
            assert log.count(line) == 1, (line, log)  # its own lines once, the replay's once, none of the others'
    return [one.kpi for one in alone]


def _comparable(kpi: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kpi.items() if k != "started_utc"}


def test_grid_points_of_the_demo_strategy_write_what_they_write_alone(tmp_path, fixtures, run_virtual):
    variants = [
        {},
        {"strategy": {"zones": [[5, 5]], "latency_ms": 80}},
        {"strategy": {"zones": [[3, 4], [8, 6]], "order_qty_btc": 0.02}, "fees": {"binance_bps": 2}},
    ]
    kpis = _same_as_alone(run_virtual, tmp_path, "demo.toml", [fixtures / HFT], 120, variants)
    fills = [kpi["fill_events"] for kpi in kpis]
    assert min(fills) >= 2 and len(set(fills)) > 1, fills  # they traded, and not alike: the traders differ


def test_d85_x_depth_sizing_grid_points_write_what_they_write_alone(tmp_path, fixtures, run_virtual):
    variants = [{}, {"strategy": {"latency_ms": 5, "latency_jitter_ms": 0}}]
    _same_as_alone(run_virtual, tmp_path, "d85_x.toml", [fixtures / HFT], 120, variants)


def _recorded(run_virtual, tmp_path: Path, base: str, seconds: float) -> Path:
    """A two-venue recording of a simulated session (``--record``) on the OU market."""
    source = tmp_path / "source"
    overrides = {"session": {"logs_dir": str(source), "duration_s": seconds, "record": True, "market": "sim"}}
    cfg = config.load(ROOT / "config" / base, on_ou(overrides))
    return run_virtual(cfg, SessionPaths(source, "rec")).paths.recording


def test_a_replay_played_to_its_end_with_sessions_that_stop_at_different_times(tmp_path, run_virtual):
    """The whole recording (its end stops every session), a loss stop in one of them."""
    recording = _recorded(run_virtual, tmp_path, "demo.toml", 120)
    variants = [{}, {"strategy": {"zones": [[2, 2]]}, "risk": {"max_loss_usdt": 0.01}}]
    _same_as_alone(run_virtual, tmp_path, "demo.toml", [recording], 3600, variants)


def test_a_two_venue_recording_of_a_simulated_session_shares_its_pass(tmp_path, run_virtual):
    recording = _recorded(run_virtual, tmp_path, "d84_2.toml", 60)
    variants = [{}, {"strategy": {"zones": [[4, 4]]}}, {"fees": {"upbit_bps": 1}}]
    _same_as_alone(run_virtual, tmp_path, "d84_2.toml", [recording], 600, variants)


@pytest.mark.parametrize(
    ("sections", "named"),
    [
        ({"aggregator": {"coalesce_ms": 20}}, "[aggregator]"),
        ({"session": {"seed": 99}}, "[session]"),
        ({"feeds": {"binance": {"view_depth": 7}}}, "[feeds]"),
    ],
)
def test_sessions_whose_market_differs_are_not_grouped(tmp_path, fixtures, sections, named):
    files = [fixtures / HFT]
    cfgs = [_cfg("demo.toml", tmp_path / "a", files, 60), _cfg("demo.toml", tmp_path / "b", files, 60, **sections)]
    why = why_not_grouped(cfgs, wiring.prepare_replay(cfgs[0]))
    assert why is not None and named in why, why


def test_a_group_that_needs_the_actors_is_not_grouped(tmp_path, fixtures):
    files = [fixtures / HFT]
    cfgs = [_cfg("demo.toml", tmp_path / n, files, 60, chaos={"kill_every_s": 10}) for n in "ab"]
    assert why_not_grouped(cfgs, wiring.prepare_replay(cfgs[0])) == "chaos kills need the actors"


# -- the simulated market ------------------------------------------------------------------------------

WALL_CLOCK = re.compile(rb'"ts_utc":"[^"]*"')  # a simulated session's market time starts at its wall clock's


def _sim_cfg(base: str, folder: Path, duration_s: float, seed: int, **sections: Any) -> config.Config:
    session = {"logs_dir": str(folder), "market": "sim", "duration_s": duration_s, "seed": seed}
    return config.load(ROOT / "config" / base, on_ou({**sections, "session": session}))


def _premium(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [row[:3] + row[4:] for row in rows]  # ts_utc (the fourth column) starts at the wall clock's time


@pytest.mark.parametrize(
    ("base", "duration_s", "seed", "market"),
    [
        ("d84_2.toml", 180, 84, {}),  # calibrated fills
        ("d85_x.toml", 150.35, 3, {}),  # depth sizing, split children; a stop between two steps of the market
        # the server's weight limit lets one snapshot through a minute (50 of 60): one asked for all, as alone
        ("d84_2.toml", 90, 84, {"binance_rest_weight_per_min": 60}),
    ],
)
def test_grid_points_on_one_simulated_market_write_what_they_write_alone(
    tmp_path, run_virtual, base, duration_s, seed, market
):
    variants = [{}, {"strategy": {"zones": [[4, 4]], "latency_ms": 70}}, {"fees": {"binance_bps": 1}}]
    alone, cfgs, folders = [], [], []
    for i, sections in enumerate(variants):
        folder = tmp_path / f"alone{i}"
        cfg = _sim_cfg(base, folder, duration_s, seed, sim=market, **sections)
        alone.append(run_virtual(cfg, SessionPaths(folder, "same")))
        folders.append(tmp_path / f"group{i}")
        cfgs.append(_sim_cfg(base, folders[-1], duration_s, seed, sim=market, **sections))
    for one, together in zip(alone, _grouped(cfgs, folders, simulated=True), strict=True):
        assert together.kpi["status"] == "completed", together.kpi["fatal_errors"]
        fills = together.paths.fill_events.read_bytes()
        assert WALL_CLOCK.sub(b"-", fills) == WALL_CLOCK.sub(b"-", one.paths.fill_events.read_bytes())
        assert _premium(together.paths.premium) == _premium(one.paths.premium)
        assert _comparable(together.kpi) == _comparable(one.kpi)
        log = together.paths.log.read_text()
        assert log.count("market path: batched") == 1 and log.count("market pass: one for 3 sessions") == 1, log
    if not market:  # they traded, and not alike
        assert len({one.kpi["pnl_usdt"] for one in alone}) >= 2 and max(one.kpi["fill_events"] for one in alone) >= 4


def test_simulated_sessions_of_two_seeds_are_not_grouped(tmp_path):
    cfgs = [_sim_cfg("d84_2.toml", tmp_path / "a", 60, 1), _sim_cfg("d84_2.toml", tmp_path / "b", 60, 2)]
    assert why_not_grouped(cfgs) == "their configs differ outside the trader's sections: [session]"
    faults = {"sim": {"fault_rate_per_min": 2.0}}
    cfgs = [_sim_cfg("d84_2.toml", tmp_path / n, 60, 1, **faults) for n in "ab"]
    assert why_not_grouped(cfgs) == "[sim] faults are injected by the exchange's servers"


@pytest.mark.parametrize("failing", [0, 1])  # the leader, whose feeds are everyone's, or a follower
def test_a_session_that_ends_on_its_own_breaks_the_shared_pass(tmp_path, fixtures, monkeypatch, failing):
    """A disk error in one session's folder stops that session alone: the others' results would no longer be
    those of each alone (the leader's feeds stop; a follower ends at another time), so the group fails with
    SharedPassBroken, which the sweep answers by running each alone (tests/actors/test_sweep_shared.py)."""
    import errno

    import actors.records.files as files

    write_all = files._write_all
    broken = tmp_path / f"group{failing}"

    def failing_write(f, data):
        if Path(f.name).parent == broken:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_all(f, data)

    monkeypatch.setattr(files, "_write_all", failing_write)
    variants = [{"strategy": {"zones": [[3, 4]]}}, {"strategy": {"zones": [[3, 4]], "latency_ms": 80}}]
    folders = [tmp_path / f"group{i}" for i in range(2)]
    cfgs = [_cfg("demo.toml", folder, [fixtures / HFT], 120, **v) for folder, v in zip(folders, variants)]
    with pytest.raises(SharedPassBroken, match="ended at different times"):
        _grouped(cfgs, folders)


def test_a_recording_with_corrupt_data_is_not_shared(tmp_path, monkeypatch):
    """Damage past the opening's pre-roll sends the recording's sessions to the actors, which replay up to it (the
    pre-scan's word, tests/actors/test_replay_direct.py): they are not grouped, and a sweep runs each alone."""
    from test_replay_direct import _hft_day

    from actors.sim import recordings

    monkeypatch.setattr(recordings, "PRESCAN_LINES", 1_000)
    path = tmp_path / "late.gz"
    _hft_day(path, 3_000)
    data = bytearray(path.read_bytes())
    for i in range(len(data) * 9 // 10, len(data) * 9 // 10 + 64):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    feeds = {"binance": {"symbol": "ABCUSDT"}}
    cfgs = [
        _cfg("demo.toml", tmp_path / n, [path], 400, feeds=feeds, strategy={"zones": [[z, z]]})
        for n, z in (("a", 2), ("b", 3))
    ]
    why = why_not_grouped(cfgs, wiring.prepare_replay(cfgs[0]))
    assert why is not None and why.startswith("the pre-scan stopped at bad data") and "corrupt gzip data" in why
