"""Parameter sweeps over recordings: ``python -m actors.sweep --config PATH --replay FILE... --grid
KEY=V1,V2 ... [--engine local|ray] [--address ADDR] [--workers N] [--out DIR] [--resume]``.

Every grid point x recording is one replay session on the virtual clock (``--as-fast-as-possible``),
run by ``run_task`` in a worker process with its own ``trio.run``: a local process pool by default,
or Ray tasks (``pip install .[ray]``; a local Ray instance unless ``--address`` names a cluster).
Each run's files go to ``<out>/runs/<run_id>/``; each finished row is appended to
``<out>/rows.jsonl`` at once, so an interrupted sweep keeps what finished and ``--resume`` skips
rows already done. ``results.csv``, ``results.md`` (sorted by PnL) and ``heatmap.png`` (mean PnL over
two grid keys) are written at the end, or at Ctrl-C from the rows so far. docs/scaling.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Iterable

from actors.config import merge_tables

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class SweepError(Exception):
    """A sweep that cannot start; str() says why."""


# -- the grid --------------------------------------------------------------------------------------

def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``[[5,5]],[[10,12]]`` is two values."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _value(text: str) -> Any:
    """A TOML value (number, bool, array, quoted string), or the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,... such as strategy.entry_bps=8,10,12")
        if len(key.split(".")) < 2:
            raise SweepError(f"--grid {spec!r}: expected a dotted config key such as strategy.entry_bps")
        if key in grid:
            raise SweepError(f"--grid {key} given twice")
        grid[key] = [_value(v) for v in _split_top_level(values)]
    return grid


def _nested(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _label(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


def plan(config_path: str, recordings: list[str], grid: dict[str, list[Any]], *, seed: int | None,
         duration_s: float | None) -> list[dict[str, Any]]:
    """One task per grid point x recording, each with a stable id (resume matches on it)."""
    tasks = []
    for r_index, recording in enumerate(recordings):
        for point in itertools.product(*grid.values()):
            values = dict(zip(grid, point))
            overrides: dict[str, Any] = {}
            for key, value in values.items():
                merge_tables(overrides, _nested(key, value))
            session = {"market": "replay"}
            if seed is not None:
                session["seed"] = seed
            if duration_s is not None:
                session["duration_s"] = duration_s
            merge_tables(overrides, {"session": session,
                               "replay": {"files": recording.split("+"), "as_fast_as_possible": True}})
            ident = json.dumps([config_path, recording, [[k, v] for k, v in values.items()], seed, duration_s],
                               sort_keys=True)
            run_id = f"r{r_index}_" + hashlib.sha1(ident.encode()).hexdigest()[:10]
            tasks.append({"run_id": run_id, "config": config_path, "recording": recording,
                          "values": {k: _label(v) for k, v in values.items()}, "overrides": overrides})
    return tasks


# -- one run (in a worker process) -----------------------------------------------------------------

def run_task(task: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Run one replay session; always returns a row (``error`` says what went wrong, if anything)."""
    import trio
    import trio.testing

    from actors import config as config_mod
    from actors.session import configure_logging, prepare_replay, run_session
    from actors.telemetry import SessionPaths
    from actors.ws import memory_network

    started = time.perf_counter()
    row: dict[str, Any] = {"run_id": task["run_id"], "recording": Path(task["recording"].split("+")[0]).name,
                           **task["values"], "status": "failed", "error": ""}
    try:
        run_dir = Path(out_dir) / "runs" / task["run_id"]
        overrides = json.loads(json.dumps(task["overrides"]))
        overrides["session"]["logs_dir"] = str(run_dir)
        cfg = config_mod.load(task["config"], overrides)
        paths = SessionPaths(run_dir, task["run_id"])
        if run_dir.exists():  # a run cut short by an interrupt starts over (its files would be appended to)
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        configure_logging(paths.log, stderr_level="CRITICAL")
        replay = prepare_replay(cfg)

        async def main():
            memory_network()
            return await run_session(cfg, paths, handle_signals=False, replay=replay)

        result = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        kpi = result.kpi
        row.update({
            "status": kpi["status"], "seed": cfg.session.seed, "replayed_s": round(kpi["duration_s"], 3),
            "trades": kpi["entry_trades"], "fill_events": kpi["fill_events"],
            "pnl_usdt": round(kpi["pnl_usdt"], 6), "unrealized_pnl_usdt": round(kpi["unrealized_pnl_usdt"], 6),
            "fill_ratio_by_zone": {f"{zone} {side}": round(r["mean"], 4)
                                   for zone, sides in kpi["fill_ratio_by_zone"].items()
                                   for side, r in sides.items() if r.get("mean") is not None},
            "reconnects": sum(kpi["reconnects"].values()),
            "error": "; ".join(kpi["fatal_errors"]),
        })
    except Exception as exc:  # reported in the row; the other runs go on
        row["error"] = f"{type(exc).__name__}: {exc}".replace("\n", " | ")
    row["wall_s"] = round(time.perf_counter() - started, 3)
    return row


# -- engines ---------------------------------------------------------------------------------------

def _run_local(tasks: list[dict], out_dir: str, workers: int, on_row: Callable[[dict], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    pending = {pool.submit(run_task, task, out_dir) for task in tasks}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_row(future.result())
    except BaseException:  # Ctrl-C: the runs in progress are abandoned, the finished rows are kept
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the sweep, which stops them (no traceback from every worker)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_ray(tasks: list[dict], out_dir: str, workers: int | None, address: str | None,
             on_row: Callable[[dict], None]) -> None:
    try:
        import ray
    except ImportError:
        raise SweepError("--engine ray needs Ray: pip install '.[ray]' (or pip install ray)") from None
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(num_cpus=workers, logging_level="WARNING", log_to_driver=False, include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        pending = [remote.remote(task, out_dir) for task in tasks]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    on_row(ray.get(ref))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        ray.shutdown()


# -- results ---------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line torn by an interrupt: that run is simply done again
    return rows


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r.get("pnl_usdt") is None, -(r.get("pnl_usdt") or 0.0), r["run_id"]))


def write_tables(out: Path, rows: list[dict], grid_keys: list[str]) -> None:
    zones = sorted({z for r in rows for z in r.get("fill_ratio_by_zone", {})})
    columns = ["run_id", "recording", *grid_keys, "status", "seed", "replayed_s", "trades", "fill_events", "pnl_usdt",
               "unrealized_pnl_usdt", *(f"fill_ratio[{z}]" for z in zones), "reconnects", "wall_s", "error"]
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in _sorted(rows):
            ratios = r.get("fill_ratio_by_zone", {})
            writer.writerow([r.get(c, "") if not c.startswith("fill_ratio[") else ratios.get(c[11:-1], "")
                             for c in columns])
    md_cols = ["recording", *grid_keys, "trades", "fill events", "PnL USDT", "fill ratio per zone", "reconnects",
               "status"]
    lines = [f"# Sweep: {len(rows)} runs", "", "Sorted by realized PnL (USDT, after fees). Run files: "
             "`runs/<run_id>/`; every column, with wall times, in results.csv.", "",
             "| run | " + " | ".join(md_cols) + " |", "|" + "---|" * (len(md_cols) + 1)]
    for r in _sorted(rows):
        ratios = ", ".join(f"{z} {v:.3f}" for z, v in sorted(r.get("fill_ratio_by_zone", {}).items())) or "-"
        status = r["status"] + (f": {r['error']}" if r.get("error") else "")
        pnl = "-" if r.get("pnl_usdt") is None else f"{r['pnl_usdt']:+.4f}"
        lines.append(f"| {r['run_id']} | {r['recording']} | " + " | ".join(str(r.get(k, "")) for k in grid_keys)
                     + f" | {r.get('trades', '-')} | {r.get('fill_events', '-')} | {pnl} | {ratios} | "
                       f"{r.get('reconnects', '-')} | {status} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_heatmap(out: Path, rows: list[dict], keys: list[str]) -> Path | None:
    """Mean PnL over two grid keys (averaged over recordings and any other keys)."""
    good = [r for r in rows if r.get("pnl_usdt") is not None]
    if len(keys) < 2 or not good:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kx, ky = keys[:2]
    xs = sorted({r[kx] for r in good}, key=_order)
    ys = sorted({r[ky] for r in good}, key=_order)
    grid = [[float("nan")] * len(xs) for _ in ys]
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            cell = [r["pnl_usdt"] for r in good if r[kx] == x and r[ky] == y]
            if cell:
                grid[j][i] = sum(cell) / len(cell)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(xs), 1.4 + 0.8 * len(ys)))
    image = ax.imshow(grid, cmap="RdYlGn", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    for j, row in enumerate(grid):
        for i, v in enumerate(row):
            if v == v:
                ax.text(i, j, f"{v:+.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="mean realized PnL (USDT)")
    ax.set_title("PnL by " + kx + " x " + ky)
    fig.tight_layout()
    path = out / "heatmap.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _order(label: str) -> tuple:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# -- progress --------------------------------------------------------------------------------------

class _Progress:
    """A rich progress bar on a terminal, otherwise one line per finished run; both with an ETA."""

    def __init__(self, total: int, already: int) -> None:
        self.total, self.done, self.failed = total, already, 0
        self._fresh = 0
        self._t0 = time.monotonic()
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=Console(stderr=True))
            self._task = self._bar.add_task("sweep", total=total, completed=already)
            self._bar.start()

    def row(self, row: dict) -> None:
        self.done += 1
        self._fresh += 1
        self.failed += bool(row.get("error"))
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            if row.get("error"):
                self._bar.console.print(f"run {row['run_id']} failed: {row['error']}")
            return
        elapsed = time.monotonic() - self._t0
        eta = elapsed / self._fresh * (self.total - self.done)
        pnl = row.get("pnl_usdt")
        outcome = f"error: {row['error']}" if row.get("error") else f"PnL {pnl:+.4f} USDT" if pnl is not None else ""
        print(f"[{self.done}/{self.total}] {row['run_id']} {outcome} ({row.get('wall_s', 0):.1f} s); "
              f"ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- command line ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m actors.sweep", description="Replay recordings over a grid of config values.")
    p.add_argument("--config", required=True, help="base TOML config (docs/config.md)")
    p.add_argument("--replay", required=True, nargs="+", metavar="FILE",
                   help="recordings, one run set each (join files of one recording with '+')")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a dotted config key and its values (repeat for more keys)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="--engine ray: an existing Ray cluster (default: start a local one)")
    p.add_argument("--workers", type=int, metavar="N", help="parallel runs (default: the CPU count)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default: logs/sweeps/<time>)")
    p.add_argument("--resume", action="store_true", help="skip rows already done in --out")
    p.add_argument("--seed", type=int, help="override session.seed for every run")
    p.add_argument("--duration", type=float, metavar="S", help="cap each replay at S session seconds")
    p.add_argument("--heatmap", metavar="KEY1,KEY2", help="grid keys of the heatmap (default: the first two)")
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    try:
        from actors import config as config_mod
        grid = parse_grid(args.grid)
        base = config_mod.load(args.config, {"session": {"market": "replay"},
                                             "replay": {"files": args.replay[0].split("+")}})
        for recording in args.replay:
            for f in recording.split("+"):
                if not Path(f).is_file():
                    raise SweepError(f"--replay {f}: file not found")
        tasks = plan(args.config, args.replay, grid, seed=args.seed, duration_s=args.duration)
        # every grid point must make a valid config: check them all before starting anything
        for task in tasks[:len(tasks) // len(args.replay)]:
            config_mod.load(args.config, json.loads(json.dumps(task["overrides"])))
        if args.workers is not None and args.workers < 1:
            raise SweepError(f"--workers expected an integer >= 1, got {args.workers}")
        heat_keys = [k.strip() for k in args.heatmap.split(",")] if args.heatmap else list(grid)
        unknown = [k for k in heat_keys if k not in grid]
        if unknown:
            raise SweepError(f"--heatmap {args.heatmap}: {', '.join(unknown)} not among the grid keys {list(grid)}")
    except (SweepError, config_mod.ConfigError) as exc:
        print(f"sweep error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out or Path(base.session.logs_dir).parent / "sweeps" / time.strftime("%Y%m%d_%H%M%S"))
    rows_path = out / "rows.jsonl"
    manifest = {"config": args.config, "recordings": args.replay, "grid": {k: [_label(v) for v in vs]
                                                                           for k, vs in grid.items()},
                "seed": args.seed, "duration_s": args.duration, "runs": [t["run_id"] for t in tasks]}
    if out.exists() and (out / "sweep.json").exists():
        if not args.resume:
            print(f"sweep error: {out} holds a sweep already: --resume continues it, or choose another --out",
                  file=sys.stderr)
            return EXIT_USAGE
        previous = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
        if previous != manifest:
            print(f"sweep error: --resume with different arguments than the sweep in {out} "
                  f"(it has grid {previous['grid']} over {previous['recordings']})", file=sys.stderr)
            return EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    done = {r["run_id"]: r for r in read_rows(rows_path) if not r.get("error")}
    todo = [t for t in tasks if t["run_id"] not in done]
    rows = [done[t["run_id"]] for t in tasks if t["run_id"] in done]
    workers = args.workers or os.cpu_count() or 1
    print(f"sweep: {len(tasks)} runs ({len(grid) and ' x '.join(str(len(v)) for v in grid.values()) or 1} grid "
          f"points x {len(args.replay)} recording(s)), {len(done)} already done, engine {args.engine}, "
          f"{workers if args.engine == 'local' or not args.address else 'cluster'} workers; folder {out}",
          file=sys.stderr)
    progress = _Progress(len(tasks), len(done))
    started = time.monotonic()

    def on_row(row: dict) -> None:
        rows.append(row)
        with open(rows_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
        progress.row(row)

    status = EXIT_OK
    try:
        if todo:
            if args.engine == "local":
                _run_local(todo, str(out), workers, on_row)
            else:
                _run_ray(todo, str(out), args.workers, args.address, on_row)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except SweepError as exc:
        progress.close()
        print(f"sweep error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()
    wall = time.monotonic() - started
    latest = {r["run_id"]: r for r in rows}  # a resumed failure replaces its earlier row
    final = [latest[t["run_id"]] for t in tasks if t["run_id"] in latest]
    write_tables(out, final, list(grid))
    heatmap = write_heatmap(out, final, heat_keys)
    failed = sum(1 for r in final if r.get("error"))
    now_done = len(final) - len(done)
    print(f"sweep: {len(final)}/{len(tasks)} runs done ({failed} failed); {now_done} in {wall:.1f} s "
          f"({now_done / max(wall, 1e-9):.3f} runs/s); {out / 'results.md'}, {out / 'results.csv'}"
          + (f", {heatmap}" if heatmap else ""), file=sys.stderr)
    if status == EXIT_INTERRUPTED:
        print(f"interrupted: the finished rows are kept; run the same command with --resume to do the "
              f"{len(tasks) - len(final)} others", file=sys.stderr)
        return status
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
