"""Same results: a d84_2-like session (the reference config, on the OU market for trades within seconds, 200 s
of trading on the virtual clock) writes fill events byte for byte as the stored reference, the wall-clock
field (``ts_utc``) masked. A change to the trader, the fill models, the simulated market or the pipeline that
moves any fill shows here first.

The fill events depend only on the config, the seeds and the virtual clock, not on the order in which Trio
runs tasks that are ready at the same instant (Trio picks that order at random; when the reference was made,
three runs with Trio's scheduler seeded 1, 2 and 3 wrote the same events). A change that is meant to move the
fills writes a new reference with ``UPDATE_REFERENCE=1`` (and the commit says why the fills moved)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

from markets import on_ou

from actors import config
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "d84_2_ou_fill_events.jsonl"
WALL_CLOCK = re.compile(rb'"ts_utc":"[^"]*"')
MASKED = b'"ts_utc":"-"'


def masked(data: bytes) -> bytes:
    return WALL_CLOCK.sub(MASKED, data)


def test_a_d84_2_like_session_writes_the_reference_fill_events(tmp_path, monkeypatch, run_virtual):
    monkeypatch.chdir(ROOT)  # the calibration path in the config is relative to the project
    cfg = config.load(
        "config/d84_2.toml",
        on_ou({"session": {"market": "sim", "duration_s": 200, "logs_dir": str(tmp_path)}}),
    )
    paths = SessionPaths(tmp_path, "20260101_000084")
    result = run_virtual(cfg, paths)
    assert result.status == "completed"
    written = paths.fill_events.read_bytes()
    assert len(WALL_CLOCK.findall(written)) == written.count(b"\n") >= 20  # every line has one, and is masked
    if os.environ.get("UPDATE_REFERENCE") == "1":
        REFERENCE.write_bytes(masked(written))
    expected = REFERENCE.read_bytes().splitlines(keepends=True)
    got = masked(written).splitlines(keepends=True)
    first = next((n for n, (a, b) in enumerate(zip(got, expected), 1) if a != b), min(len(got), len(expected)) + 1)
    assert got == expected, (
        f"the fill events differ from {REFERENCE.name} from line {first} on ({len(got)} lines, "
        f"{len(expected)} in the reference)"
    )


def test_the_mask_hides_only_the_wall_clock():
    line = b'{"t_s":1.5,"ts_utc":"2026-01-01T00:00:01.5+00:00","session_id":"x","trade_id":1}\n'
    assert masked(line) == b'{"t_s":1.5,"ts_utc":"-","session_id":"x","trade_id":1}\n'


def _premium_without_wall_clock(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [row[:3] + row[4:] for row in rows]  # ts_utc (the fourth column) starts at the wall clock's time


def test_the_premium_series_does_not_depend_on_the_order_trio_runs_tasks_of_one_instant(
    tmp_path, monkeypatch, run_virtual
):
    """Trio runs the tasks that are ready at the same instant in a random order (its scheduler's own random
    generator). The premium series is sampled once a second, the instants the simulated market steps on: it
    reads the market as the decisions last saw it, so it is the same whatever ran first. (When it read the
    books of that very instant, 34 of 120 rows differed between two scheduler seeds.)"""
    import trio._core._run as trio_run  # private: the generator Trio shuffles ready tasks with

    monkeypatch.chdir(ROOT)
    series = []
    for seed in (1, 2):
        monkeypatch.setattr(trio_run, "_r", random.Random(seed))
        out = tmp_path / str(seed)
        cfg = config.load(
            "config/d84_2.toml", on_ou({"session": {"market": "sim", "duration_s": 120, "logs_dir": str(out)}})
        )
        paths = SessionPaths(out, "20260101_000084")
        assert run_virtual(cfg, paths).status == "completed"
        series.append(_premium_without_wall_clock(paths.premium))
    assert len(series[0]) == 121 and series[0] == series[1]
