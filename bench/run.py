"""Benchmarks: ``make bench`` (``python -m bench.run [--quick] [--day] [--day-hours H] [--soak-hours H]``).

Prints a table and writes ``bench/results.json`` (name -> value, plus the machine, the commit and the wall
time of each section, ``section_s``).
Each throughput figure is the median of several runs; each ratio is measured in the same run.
docs/performance.md explains each figure and what bounds it.

- floor: decode + book update only (no Trio, no sockets) over the recorded BTCUSDT diffs in
  ../shared/fixtures/recorded/ and over synthetic Upbit order-book frames, frames/s;
- pipeline: the same frames, pre-encoded, through the real session (feeds -> aggregator -> executor ->
  collector, fill events written) at full speed, updates/s, and its ratio to the floor of the same
  mix (bench/pipeline.py: a stand-in network hands out the frames; no simulator in the process);
  once with 64 frames of socket buffer (what a sender ahead of its reader leaves queued) and once
  with one frame at a time (every frame a full pass through the scheduler);
- session end to end: the whole replay session with the embedded exchange in the same process
  (replay servers -> WebSocket framing both ends -> the pipeline), updates/s;
- latency: wire-to-decision and wire-to-fill-event-written p50/p99/p99.9, the recording served by
  the exchange in its own process (bench/exchange_process.py) over real loopback WebSockets at the
  recorded pace (10 diffs/s) and at 100x;
- sizing: what depth-aware sizing adds to an entry decision, microseconds (bench/sizing.py);
- soak: bench.soak (a simulated day of both feeds, kills and faults), RSS MB per simulated hour;
- replay: ``python -m actors.session --replay ... --as-fast-as-possible`` over the recording, served
  directly (the default) and through the embedded exchange, x real time of the whole process and of
  the replay span, peak RSS (bench/replay.py); with ``--day`` also over a generated day of recording
  (bench/longday.py: the recording laid end to end), to show that memory does not grow with the
  recording (about 11 minutes, so not in the default run, which stays under 5 minutes);
- sweep: ``python -m actors.sweep`` of docs/scaling.md (config/sweep.toml, a 3 x 2 grid over the recording; a
  4 x 4 grid over it on 1 worker, one pass shared by the 16; and the simulator's 3 x 2 grid of
  config/sweep_sim.toml over 2 seeds, 600 s a run) on 2
  workers, runs per second of wall time, against issue 25's base (0.621 runs/s, commit 3a617d6);
- peer: cryptofeed's Binance order-book handler fed the same diffs, in its own virtualenv
  (bench/peer_cryptofeed.py; never a project dependency);
- peers: nautilus_trader's BacktestEngine and hftbacktest's run loop over the same recording, each in
  its own virtualenv (bench/peer_nautilus.py, bench/peer_hftbacktest.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT.parent / "shared" / "fixtures" / "recorded" / "hftbacktest" / "btcusdt_20240808.gz"
PEER_VENV = ROOT / "bench" / ".venv-peer"


def _median_rate(fn: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


# -- floor -----------------------------------------------------------------------------------------


def recorded_binance_frames() -> tuple[str, list[str]]:
    """The REST snapshot body and the raw depth-diff frames of the recording, in order."""
    import gzip

    snapshot, diffs = None, []
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            _, payload = line.rstrip("\n").split(" ", 1)
            if '"depthUpdate"' in payload:
                diffs.append(payload)
            elif payload.startswith('{"lastUpdateId"') and snapshot is None:
                snapshot = payload
    assert snapshot is not None
    return snapshot, diffs


def synthetic_upbit_frames(n: int) -> list[bytes]:
    """Upbit KRW-BTC order books (DEFAULT format, 15 units) as the simulator's server writes them."""
    from actors.sim import market_file
    from actors.sim.model import UPBIT_BTC, SimMarket
    from actors.sim.settings import SimConfig
    from actors.sim.upbit_server import orderbook_frame

    class _Hub:
        market = SimMarket(SimConfig(), 1, 1_700_000_000_000, market_file.params_of(SimConfig()))

    frames = []
    for _ in range(n):
        _Hub.market.step()
        frames.append(orderbook_frame(_Hub, UPBIT_BTC, 15, False, "DEFAULT"))
    return frames


def floor_binance(snapshot: str, diffs: list[str], repeats: int) -> float:
    from actors.core.venues import binance

    snap = binance.decode_snapshot(snapshot)

    def once() -> int:
        sync = binance.BookSync("BTCUSDT")
        for frame in diffs:
            event = binance.decode(frame)
            sync.on_diff(event)
            if not sync.synced and event.final_id >= snap.last_update_id:
                sync.on_snapshot(snap)
            if sync.synced:
                sync.book.view("binance", "BTCUSDT", 20, 0.0, event.event_ms)
        return len(diffs)

    return _median_rate(once, repeats)


def floor_upbit(frames: list[bytes], repeats: int) -> float:
    from actors.core.book import BookView
    from actors.core.venues import upbit

    def once() -> int:
        for frame in frames:
            for e in upbit.decode(frame):
                BookView("upbit", e.code, e.bids, e.asks, 0.0, e.timestamp_ms)
        return len(frames)

    return _median_rate(once, repeats)


# -- sessions --------------------------------------------------------------------------------------


# The benchmarks measure the mechanics with trades in them (fills written, legs timed), so their sessions and
# replays synthesise on the earlier OU market, where the demo strategy trades within seconds: on the market
# fitted to the real one it makes no trade in a benchmark's minute (every fill figure read None)
MECHANICS_MARKET = {"market_model": "ou"}


def session_config(
    tmp: str, market: str, duration_s: float, strategy: dict[str, Any] | None = None, **tables: dict[str, Any]
):
    """config/demo.toml as every benchmark session runs it: files in ``tmp``, no periodic KPI or status
    writes, no simulated order latency, no coalescing window, on the OU market (``MECHANICS_MARKET``); plus
    the given tables."""
    from actors import config

    return config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {
                "logs_dir": tmp,
                "duration_s": duration_s,
                "market": market,
                "kpi_interval_s": 3600,
                "status_interval_s": 3600,
            },
            "strategy": {"latency_ms": 0, "latency_jitter_ms": 0, **(strategy or {})},
            "aggregator": {"coalesce_ms": 0},
            "sim": MECHANICS_MARKET,
            **tables,
        },
    )


def _replay_session() -> dict[str, Any]:
    """One replay session of the whole recording over the in-memory network, on the real clock as fast
    as the clients read; its KPI."""
    import tempfile

    import trio

    from actors.logs import configure_logging
    from actors.net.memory import memory_network
    from actors.records.paths import SessionPaths
    from actors.session import run_session
    from actors.wiring import prepare_replay

    with tempfile.TemporaryDirectory() as tmp:
        cfg = session_config(tmp, "replay", 3600, replay={"files": [str(RECORDING)], "speed": 1e9})
        configure_logging(None, stderr_level="ERROR")
        replay = prepare_replay(cfg)

        async def main():
            memory_network()
            return await run_session(cfg, SessionPaths(Path(tmp), "bench"), handle_signals=False, replay=replay)

        return trio.run(main).kpi


def session_end_to_end(repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        kpi = _replay_session()
        updates = sum(f["messages"] for f in kpi["feeds"].values())
        runs.append(
            {
                "updates": updates,
                "seconds": kpi["duration_s"],
                "rate": updates / kpi["duration_s"],
                "fill_events_written": kpi["fill_events_written"],
            }
        )
    best = statistics.median(r["rate"] for r in runs)
    return {
        "updates_per_s": round(best),
        "updates_per_run": runs[0]["updates"],
        "fill_events_written": runs[0]["fill_events_written"],
    }


def pipeline(snapshot: str, diffs: list[str], repeats: int, window: int) -> dict[str, Any]:
    from bench.pipeline import build_script, run_once

    script = build_script(snapshot, diffs)
    runs = [run_once(script, snapshot, window) for _ in range(repeats)]
    median = sorted(runs, key=lambda r: r["updates_per_s"])[len(runs) // 2]
    return {
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in median.items()},
        "updates_per_s": round(median["updates_per_s"]),
        "runs": len(runs),
        "spread": [round(min(r["updates_per_s"] for r in runs)), round(max(r["updates_per_s"] for r in runs))],
    }


def latency(speed: float, duration_s: float) -> dict[str, Any]:
    """The recording served by bench/exchange_process.py in its own process over real loopback
    WebSockets; the session (market = "live" pointed at it) runs here."""
    import tempfile

    import trio

    from actors.logs import configure_logging
    from actors.records.paths import SessionPaths
    from actors.session import run_session

    server = subprocess.Popen(
        [sys.executable, "-m", "bench.exchange_process", str(RECORDING), str(speed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        endpoints = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            # the strategy's clocks are session seconds: at 100x they shrink with the market's
            cfg = session_config(
                tmp,
                "live",
                duration_s,
                {"warmup_s": 5 / speed, "baseline_halflife_s": 20 / speed, "max_hold_s": 20 / speed},
                feeds={
                    "upbit": {"url": endpoints["upbit_url"]},
                    "binance": {"ws_url": endpoints["binance_ws_url"], "rest_url": endpoints["binance_rest_url"]},
                },
            )
            configure_logging(None, stderr_level="ERROR")
            kpi = trio.run(partial(run_session, cfg, SessionPaths(Path(tmp), "bench"), handle_signals=False)).kpi
    finally:
        server.kill()
        server.wait()
    lat = kpi["pipeline_latency_ms"]
    return {
        "speed": speed,
        "updates": sum(f["messages"] for f in kpi["feeds"].values()),
        "seconds": round(kpi["duration_s"], 2),
        "exchange": "own process",
        **{f"decision_{k}": v for k, v in lat["wire_to_decision"].items()},
        **{f"fill_written_{k}": v for k, v in lat["wire_to_fill_written"].items()},
    }


# -- soak and peer ---------------------------------------------------------------------------------


def soak(hours: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--hours", str(hours), "--logs-dir", str(ROOT / "logs" / "bench-soak")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    doc = json.loads((ROOT / "bench" / "results.json").read_text())["soak"]
    return {
        "simulated_hours": doc["simulated_hours"],
        "wall_s": doc["wall_s"],
        "rss_mb_per_hour": doc["rss_mb_per_hour"],
        "status": doc["status"],
        "exit": proc.returncode,
    }


def peer(repeats: int) -> dict[str, Any]:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], capture_output=True, text=True)
        install = (
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "cryptofeed"], capture_output=True, text=True
            )
            if made.returncode == 0
            else made
        )
        if install.returncode != 0:
            return {
                "error": "cryptofeed could not be installed in bench/.venv-peer: "
                + (install.stderr.strip().splitlines() or ["?"])[-1]
            }
    proc = subprocess.run(
        [str(python), str(ROOT / "bench" / "peer_cryptofeed.py"), str(RECORDING), str(repeats)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return {"error": "peer benchmark failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout)


# -- replay and its peers --------------------------------------------------------------------------

DAY_CACHE = ROOT / "bench" / ".cache"


def replay(recording: Path, via: str) -> dict[str, Any]:
    """One replay session in a process of its own (bench/replay.py): its JSON, or {"error": ...}."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.replay", str(recording), "--via", via], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"error": "replay failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


SWEEP_BASELINE_RUNS_PER_S = 0.621  # the 3 x 2 grid on 2 workers at commit 3a617d6 (docs/scaling.md), issue 25's base
SWEEP_GRID = ("strategy.entry_bps=8,10,12", "strategy.latency_ms=10,50")
SIM_SWEEP_GRID = ("strategy.zones=[[5,5]],[[10,12]],[[20,15]]", "strategy.order_qty_btc=0.002,0.2")
# 16 grid points over the recording on one worker: one pass of it shared by all (docs/scaling.md)
WIDE_SWEEP_GRID = ("strategy.entry_bps=6,8,10,12", "strategy.latency_ms=10,30,50,80")
SWEEP_TIMEOUT_S = 600  # about 12 s on the 2-core VM: ten minutes is a hang, not a slow machine


def sweep_rate(recording: Path | None, workers: int = 2, grid: tuple[str, ...] = SWEEP_GRID) -> dict[str, Any]:
    """The docs' sweep on ``workers`` processes, from the command line in a process of its own: runs per second
    of wall time, start-up and the results table included. Over ``recording``: config/sweep.toml, ``grid`` (the
    3 x 2 grid of issue 25's base figure by default); None: the simulator's grid of docs/scaling.md
    (config/sweep_sim.toml, 3 x 2 over seeds 1-2, 600 s a run)."""
    with tempfile.TemporaryDirectory() as out:
        if recording is not None:
            args = [sys.executable, "-m", "actors.sweep", "--config", str(ROOT / "config" / "sweep.toml")]
            args += ["--replay", str(recording)]
        else:
            args = [sys.executable, "-m", "actors.sweep", "--config", str(ROOT / "config" / "sweep_sim.toml")]
            args += ["--sim-seeds", "1-2", "--duration", "600"]
            grid = SIM_SWEEP_GRID
        args += ["--workers", str(workers), "--out", out]
        for one in grid:
            args += ["--grid", one]
        started = time.perf_counter()
        try:
            proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"error": f"sweep did not finish within {SWEEP_TIMEOUT_S} s"}
        wall_s = time.perf_counter() - started
        if proc.returncode != 0:
            return {"error": "sweep failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
        runs = sum(1 for _ in (Path(out) / "runs").iterdir())
    result = {"runs": runs, "workers": workers, "wall_s": round(wall_s, 2), "runs_per_s": round(runs / wall_s, 3)}
    if recording is not None and grid == SWEEP_GRID and workers == 2:  # the base's own sweep
        result["over_issue_25_base"] = round(runs / wall_s / SWEEP_BASELINE_RUNS_PER_S, 2)
    return result


def replay_day(hours: float) -> dict[str, Any]:
    """A generated recording of ``hours`` (made once, kept in bench/.cache), replayed directly."""
    from bench.longday import write_long_recording

    path = DAY_CACHE / f"btcusdt_{hours:g}h.gz"
    made: dict[str, Any] = {}
    if not path.exists():
        DAY_CACHE.mkdir(exist_ok=True)
        made = write_long_recording(RECORDING, path, hours)
    result = replay(path, "direct")
    result["hours"] = hours
    result["generated_in_s"] = made.get("seconds")
    return result


def peers(repeats: int) -> dict[str, Any]:
    from bench.peer_hftbacktest import measure as hftbacktest
    from bench.peer_nautilus import measure as nautilus

    return {"nautilus_trader": nautilus(RECORDING, repeats), "hftbacktest": hftbacktest(RECORDING, repeats)}


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Benchmarks (docs/performance.md).")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a 3 h soak (a smoke run)")
    parser.add_argument(
        "--soak-hours", type=float, metavar="H", help="simulated hours of the soak (default: 24, 3 with --quick)"
    )
    parser.add_argument(
        "--day",
        action="store_true",
        help="also replay a generated day of recording (24 h, 1 h with --quick; about 11 minutes for 24 h here)",
    )
    parser.add_argument(
        "--day-hours",
        type=float,
        metavar="H",
        help="hours of the generated recording replayed (implies --day; default: 24, 1 with --quick)",
    )
    parser.add_argument(
        "--market",
        action="store_true",
        help="also a market of 151 pairs against one pair, and 10 minutes of chaos over it (bench/market.py)",
    )
    args = parser.parse_args(argv)
    run_day = args.day or args.day_hours is not None
    bench_start = time.perf_counter()
    section_s: dict[str, float] = {}
    section: list[Any] = [None, bench_start]

    def starting(name: str) -> None:
        """Note the wall time of the section that ends here, and say which one starts."""
        now = time.perf_counter()
        if section[0] is not None:
            section_s[section[0]] = round(now - section[1], 1)
        section[:] = [name, now]
        print(f"{name} ...", file=sys.stderr, flush=True)

    if not RECORDING.exists():
        print(f"bench: needs the shared recording at {RECORDING}", file=sys.stderr)
        return 2
    repeats = 3 if args.quick else 7
    results: dict[str, Any] = {}

    starting("floor")
    snapshot, diffs = recorded_binance_frames()
    upbit_frames = synthetic_upbit_frames(2000)
    results["floor_binance_frames_per_s"] = round(floor_binance(snapshot, diffs, repeats))
    results["floor_upbit_frames_per_s"] = round(floor_upbit(upbit_frames, repeats))

    starting("pipeline")
    pipe = pipeline(snapshot, diffs, repeats, window=64)
    pipe_one = pipeline(snapshot, diffs, repeats, window=1)
    results["pipeline_updates_per_s"] = pipe["updates_per_s"]
    results["pipeline_one_frame_per_wakeup_updates_per_s"] = pipe_one["updates_per_s"]
    # the script's mix is 2 Upbit books per Binance diff: compare with the floor of the same mix
    upbit_share = 2 / 3
    floor_mix = 1 / (
        upbit_share / results["floor_upbit_frames_per_s"] + (1 - upbit_share) / results["floor_binance_frames_per_s"]
    )
    results["floor_mix_frames_per_s"] = round(floor_mix)
    results["pipeline_over_floor"] = round(pipe["updates_per_s"] / floor_mix, 4)
    results["pipeline_one_frame_per_wakeup_over_floor"] = round(pipe_one["updates_per_s"] / floor_mix, 4)
    results["pipeline_detail"] = pipe
    results["pipeline_one_frame_per_wakeup_detail"] = pipe_one
    starting("session end to end")
    results["session_end_to_end"] = session_end_to_end(1)

    starting("latency")
    live = latency(1.0, 20 if args.quick else 60)
    fast = latency(100.0, 3.5)  # the whole recording at 100x
    results["latency_live"] = live
    results["latency_100x"] = fast

    starting("replay")
    results["replay_direct"] = replay(RECORDING, "direct")
    results["replay_exchange"] = replay(RECORDING, "exchange")
    starting("sweep")
    results["sweep"] = sweep_rate(RECORDING)
    results["sweep_wide"] = sweep_rate(RECORDING, workers=1, grid=WIDE_SWEEP_GRID)
    results["sweep_sim"] = sweep_rate(None)
    starting("replay peers (nautilus_trader, hftbacktest)")
    results["replay_peers"] = peers(3)
    day_hours = args.day_hours or (1 if args.quick else 24)
    if run_day:
        starting(f"replay of a generated {day_hours:g} h recording")
        results["replay_day"] = replay_day(day_hours)

    if args.market:
        from bench import market

        starting("a market of 151 pairs (bench/market.py)")
        results["market"] = {"market": market.SIMULATED, **market.latency(30.0)}
        results["market_chaos"] = market.chaos(120.0 if args.quick else 600.0)

    direct, nautilus = results["replay_direct"], results["replay_peers"]["nautilus_trader"]
    day = results.get("replay_day")
    if day is not None and "error" not in day and "error" not in direct:
        results["replay_day_rss_over_short_mb"] = round(day["peak_rss_replay_mb"] - direct["peak_rss_replay_mb"], 1)
    if "x_real_time_run" in nautilus and "error" not in direct:
        results["replay_span_over_nautilus_run"] = round(direct["x_real_time_span"] / nautilus["x_real_time_run"], 2)

    starting("sizing")
    from bench import sizing

    results["sizing"] = sizing.measure()

    starting("soak")
    results["soak"] = soak(args.soak_hours or (3 if args.quick else 24))

    starting("peer")
    peer_result = peer(repeats)
    results["peer_cryptofeed"] = peer_result
    if "frames_per_s" in peer_result:
        results["floor_over_peer"] = round(results["floor_binance_frames_per_s"] / peer_result["frames_per_s"], 2)

    section_s[section[0]] = round(time.perf_counter() - section[1], 1)  # the last section ends here
    results["section_s"] = section_s
    results["wall_s"] = round(time.perf_counter() - bench_start, 1)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    results["machine"] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    results["commit"] = commit
    path = ROOT / "bench" / "results.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update(results)
    if "replay_day" not in results:  # no day figure of an older run beside these
        doc.pop("replay_day", None)
        doc.pop("replay_day_rss_over_short_mb", None)
    path.write_text(json.dumps(doc, indent=2) + "\n")

    def row(name: str, value: Any, target: str = "") -> None:
        print(f"{name:<44} {value!s:>16}  {target}")

    print(f"\nbench on {results['machine']['platform']}, {results['machine']['cpus']} CPUs, commit {commit}")
    row("floor: Binance diffs, frames/s", results["floor_binance_frames_per_s"])
    row("floor: Upbit books, frames/s", results["floor_upbit_frames_per_s"])
    row("floor: same 2:1 Upbit:Binance mix, frames/s", results["floor_mix_frames_per_s"])
    row("pipeline: updates/s (full speed)", results["pipeline_updates_per_s"], "target >= 50000")
    row("pipeline / floor (same mix)", results["pipeline_over_floor"], "target >= 0.5")
    row("pipeline, one frame per wake-up: updates/s", results["pipeline_one_frame_per_wakeup_updates_per_s"])
    row("  ... / floor", results["pipeline_one_frame_per_wakeup_over_floor"])
    row("session end to end (exchange in process)", results["session_end_to_end"]["updates_per_s"])
    for name, lat in (("live rate", live), ("100x", fast)):
        row(
            f"wire->decision p50/p99/p99.9 ms, {name}",
            f"{lat['decision_p50']}/{lat['decision_p99']}/{lat['decision_p99_9']}",
            "target p99 <= " + ("0.5" if name == "live rate" else "2"),
        )
        row(
            f"wire->fill written p50/p99/p99.9 ms, {name}",
            f"{lat['fill_written_p50']}/{lat['fill_written_p99']}/{lat['fill_written_p99_9']}",
        )
    row("depth sizing: us added to an entry decision", results["sizing"]["added_us"], "target <= 50")
    row(
        f"soak: RSS MB per simulated hour ({results['soak']['simulated_hours']:g} h)",
        results["soak"]["rss_mb_per_hour"],
        "target <= 1",
    )
    exchange = results["replay_exchange"]
    nautilus, hftb = results["replay_peers"]["nautilus_trader"], results["replay_peers"]["hftbacktest"]
    replays = [("direct", direct), ("exchange", exchange)]
    if day is not None:
        replays.append((f"direct, generated {day_hours:g} h", day))
    for name, r in replays:
        if "error" in r:
            row(f"replay {name}", r["error"])
            continue
        row(
            f"replay {name}: x real time span/whole",
            f"{r['x_real_time_span']}/{r['x_real_time_whole']}",
            "target >= 1000",
        )
        row(f"  peak RSS MB during the replay ({r['recording_s']:.0f} s)", r["peak_rss_replay_mb"])
    sweep = results["sweep"]
    if "error" in sweep:
        row("sweep", sweep["error"])
    else:
        row(f"sweep: runs/s ({sweep['runs']} replays, {sweep['workers']} workers)", sweep["runs_per_s"])
        row("  ... / issue 25's base (0.621)", sweep["over_issue_25_base"], "target >= 5")
    wide = results["sweep_wide"]
    row(
        f"sweep: runs/s ({wide.get('runs', '?')} replays sharing one pass, 1 worker)",
        wide.get("runs_per_s", wide.get("error", "?")),
    )
    sim_sweep = results["sweep_sim"]
    if "error" in sim_sweep:
        row("sweep on the simulator", sim_sweep["error"])
    else:
        row(
            f"sweep on the simulator: runs/s ({sim_sweep['runs']} x 600 s, {sim_sweep['workers']} workers)",
            sim_sweep["runs_per_s"],
        )
    if "replay_day_rss_over_short_mb" in results:
        row("  day's peak RSS - 346 s replay's, MB", results["replay_day_rss_over_short_mb"], "target <= 10")
    for name, r, key in (
        ("nautilus_trader engine.run", nautilus, "x_real_time_run"),
        ("hftbacktest run loop", hftb, "x_real_time_run"),
    ):
        row(f"peer: {name}, x real time", r.get(key, r.get("error", "?")))
    if "replay_span_over_nautilus_run" in results:
        row("replay span / nautilus engine.run", results["replay_span_over_nautilus_run"], "target > 1")
    if "frames_per_s" in peer_result:
        row("peer: cryptofeed Binance book, frames/s", peer_result["frames_per_s"])
        row("floor / cryptofeed", results["floor_over_peer"], "target >= 2")
    else:
        row("peer: cryptofeed", peer_result.get("error", "?"))
    if day is None:
        print("(the replay of a generated day runs with --day: make bench ARGS=--day)")
    print(f"bench wall time {results['wall_s']:.0f} s: " + ", ".join(f"{k} {v:g}" for k, v in section_s.items()))
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
