"""A sweep's grid points sharing one pass of their recording (``actors.sweep.engines.run_tasks``): how tasks are
chunked for the workers, and rows and files that are those of each run alone."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from markets import ou_config

from actors.sweep import plan, plan_sim
from actors.sweep.engines import MAX_SHARED, chunks, run_task, run_tasks
from actors.sweep.results import SweepRow

ROOT = Path(__file__).resolve().parents[2]
HFT = "recorded/hftbacktest/btcusdt_20240808.gz"
WALL_CLOCK = re.compile(rb'"ts_utc":"[^"]*"')  # a simulated session's market time starts at its wall clock's


def _tasks(recordings: int, points: int) -> list[dict]:
    return plan(
        "c.toml",
        [f"r{i}.gz" for i in range(recordings)],
        {"strategy.entry_bps": list(range(points))},
        seed=None,
        duration_s=None,
    )


def test_a_recordings_points_go_to_as_few_chunks_as_keep_the_workers_busy():
    assert [len(c) for c in chunks(_tasks(1, 6), 2)] == [3, 3]
    assert [len(c) for c in chunks(_tasks(1, 6), 1)] == [6]
    assert [len(c) for c in chunks(_tasks(1, 6), 6)] == [1] * 6  # as many workers as runs: each alone
    assert [len(c) for c in chunks(_tasks(30, 6), 2)] == [6] * 30  # many recordings: one chunk each
    assert [len(c) for c in chunks(_tasks(1, 40), 2)] == [MAX_SHARED - 2, MAX_SHARED - 2, 12]  # at most MAX_SHARED
    many = chunks(_tasks(3, 5), 4)
    assert sorted(t["run_id"] for c in many for t in c) == sorted(t["run_id"] for t in _tasks(3, 5))
    assert all(len({t["recording"] for t in c}) == 1 for c in many)  # a chunk never mixes recordings
    sim = plan_sim("c.toml", (1, 2), {"strategy.entry_bps": [1, 2, 3]}, duration_s=None)
    assert [[t["seed"] for t in c] for c in chunks(sim, 2)] == [[1, 1, 1], [2, 2, 2]]  # one market: one seed


def _rows_and_files(rows: list[SweepRow], out: Path) -> dict[str, tuple]:
    """Each run's row (but its wall time), fill events and premium series (but a simulated market's wall clock)."""
    found = {}
    for row in rows:
        run = out / "runs" / row.run_id
        premium = [line.split(",") for line in (run / f"premium_{row.run_id}.csv").read_text().splitlines()]
        found[row.run_id] = (
            {k: v for k, v in msgspec.structs.asdict(row).items() if k != "wall_s"},
            WALL_CLOCK.sub(b"-", (run / f"fill_events_{row.run_id}.jsonl").read_bytes()),
            [line[:3] + line[4:] for line in premium],
        )
    return found


def test_shared_runs_give_the_rows_and_files_of_each_run_alone(tmp_path, fixtures):
    config = str(ou_config(tmp_path))
    grid = {"strategy.zones": [[[3, 4]], [[8, 6]]], "strategy.latency_ms": [10, 60]}
    tasks = plan(config, [str(fixtures / HFT)], grid, seed=None, duration_s=60)
    shared_out, alone_out = tmp_path / "shared", tmp_path / "alone"
    shared = run_tasks(tasks, str(shared_out))
    alone = [run_task(task, str(alone_out)) for task in tasks]
    assert [r.run_id for r in shared] == [t["run_id"] for t in tasks]
    assert _rows_and_files(shared, shared_out) == _rows_and_files(alone, alone_out)
    assert all(not r.error and r.status == "completed" for r in shared)
    assert len({r.pnl_usdt for r in shared}) > 1 and min(r.fill_events for r in shared) >= 2  # they traded, apart
    for row in shared:
        log = (shared_out / "runs" / row.run_id / f"session_{row.run_id}.log").read_text()
        assert "market pass: one for 4 sessions" in log and log.count("replaying from") == 1


def test_grid_points_whose_market_differs_run_alone_and_say_why(tmp_path, fixtures):
    config = str(ou_config(tmp_path))
    tasks = plan(config, [str(fixtures / HFT)], {"aggregator.coalesce_ms": [5, 20]}, seed=None, duration_s=30)
    rows = run_tasks(tasks, str(tmp_path / "out"))
    assert all(r.status == "completed" and not r.error for r in rows)
    for row in rows:
        log = (tmp_path / "out" / "runs" / row.run_id / f"session_{row.run_id}.log").read_text()
        assert "market pass: its own (their configs differ outside the trader's sections: [aggregator])" in log
        assert "market pass: one for" not in log


def test_grid_points_on_one_simulated_seed_share_its_market_and_give_what_they_give_alone(tmp_path):
    config = str(ou_config(tmp_path, ROOT / "config" / "d84_2.toml"))
    grid = {"strategy.zones": [[[3, 4]], [[6, 6]]]}
    tasks = plan_sim(config, (84,), grid, duration_s=150)
    shared = run_tasks(tasks, str(tmp_path / "shared"))
    alone = [run_task(task, str(tmp_path / "alone")) for task in tasks]
    assert _rows_and_files(shared, tmp_path / "shared") == _rows_and_files(alone, tmp_path / "alone")
    assert all(r.status == "completed" and not r.error for r in shared)
    assert len({r.pnl_usdt for r in shared}) > 1 and min(r.fill_events for r in shared) >= 4  # they traded, apart
    log = (tmp_path / "shared" / "runs" / tasks[0]["run_id"] / f"session_{tasks[0]['run_id']}.log").read_text()
    assert "market pass: one for 2 sessions" in log and log.count("market path: batched") == 1


def test_a_shared_pass_that_fails_gives_way_to_runs_alone(tmp_path, fixtures, monkeypatch):
    """Whatever takes the shared pass down (here: a planted failure), each grid point then runs alone, and its log
    says why."""
    import actors.session.group

    async def broken(sessions, replay):
        raise RuntimeError("planted")

    monkeypatch.setattr(actors.session.group, "run_replay_group", broken)
    tasks = plan(
        str(ou_config(tmp_path)), [str(fixtures / HFT)], {"strategy.entry_bps": [8, 12]}, seed=None, duration_s=20
    )
    rows = run_tasks(tasks, str(tmp_path / "out"))
    assert [r.status for r in rows] == ["completed", "completed"] and not any(r.error for r in rows)
    for row in rows:
        log = (tmp_path / "out" / "runs" / row.run_id / f"session_{row.run_id}.log").read_text()
        assert "market pass: its own (the shared pass failed: RuntimeError: planted)" in log
