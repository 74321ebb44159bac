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
from markets import ou_config

from actors.sweep import SweepError, parse_grid, parse_seeds, plan, plan_sim, row_from_document, write_tables

ROOT = Path(__file__).resolve().parents[2]
HFT = "recorded/hftbacktest/btcusdt_20240808.gz"


def _refused(forked_cli, *args: str) -> subprocess.CompletedProcess:
    """A sweep's command line that is refused before any run: forked from a process that imported the project
    once (tests/forked_cli.py: the same status and output as a fresh interpreter)."""
    return forked_cli.run("actors.sweep", "--config", "config/sweep.toml", *args)


def _sweep(*args: str, timeout: float = 240, config: str = "config/sweep.toml") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "actors.sweep", "--config", config, *args],
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


def test_local_sweep_with_a_failing_run_then_resume(forked_cli, tmp_path, fixtures):
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
    # each recording's six grid points in one chunk: the good one's share its pass, the broken one's run alone
    assert "12 runs in 2 chunks of one market, each to share one pass of it" in proc.stderr
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
        assert "market pass: one for 6 sessions" in (run_dir / f"session_{r['run_id']}.log").read_text()
        lines = (run_dir / f"fill_events_{r['run_id']}.jsonl").read_text().splitlines()
        assert len(lines) == r["fill_events"]
    md = (out / "results.md").read_text()
    assert md.count("| completed |") == 6 and md.count("RecordingError") == 6
    # without --resume the folder is protected; with it, done rows are skipped and failures retried
    proc = _refused(forked_cli, *args)
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
    proc = _refused(forked_cli, *args[:-2], "--out", str(tmp_path / "other"), "--grid", "strategy.nope=1")
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


# -- what a trader reads: grid keys that change nothing, progress lines, Ray that does not start, heatmap -----


def _args(tmp_path: Path, config: str, *grid: str, more: tuple[str, ...] = ()) -> list[str]:
    recording = tmp_path / "recording.gz"  # only its existence is checked before a run starts
    recording.write_bytes(b"")
    args = ["--config", config, "--replay", str(recording), "--out", str(tmp_path / "out"), *more]
    for spec in grid:
        args += ["--grid", spec]
    return args


@pytest.mark.parametrize(
    "config, grid, more, why, fix",
    [
        (
            "config/demo.toml",
            ("strategy.entry_bps=8,10,12", "strategy.tp_bps=10,12"),
            (),
            "[strategy] zones is set",
            "remove [strategy] zones from config/demo.toml or sweep strategy.zones",
        ),
        ("config/demo.toml", ("strategy.tp_bps=10,12",), (), "zones is set", "sweep strategy.zones"),
        (
            "config/sweep.toml",
            ("strategy.calibration_mode=deterministic,stochastic",),
            (),
            "fill_model is 'simple'",
            "sweep strategy.fill_model too",
        ),
        ("config/sweep.toml", ("fx.fixed_krw_per_usdt=1300,1400",), (), "fx.source is 'upbit'", "source = 'fixed'"),
        ("config/sweep.toml", ("chaos.actors=['executor'],['aggregator']",), (), "kill_every_s is 0", "kill_every_s"),
        ("config/sweep.toml", ("replay.speed=1,10",), (), "virtual clock", "remove this grid key"),
        ("config/sweep.toml", ("replay.files=['a'],['b']",), (), "--replay recording", "remove this grid key"),
        ("config/sweep.toml", ("session.seed=1,2",), ("--seed", "3"), "--seed 3 sets session.seed", "remove --seed"),
    ],
)
def test_a_grid_key_that_changes_nothing_is_refused(tmp_path, capsys, config, grid, more, why, fix):
    from actors.sweep.cli import main

    assert main(_args(tmp_path, config, *grid, more=more)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"sweep error: --grid {grid[0].split('=')[0]}: ")
    assert "every value would give the same runs" in err and why in err and fix in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_grid_key_that_changes_some_runs_is_accepted(tmp_path):
    from actors.sweep.cli import _checked, build_parser

    # entry_bps is idle where zones are set, but not at the points where the grid empties them
    args = build_parser().parse_args(
        _args(tmp_path, "config/demo.toml", "strategy.zones=[],[[5,5]]", "strategy.entry_bps=8,10")
    )
    _base, grid, tasks, _keys = _checked(args)
    assert list(grid) == ["strategy.zones", "strategy.entry_bps"] and len(tasks) == 4
    # sweeping the key that makes another one count: fill_model with calibration_mode
    args = build_parser().parse_args(
        _args(
            tmp_path,
            "config/sweep.toml",
            "strategy.fill_model=simple,calibrated",
            "strategy.calibration_mode=deterministic,stochastic",
            more=("--seed", "1"),
        )
    )
    with pytest.raises(Exception, match="calibration file path"):  # the calibrated points still need a file
        _checked(args)


def test_progress_lines_show_each_runs_grid_values(capsys):
    from actors.sweep.cli import _Progress
    from actors.sweep.results import SweepRow

    values = {"strategy.entry_bps": "10", "strategy.tp_bps": "12"}
    progress = _Progress(6, 2)
    progress.row(SweepRow(run_id="r0_a", recording="x.gz", values=values, status="completed", error="",
                          pnl_usdt=1.5, trades=3, wall_s=2.0))  # fmt: skip
    progress.close()
    several = _Progress(4, 0, recordings=2)
    several.row(SweepRow(run_id="r1_b", recording="y.gz", values=values, status="failed", error="RecordingError: x"))
    several.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("run 3/6 strategy.entry_bps=10 strategy.tp_bps=12: PnL +1.5000 USDT, 3 trades (2.0 s")
    assert lines[1].startswith("run 1/4 strategy.entry_bps=10 strategy.tp_bps=12 on y.gz: error: RecordingError: x")


class _FailingRay:
    """Stands in for the ray module: init leaves a session file in its temporary folder, then fails (as a
    local start that cannot bring up its processes does); shutdown is recorded."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.inits: list[dict] = []
        self.shutdowns = 0

    def init(self, **kwargs) -> None:
        self.inits.append(kwargs)
        if kwargs.get("_temp_dir"):
            (Path(kwargs["_temp_dir"]) / "session_latest").mkdir()
        raise self.error

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_ray_that_does_not_start_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    from actors.sweep.cli import main

    ray = _FailingRay(RuntimeError("Failed to start the GCS server.\nSee the log files for details"))
    monkeypatch.setitem(sys.modules, "ray", ray)
    args = _args(tmp_path, "config/sweep.toml", "strategy.entry_bps=8,12", more=("--engine", "ray"))
    for attempt in (1, 2):  # the same command again meets the same (clear) error, not a folder in the way
        assert main(args) == 2
        err = capsys.readouterr().err.splitlines()
        assert err[-1] == (
            "sweep error: --engine ray: could not start a local Ray instance (RuntimeError: Failed to start the "
            "GCS server.); nothing ran, nothing is left behind: run the same command again when Ray works, "
            "or use --engine local"
        )
        assert ray.shutdowns == attempt  # shut down after the failed start too
        assert ray.inits[-1]["address"] == "local"  # a new instance: never a stale /tmp/ray/ray_current_cluster
        assert not Path(ray.inits[-1]["_temp_dir"]).exists()
        assert not (tmp_path / "out").exists()
    # an interrupt during the start leaves a sweep folder without rows: the same command is not blocked by it
    ray.error = KeyboardInterrupt()
    assert main(args) == 130 and (tmp_path / "out" / "sweep.json").exists()
    ray.error = ConnectionError("no cluster")
    assert main(args) == 2
    assert "could not start a local Ray instance (ConnectionError: no cluster)" in capsys.readouterr().err
    # a cluster that cannot be reached, and no Ray at all
    assert main([*args, "--address", "ray://10.0.0.1:10001", "--out", str(tmp_path / "c")]) == 2
    assert "could not connect to the Ray cluster at ray://10.0.0.1:10001" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main([*args, "--out", str(tmp_path / "none")]) == 2
    assert "--engine ray needs Ray: pip install" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_heatmap_colours_diverge_at_zero_pnl():
    from actors.sweep.results import SweepRow, heatmap_figure

    def row(x: str, y: str, pnl: float) -> SweepRow:
        values = {"k.x": x, "k.y": y}
        return SweepRow(run_id=x + y, recording="r", values=values, status="completed", error="", pnl_usdt=pnl)

    gains = heatmap_figure([row("1", "1", 1.0), row("2", "1", 3.0), row("1", "2", 0.0)], ["k.x", "k.y"])
    image = gains.axes[0].images[0]
    assert image.norm(0.0) == 0.5  # break-even is the middle colour, whatever the range
    assert 0.5 < image.norm(1.0) < image.norm(3.0) == 1.0  # a small gain is still a gain (not red)
    assert "PnL" in gains.axes[1].get_ylabel() and "0 = break-even" in gains.axes[1].get_ylabel()
    flat = heatmap_figure([row("1", "1", 0.0), row("2", "1", 0.0)], ["k.x", "k.y"])
    assert flat.axes[0].images[0].norm(0.0) == 0.5
    import matplotlib.pyplot as plt

    plt.close(gains)
    plt.close(flat)


# -- sweeps over the simulated market (--sim-seeds) ----------------------------------------------------


def _sim_config(tmp_path: Path) -> Path:
    """config/sweep_sim.toml on the OU market with a 5 s warm-up: trades within a minute (tests/markets.py; the
    fitted market trades a few times an hour, too rarely for a test of the mechanics)."""
    path = ou_config(tmp_path, ROOT / "config" / "sweep_sim.toml")
    text = path.read_text()
    assert "warmup_s = 120" in text, "config/sweep_sim.toml no longer spells its warm-up in one line"
    path.write_text(text.replace("warmup_s = 120", "warmup_s = 5"))
    return path


def _fee_usdt(event: dict) -> float:
    """A fill event's fee in USDT: KRW at its FX rate, BTC at its price (in USDT on Binance)."""
    if event["fee_ccy"] == "KRW":
        return event["fee"] / event["fx_krw_per_usdt"]
    if event["fee_ccy"] == "BTC":
        assert event["quote_ccy"] == "USDT"
        return event["fee"] * event["avg_price"]
    return event["fee"]


def test_seed_specs_are_lists_and_ranges():
    assert parse_seeds("1,2,3") == (1, 2, 3)
    assert parse_seeds("1-4,9") == (1, 2, 3, 4, 9)
    assert parse_seeds(" 7 ") == (7,)
    assert parse_seeds("0-0") == (0,)
    for bad, message in (
        ("", "expected seeds"),
        ("1,,2", "expected seeds"),
        ("a", "expected seeds"),
        ("-1", "expected seeds"),
        ("1-", "expected seeds"),
        ("1.5", "expected seeds"),
        ("²", "expected seeds"),  # a digit to str.isdigit, not to int()
        ("4-1", "goes down; write it 1-4"),
        ("1-3,2", "seed 2 given twice"),
        ("1-100000", "more than 10,000 seeds"),
    ):
        with pytest.raises(SweepError, match=message):
            parse_seeds(bad)


def test_plan_sim_ids_are_stable_and_each_seed_runs_every_point():
    grid = parse_grid(["strategy.entry_bps=8,10", "strategy.order_qty_btc=0.002,0.02"])
    tasks = plan_sim("config/sweep_sim.toml", (3, 5), grid, duration_s=60)
    assert len(tasks) == 8 and len({t["run_id"] for t in tasks}) == 8
    assert tasks == plan_sim("config/sweep_sim.toml", (3, 5), grid, duration_s=60)
    assert [t["seed"] for t in tasks] == [3] * 4 + [5] * 4
    assert all(t["run_id"].startswith(f"s{t['seed']}_") and t["market"] == "sim" for t in tasks)
    assert tasks[0]["overrides"] == {
        "strategy": {"entry_bps": 8, "order_qty_btc": 0.002},
        "session": {"market": "sim", "seed": 3, "duration_s": 60},
    }
    # another duration or config is another sweep: other ids
    assert not {t["run_id"] for t in tasks} & {t["run_id"] for t in plan_sim("x.toml", (3, 5), grid, duration_s=60)}
    assert not {t["run_id"] for t in tasks} & {
        t["run_id"] for t in plan_sim("config/sweep_sim.toml", (3, 5), grid, duration_s=None)
    }


def test_a_grid_point_is_summed_up_over_its_seeds():
    from actors.sweep.results import SweepRow, by_point

    def row(seed: int, x: str, pnl: float | None, closed: int = 2, wins: int = 1) -> SweepRow:
        if pnl is None:
            return SweepRow(run_id=f"{x}{seed}", market="sim", values={"k.x": x}, status="failed", error="E", seed=seed)
        return SweepRow(run_id=f"{x}{seed}", market="sim", values={"k.x": x}, status="completed", error="",
                        seed=seed, trades=closed + 1, closed_trades=closed, wins=wins, pnl_usdt=pnl,
                        fees_usdt=0.5)  # fmt: skip

    rows = [row(1, "a", -3.0), row(2, "a", 1.0, wins=2), row(3, "a", -1.0), row(1, "b", 0.5), row(2, "b", None)]
    best, worst = by_point(rows, ["k.x"])
    assert best.values == {"k.x": "b"} and (best.runs, best.failed, best.pnl_usdt) == (2, 1, (0.5,))
    assert best.mean_pnl_usdt == 0.5 and best.std_pnl_usdt is None and best.in_profit == 1
    assert worst.mean_pnl_usdt == pytest.approx(-1.0) and worst.std_pnl_usdt == pytest.approx(2.0)
    assert worst.in_profit == 1 and (worst.closed_trades, worst.wins) == (6, 4)
    assert worst.win_rate == pytest.approx(4 / 6) and worst.per_run(worst.fees_usdt) == pytest.approx(0.5)
    assert worst.per_run(worst.trades) == 3


def test_a_sim_sweep_sums_up_each_point_over_its_seeds_then_resumes(tmp_path):
    config = _sim_config(tmp_path)
    out = tmp_path / "sweep"
    args = ["--sim-seeds", "1-2", "--grid", "strategy.order_qty_btc=0.002,0.02", "--duration", "60"]
    args += ["--workers", "2", "--out", str(out)]
    proc = _sweep(*args, config=str(config))
    assert proc.returncode == 0, proc.stderr
    assert "4 runs (2 grid points x 2 seeds on the simulated market)" in proc.stderr
    assert sum(" seed 1: PnL " in line for line in proc.stderr.splitlines()) == 2
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert sorted((r["seed"], r["strategy.order_qty_btc"]) for r in rows) == [
        (1, "0.002"), (1, "0.02"), (2, "0.002"), (2, "0.02")
    ]  # fmt: skip
    models = set()
    for r in rows:  # each row is its session's KPI and fill events
        assert (r["market"], r["status"], r["simulated_s"], r["error"]) == ("sim", "completed", 60.0, "")
        assert "recording" not in r and "replayed_s" not in r
        run_dir = out / "runs" / r["run_id"]
        kpi = json.loads((run_dir / f"kpi_{r['run_id']}.json").read_text())
        assert (kpi["market"], kpi["realism"]["market"]) == ("sim", "sim")
        assert r["pnl_usdt"] == round(kpi["pnl_usdt"], 6) and r["trades"] == kpi["entry_trades"]
        events = [json.loads(line) for line in (run_dir / f"fill_events_{r['run_id']}.jsonl").read_text().splitlines()]
        assert len(events) == r["fill_events"]
        finished = {e["trade_id"] for e in events if e.get("trade_pnl_usdt") is not None}
        assert r["fees_usdt"] == pytest.approx(sum(_fee_usdt(e) for e in events if e["trade_id"] in finished), abs=1e-5)
        assert 0 <= r["wins"] <= r["closed_trades"] <= r["trades"]
        models.add(kpi["realism"]["model"]["name"])
    assert sum(r["trades"] for r in rows) > 0, "no trade at all: the sweep's figures would test nothing"
    # each grid point over its two seeds, recomputed from the rows
    points = {
        p["strategy.order_qty_btc"]: p for p in csv.DictReader((out / "results_by_point.csv").read_text().splitlines())
    }
    assert set(points) == {"0.002", "0.02"}
    for qty, point in points.items():
        pnl = [r["pnl_usdt"] for r in rows if r["strategy.order_qty_btc"] == qty]
        mean, spread = sum(pnl) / 2, abs(pnl[0] - pnl[1]) / 2**0.5
        assert float(point["pnl_mean_usdt"]) == pytest.approx(mean, abs=1e-6)
        assert float(point["pnl_std_usdt"]) == pytest.approx(spread, abs=1e-6)
        assert (float(point["pnl_min_usdt"]), float(point["pnl_max_usdt"])) == (min(pnl), max(pnl))
        assert int(point["runs_in_profit"]) == sum(p > 0 for p in pnl) and point["runs"] == "2"
        mine = [r for r in rows if r["strategy.order_qty_btc"] == qty]
        assert int(point["trades"]) == sum(r["trades"] for r in mine)
        assert int(point["wins"]) == sum(r["wins"] for r in mine)
    md = (out / "results.md").read_text()
    assert md.startswith("# Sweep: 4 runs on the simulated market\n")
    assert "**Simulated market**: the old Ornstein-Uhlenbeck model" in md and models == {"ou"}
    assert "Seeds 1, 2: each seed is one path of the simulated market" in md and "60 s of market each" in md
    by_point, every_run = md.split("## By grid point, over its seeds")[1].split("## Every run")
    ranked = sorted(points, key=lambda q: -float(points[q]["pnl_mean_usdt"]))
    assert by_point.index(f"| {ranked[0]} | 2 |") < by_point.index(f"| {ranked[1]} | 2 |")
    assert every_run.count("| completed") == 4
    # resume: the rows done are kept, the one taken out runs again and gives the same figures
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[1:]) + "\n")
    proc = _sweep(*args, "--resume", config=str(config))
    assert proc.returncode == 0 and "3 already done" in proc.stderr and "; 1 in " in proc.stderr, proc.stderr
    redone = {json.loads(line)["run_id"]: json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()}
    first = json.loads(lines[0])
    keys = ("pnl_usdt", "trades", "fill_events", "closed_trades", "wins", "fees_usdt", "unrealized_pnl_usdt")
    assert [redone[first["run_id"]][k] for k in keys] == [first[k] for k in keys]
    # the same folder with other seeds is another sweep
    other = [*args[:1], "1-3", *args[2:]]
    proc = _sweep(*other, "--resume", config=str(config))
    assert proc.returncode == 2 and "over seeds [1, 2] of the simulated market" in proc.stderr


def _sim_args(tmp_path: Path, *more: str, config: str = "config/sweep_sim.toml") -> list[str]:
    return ["--config", config, "--out", str(tmp_path / "out"), *more]


@pytest.mark.parametrize(
    "more, message",
    [
        (("--sim-seeds", "1-x"), "sweep error: --sim-seeds '1-x': expected seeds (integers >= 0) and ranges"),
        (("--sim-seeds", "3-1"), "sweep error: --sim-seeds '3-1': the range 3-1 goes down; write it 1-3"),
        (("--sim-seeds", "1,2", "--seed", "4"), "sweep error: --seed 4: a sweep over the simulated market runs"),
        (("--sim-seeds", "1", "--duration", "0"), "$.session.duration_s"),
        (
            ("--sim-seeds", "1,2", "--grid", "session.seed=3,4"),
            "sweep error: --grid session.seed: every value would give the same runs: --sim-seeds sets session.seed",
        ),
        (
            ("--sim-seeds", "1", "--grid", "session.market=sim,replay"),
            "every run is on the simulated market (session.market = 'sim')",
        ),
        (("--sim-seeds", "1", "--grid", "replay.speed=1,2"), "which reads no [replay] table; remove this grid key"),
        (
            ("--sim-seeds", "1", "--grid", "session.duration_s=60,120", "--duration", "30"),
            "--duration 30.0 sets session.duration_s for every run",
        ),
    ],
)
def test_bad_sim_sweep_input_is_one_line_and_exit_2(tmp_path, capsys, more, message):
    from actors.sweep.cli import main

    assert main(_sim_args(tmp_path, *more)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "more, message",
    [
        (("--sim-seeds", "1", "--replay", "x.gz"), "argument --replay: not allowed with argument --sim-seeds"),
        ((), "one of the arguments --replay --sim-seeds is required"),
    ],
)
def test_a_sweep_runs_on_recordings_or_on_the_simulator_not_both(tmp_path, capsys, more, message):
    from actors.sweep.cli import main

    with pytest.raises(SystemExit) as exited:
        main(_sim_args(tmp_path, *more))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


def test_the_sim_start_volatility_is_refused_on_the_ou_market(tmp_path, capsys):
    from actors.sweep.cli import main

    config = str(_sim_config(tmp_path))
    assert (
        main(_sim_args(tmp_path, "--sim-seeds", "1", "--grid", "sim.start_volatility=mean,random", config=config)) == 2
    )
    assert "sim.market_model is 'ou', which has no volatility regime" in capsys.readouterr().err
    # on the fitted market it changes the runs
    from actors.sweep.cli import _checked, build_parser

    args = build_parser().parse_args(
        _sim_args(tmp_path, "--sim-seeds", "1,2", "--grid", "sim.start_volatility=mean,random")
    )
    _base, grid, tasks, _keys = _checked(args)
    assert len(tasks) == 4


def test_a_sim_heatmap_says_its_market_and_spread():
    from actors.sweep.results import SweepRow, heatmap_figure

    def row(x: str, y: str, seed: int, pnl: float) -> SweepRow:
        values = {"k.x": x, "k.y": y}
        return SweepRow(run_id=f"{x}{y}{seed}", market="sim", values=values, status="completed", error="",
                        seed=seed, pnl_usdt=pnl)  # fmt: skip

    rows = [row(x, y, s, p) for x, y in (("[[5,5]]", "1"), ("[[10,12]]", "1")) for s, p in ((1, -1.0), (2, -3.0))]
    figure = heatmap_figure(rows, ["k.x", "k.y"], {"k.x": ["[[5,5]]", "[[10,12]]"]})
    ax = figure.axes[0]
    assert "simulated market, each cell a mean over 2 seeds" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["[[5,5]]", "[[10,12]]"]  # the grid's order
    assert ax.texts[0].get_text() == f"-2.00\n±{2**0.5:.2f}"
    import matplotlib.pyplot as plt

    plt.close(figure)
