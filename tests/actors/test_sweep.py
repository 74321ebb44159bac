"""python -m actors.sweep: grid parsing, a local sweep with a failing run, resume, and Ray when installed."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.sweep import SweepError, parse_grid, plan, row_from_document, write_tables

ROOT = Path(__file__).resolve().parents[2]
HFT = "recorded/hftbacktest/btcusdt_20240808.gz"


def _sweep(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "actors.sweep", "--config", "config/sweep.toml", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def test_grid_values_are_toml_and_split_outside_brackets():
    grid = parse_grid(
        [
            "strategy.entry_bps=8,10.5",
            "strategy.zones=[[5,5]],[[10,12],[20,15]]",
            'strategy.fill_model=simple,"calibrated"',
            "strategy.leg_risk=hedge",
        ]
    )
    assert grid == {
        "strategy.entry_bps": [8, 10.5],
        "strategy.zones": [[[5, 5]], [[10, 12], [20, 15]]],
        "strategy.fill_model": ["simple", "calibrated"],
        "strategy.leg_risk": ["hedge"],
    }
    for bad, message in (
        ("entry_bps=1", "dotted config key"),
        ("strategy.entry_bps", "KEY=V1,V2"),
        ("strategy.entry_bps=", "KEY=V1,V2"),
    ):
        with pytest.raises(SweepError, match=message):
            parse_grid([bad])
    with pytest.raises(SweepError, match="given twice"):
        parse_grid(["a.b=1", "a.b=2"])


def test_plan_ids_are_stable_and_distinct():
    grid = parse_grid(["strategy.entry_bps=8,10,12", "strategy.latency_ms=10,50"])
    tasks = plan("config/sweep.toml", ["x.gz", "y.gz"], grid, seed=3, duration_s=None)
    assert len(tasks) == 12 and len({t["run_id"] for t in tasks}) == 12
    assert [t["run_id"] for t in tasks] == [
        t["run_id"] for t in plan("config/sweep.toml", ["x.gz", "y.gz"], grid, seed=3, duration_s=None)
    ]
    assert tasks[0]["overrides"]["strategy"] == {"entry_bps": 8, "latency_ms": 10}
    assert tasks[0]["overrides"]["session"] == {"market": "replay", "seed": 3}
    assert tasks[-1]["overrides"]["replay"]["files"] == ["y.gz"]


def test_tables_sort_by_pnl_and_report_errors(tmp_path):
    rows = [
        {
            "run_id": "a",
            "recording": "r",
            "k.x": "1",
            "status": "completed",
            "pnl_usdt": -1.0,
            "trades": 1,
            "fill_events": 2,
            "fill_ratio_by_zone": {"10/12 BUY": 0.5},
            "reconnects": 0,
            "error": "",
        },
        {"run_id": "b", "recording": "r", "k.x": "2", "status": "failed", "error": "RecordingError: no book"},
        {
            "run_id": "c",
            "recording": "r",
            "k.x": "3",
            "status": "completed",
            "pnl_usdt": 2.0,
            "trades": 1,
            "fill_events": 2,
            "fill_ratio_by_zone": {},
            "reconnects": 1,
            "error": "",
        },
    ]
    write_tables(tmp_path, [row_from_document(r) for r in rows], ["k.x"])
    ids = [r["run_id"] for r in csv.DictReader((tmp_path / "results.csv").read_text().splitlines())]
    assert ids == ["c", "a", "b"]
    md = (tmp_path / "results.md").read_text()
    assert md.index("| c |") < md.index("| a |") < md.index("| b |")
    assert "failed: RecordingError: no book" in md and "10/12 BUY 0.500" in md


def test_local_sweep_with_a_failing_run_then_resume(tmp_path, fixtures):
    out = tmp_path / "sweep"
    broken = tmp_path / "no_snapshot.txt"  # diffs only: a replay cannot start a book from it
    broken.write_text(
        '1700000000000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",'
        '"E":1700000000000,"s":"BTCUSDT","U":1,"u":2,"b":[["100.0","1.0"]],"a":[]}}\n'
    )
    args = [
        "--replay",
        str(fixtures / HFT),
        str(broken),
        "--grid",
        "strategy.entry_bps=8,10,12",
        "--grid",
        "strategy.latency_ms=10,50",
        "--workers",
        "2",
        "--duration",
        "25",
        "--out",
        str(out),
    ]
    proc = _sweep(*args)
    assert proc.returncode == 1, proc.stderr  # some runs failed; all were reported
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    good = [r for r in rows if not r["error"]]
    bad = [r for r in rows if r["error"]]
    assert len(good) == 6 and len(bad) == 6
    assert all("RecordingError" in r["error"] for r in bad)
    assert all(r["status"] == "completed" and r["reconnects"] == 0 for r in good)
    assert (out / "heatmap.png").stat().st_size > 5000 and (out / "results.csv").exists()
    for r in good:
        run_dir = out / "runs" / r["run_id"]
        assert (run_dir / f"kpi_{r['run_id']}.json").exists()
        lines = (run_dir / f"fill_events_{r['run_id']}.jsonl").read_text().splitlines()
        assert len(lines) == r["fill_events"]
    md = (out / "results.md").read_text()
    assert md.count("| completed |") == 6 and md.count("RecordingError") == 6
    # without --resume the folder is protected; with it, done rows are skipped and failures retried
    proc = _sweep(*args)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    kept = [
        line
        for line in (out / "rows.jsonl").read_text().splitlines()
        if json.loads(line)["run_id"] != good[0]["run_id"]
    ]
    (out / "rows.jsonl").write_text("\n".join(kept) + "\n")
    proc = _sweep(*args, "--resume", "--engine", "local")
    assert "5 already done" in proc.stderr and "7 in" in proc.stderr
    again = {json.loads(line)["run_id"]: json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()}
    redone = again[good[0]["run_id"]]
    assert {k: v for k, v in redone.items() if k != "wall_s"} == {k: v for k, v in good[0].items() if k != "wall_s"}
    proc = _sweep(*args[:-2], "--out", str(tmp_path / "other"), "--grid", "strategy.nope=1")
    assert proc.returncode == 2 and "$.strategy.nope: unknown key" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is optional: pip install '.[ray]'")
def test_ray_gives_the_same_table_as_local(tmp_path, fixtures):
    tables = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        proc = _sweep(
            "--replay",
            str(fixtures / HFT),
            "--grid",
            "strategy.entry_bps=8,12",
            "--workers",
            "2",
            "--duration",
            "20",
            "--out",
            str(out),
            "--engine",
            engine,
        )
        assert proc.returncode == 0, proc.stderr
        tables[engine] = (out / "results.md").read_text()
    assert tables["local"] == tables["ray"]
