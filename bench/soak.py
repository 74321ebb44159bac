"""Soak: a long simulated session in virtual time, memory sampled every 15 simulated minutes.

``python -m bench.soak [--hours 24] [--step-ms 10000] [--tracemalloc] [--results FILE]`` runs the embedded
exchange, both feeds, chaos kills and random exchange faults on a virtual clock over the in-memory network
and prints, every 15 simulated minutes, the Python heap (tracemalloc, if asked), the allocated blocks, the
process RSS and the objects the garbage collector tracks, then the growth per simulated hour after the
first two hours (warm-up): the Theil-Sen slope (the median of the slopes between every two samples) over
every sample from hour 2 on, so that a few samples caught with a book at its widest or an actor restarting
move it little, while a steady leak shows in full. It needs at least 3 simulated hours (fewer say so
instead). Figures also go to ``bench/results.json`` (or ``--results``) under "soak".
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import trio
import trio.testing
from scipy.stats import theilslopes

from actors import config
from actors.logs import configure_logging
from actors.net.memory import memory_network
from actors.records.paths import SessionPaths
from actors.session import run_session

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
WARMUP_HOURS = 2  # growth is measured from the sample of this hour on
SLOPE_MIN_HOURS = WARMUP_HOURS + 1  # two samples after the warm-up
SAMPLE_EVERY_S = 900.0
# ... at 7.5 min past each quarter hour: between the timers that fire on round times (chaos kills every
# 30 min, KPI snapshots every 5, the status line every hour), so that no sample catches an actor
# half-restarted or a snapshot half-written (samples on the hour read up to 9,000 blocks above their neighbours)
SAMPLE_OFFSET_S = 450.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def soak_config(hours: float, step_ms: int, logs_dir: Path) -> config.Config:
    raw = config.unparse(config.load(ROOT / "config" / "demo.toml"))
    raw["session"].update(
        duration_s=hours * 3600,
        logs_dir=str(logs_dir),
        status_interval_s=3600,
        kpi_interval_s=300,
        seed=5,
        startup_timeout_s=max(60.0, 10 * step_ms / 1000),
    )
    raw["strategy"].update(baseline_halflife_s=600, warmup_s=60, max_hold_s=1800)
    for venue in ("upbit", "binance"):
        raw["feeds"][venue]["stale_after_s"] = max(30.0, 4 * step_ms / 1000)
    raw["sim"].update(step_ms=step_ms, fault_rate_per_min=1 / 20, fault_kinds=["close", "drop", "garbage", "gap"])
    raw["chaos"] = {"kill_every_s": 1800.0, "actors": ["feed:upbit", "feed:binance", "executor", "aggregator"]}
    return config.parse(raw)


def run_soak(hours: float, step_ms: int, logs_dir: Path, use_tracemalloc: bool) -> dict:
    cfg = soak_config(hours, step_ms, logs_dir)
    paths = SessionPaths(logs_dir, "soak")
    samples: list[dict] = []

    async def sampler() -> None:
        start = trio.current_time()
        at = 0.0
        while True:
            gc.collect()
            samples.append(
                {
                    "hour": round(at / 3600, 4),
                    "rss_mb": round(_rss_mb(), 3),
                    "blocks": sys.getallocatedblocks(),
                    # containers the collector tracks, created since the session froze its startup heap
                    "objects": len(gc.get_objects()),
                    "heap_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 3) if use_tracemalloc else None,
                }
            )
            at = SAMPLE_OFFSET_S if at == 0 else at + SAMPLE_EVERY_S
            await trio.sleep_until(start + at)

    async def main():
        memory_network()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler)
            result = await run_session(cfg, paths, handle_signals=False)
            nursery.cancel_scope.cancel()
        return result

    if use_tracemalloc:
        tracemalloc.start()
    wall = time.perf_counter()
    result = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    wall = time.perf_counter() - wall
    if use_tracemalloc:
        tracemalloc.stop()
    warm = [s for s in samples if s["hour"] >= WARMUP_HOURS]

    def per_hour(key: str) -> float | None:
        if len(warm) < 2 or warm[0][key] is None:
            return None
        return round(slope([(s["hour"], s[key]) for s in warm]), 4)

    kpi = result.kpi
    return {
        "simulated_hours": hours,
        "step_ms": step_ms,
        "wall_s": round(wall, 1),
        "status": result.status,
        "samples": samples,
        "rss_mb_per_hour": per_hour("rss_mb"),
        "heap_mb_per_hour": per_hour("heap_mb"),
        "blocks_per_hour": per_hour("blocks"),
        "objects_per_hour": per_hour("objects"),
        "fill_events": kpi["fill_events"],
        "fill_events_written": kpi["fill_events_written"],
        "reconnects": kpi["reconnects"],
        "chaos_kills": kpi["chaos"]["kills"],
        "faults": sum(f["reconnects"] + f["gaps"] + f["bad_frames"] for f in kpi["feeds"].values()),
        "fatal_exceptions": kpi["fatal_exceptions"],
    }


def slope(points: list[tuple[float, float]]) -> float:
    """The Theil-Sen slope of y on x: the median of the slopes between every two points of different x (at
    least two such points). Samples far off the line (up to about a quarter of them) hardly move it."""
    xs, ys = zip(*points)
    return float(theilslopes(ys, xs)[0])


def growth_line(out: dict) -> str:
    """The growth per simulated hour after the warm-up, or why there is none (too few hours for a slope)."""
    if out["rss_mb_per_hour"] is None:
        return (
            f"growth after warm-up: not measured: the slope needs at least {SLOPE_MIN_HOURS} simulated hours "
            f"(the first {WARMUP_HOURS} are warm-up), this run simulated {out['simulated_hours']:g}; "
            f"run with --hours {SLOPE_MIN_HOURS} or more"
        )
    heap = "not sampled (--tracemalloc)" if out["heap_mb_per_hour"] is None else f"{out['heap_mb_per_hour']} MB/h"
    return (
        f"growth after warm-up: RSS {out['rss_mb_per_hour']} MB/h, heap {heap}, "
        f"{out['blocks_per_hour']} allocated blocks/h, {out['objects_per_hour']} tracked objects/h"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Soak: a long simulated session in virtual time (chaos kills, exchange faults), memory "
        f"sampled every 15 simulated minutes; growth per hour after a {WARMUP_HOURS} h warm-up (docs/performance.md).",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=24.0,
        metavar="H",
        help=f"simulated hours; the growth needs {SLOPE_MIN_HOURS} or more (default: %(default)g)",
    )
    parser.add_argument(
        "--step-ms", type=int, default=10_000, metavar="MS", help="market step of the simulator (default: %(default)s)"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also sample the Python heap (slower)")
    parser.add_argument(
        "--logs-dir", default="logs/soak", metavar="DIR", help="the session's files (default: %(default)s)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        metavar="FILE",
        help='JSON file whose "soak" entry the figures replace (default: bench/results.json)',
    )
    args = parser.parse_args(argv)
    configure_logging(None, stderr_level="ERROR")
    out = run_soak(args.hours, args.step_ms, Path(args.logs_dir), args.tracemalloc)
    print(f"{'hour':>7} {'rss MB':>9} {'heap MB':>9} {'blocks':>9} {'objects':>8}")
    for s in out["samples"]:
        heap = s["heap_mb"] if s["heap_mb"] is not None else "-"
        print(f"{s['hour']:>7.3f} {s['rss_mb']:>9.2f} {heap:>9} {s['blocks']:>9} {s['objects']:>8}")
    print(
        f"simulated {out['simulated_hours']:g} h (market step {out['step_ms']} ms) in {out['wall_s']} s wall; "
        f"status {out['status']}, fatal {out['fatal_exceptions']}"
    )
    print(growth_line(out))
    print(
        f"fill events {out['fill_events']} (written {out['fill_events_written']}), reconnects {out['reconnects']}, "
        f"chaos kills {out['chaos_kills']}"
    )
    results = args.results
    results.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(results.read_text()) if results.exists() else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    doc["soak"] = {
        **{k: v for k, v in out.items() if k != "samples"},
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "commit": commit.strip(),
    }
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if out["status"] == "completed" and out["fatal_exceptions"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
