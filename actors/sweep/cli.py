"""``python -m actors.sweep``: progress on the terminal and the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from actors.conventions import ExitCode
from actors.sweep.engines import _run_local, _run_ray, chunks
from actors.sweep.grid import SweepError, _label, check_effective, parse_grid, parse_seeds, plan, plan_sim
from actors.sweep.results import REPLAY, SIM, SweepRow, read_rows, row_document, write_heatmap, write_tables

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.INTERRUPTED


# -- progress --------------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar on a terminal, otherwise one line per finished run; both with an ETA."""

    def __init__(self, total: int, already: int, *, recordings: int = 1) -> None:
        self.total, self.done, self.failed = total, already, 0
        self._recordings = recordings
        self._fresh = 0
        self._t0 = time.monotonic()
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task("sweep", total=total, completed=already)
            self._bar.start()

    def row(self, row: SweepRow) -> None:
        self.done += 1
        self._fresh += 1
        self.failed += bool(row.error)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            if row.error:
                self._bar.console.print(f"run {self._point(row)} failed: {row.error} ({row.run_id})", markup=False)
            return
        elapsed = time.monotonic() - self._t0
        eta = elapsed / self._fresh * (self.total - self.done)
        print(
            f"run {self.done}/{self.total} {self._point(row)}: {_outcome(row)} ({row.wall_s:.1f} s, {row.run_id}); "
            f"ETA {eta:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def _point(self, row: SweepRow) -> str:
        """What the run ran: its grid values, and its seed on the simulated market, or its recording when the
        sweep has several (or no grid)."""
        parts = [f"{key}={value}" for key, value in row.values.items()]
        if row.market == SIM:
            parts.append(f"seed {row.seed}")
        elif self._recordings > 1 or not parts:
            parts.append(f"on {row.recording}")
        return " ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _outcome(row: SweepRow) -> str:
    if row.error:
        return f"error: {row.error}"
    if row.pnl_usdt is None:
        return row.status
    trades = "" if row.trades is None else f", {row.trades} trade{'' if row.trades == 1 else 's'}"
    return f"PnL {row.pnl_usdt:+.4f} USDT{trades}"


# -- command line ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m actors.sweep",
        description="Run a grid of config values over recordings (one replay session per grid point and "
        "recording) or over the simulated market (one simulated session per grid point and seed), on the "
        "virtual clock; grid points of one recording or seed that differ only in the trader's sections "
        "([strategy], [fees], [lots], [portfolio], [risk], [acceptance]) share one pass of its market, with the "
        "results each has alone; results sorted by PnL, per grid point over its seeds or recordings, and a "
        "heatmap (docs/scaling.md).",
    )
    p.add_argument("--config", required=True, metavar="PATH", help="base TOML config, docs/config.md (required)")
    market = p.add_mutually_exclusive_group(required=True)
    market.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="replay these recordings, one run set each; join the files of one recording with '+' (this or "
        "--sim-seeds is required)",
    )
    market.add_argument(
        "--sim-seeds",
        metavar="SEEDS",
        help="run on the simulated market ([sim] of the config) once per seed: 1,2,3 or 1-8 or 1-4,9 (this or "
        "--replay is required)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a dotted config key and its values, repeat for more keys (default: none, one run per recording or seed)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool; ray: Ray tasks, pip install '.[ray]' (default: %(default)s)",
    )
    p.add_argument(
        "--address", metavar="ADDR", help="--engine ray: an existing Ray cluster (default: start a local one)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="parallel runs (default: the CPU count)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="sweep folder (default: sweeps/<time> beside session.logs_dir, e.g. logs/sweeps/<time>)",
    )
    p.add_argument("--resume", action="store_true", help="skip rows already done in --out")
    p.add_argument("--seed", type=int, metavar="N", help="--replay: session.seed of every run (default: the config's)")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="--replay: cap each replay at S session seconds (default: the whole recording, up to "
        "session.duration_s); --sim-seeds: each run lasts S seconds (default: session.duration_s)",
    )
    p.add_argument("--heatmap", metavar="KEY1,KEY2", help="the two grid keys of the heatmap (default: the first two)")
    return p


def _checked(args: argparse.Namespace) -> tuple[Any, dict[str, list[Any]], list[dict[str, Any]], list[str]]:
    """(base config, grid, tasks, heatmap keys), every grid point's config checked, and every grid key shown to
    change something, before anything starts; SweepError or ConfigError otherwise."""
    from actors import config as config_mod

    grid = parse_grid(args.grid)
    if args.sim_seeds is not None:
        if args.seed is not None:
            raise SweepError(
                f"--seed {args.seed}: a sweep over the simulated market runs every seed of --sim-seeds; "
                f"give the seed there (--sim-seeds {args.seed})"
            )
        seeds = parse_seeds(args.sim_seeds)
        base = config_mod.load(args.config, {"session": {"market": SIM}})
        tasks = plan_sim(args.config, seeds, grid, duration_s=args.duration)
        runs_per_point = len(seeds)
    else:
        base = config_mod.load(
            args.config, {"session": {"market": REPLAY}, "replay": {"files": args.replay[0].split("+")}}
        )
        for recording in args.replay:
            for f in recording.split("+"):
                if not Path(f).is_file():
                    raise SweepError(f"--replay {f}: file not found")
        tasks = plan(args.config, args.replay, grid, seed=args.seed, duration_s=args.duration)
        runs_per_point = len(args.replay)
    points = [
        config_mod.load(args.config, json.loads(json.dumps(task["overrides"])))
        for task in tasks[: len(tasks) // runs_per_point]
    ]
    check_effective(
        grid,
        points,
        args.config,
        seed=args.seed,
        duration_s=args.duration,
        market=SIM if args.sim_seeds is not None else REPLAY,
    )
    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers expected an integer >= 1, got {args.workers}")
    heat_keys = [k.strip() for k in args.heatmap.split(",")] if args.heatmap else list(grid)
    unknown = [k for k in heat_keys if k not in grid]
    if unknown:
        raise SweepError(f"--heatmap {args.heatmap}: {', '.join(unknown)} not among the grid keys {list(grid)}")
    return base, grid, tasks, heat_keys


def _manifest(args: argparse.Namespace, grid: dict[str, list[Any]], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """What --resume checks: the arguments that decide the runs, and the runs' ids."""
    labels = {k: [_label(v) for v in vs] for k, vs in grid.items()}
    if args.sim_seeds is not None:
        seeds = sorted({t["seed"] for t in tasks})
        where: dict[str, Any] = {"market": SIM, "seeds": seeds, "grid": labels}
    else:
        where = {"recordings": args.replay, "grid": labels, "seed": args.seed}
    return {"config": args.config, **where, "duration_s": args.duration, "runs": [t["run_id"] for t in tasks]}


def _over(manifest: dict[str, Any]) -> str:
    """What a sweep's grid runs over, in words: its recordings, or its seeds of the simulated market."""
    if manifest.get("market") == SIM:
        return f"seeds {manifest.get('seeds')} of the simulated market"
    return str(manifest.get("recordings"))


def _folder(
    args: argparse.Namespace, base: Any, grid: dict[str, list[Any]], tasks: list[dict[str, Any]]
) -> tuple[Path, bool]:
    """The sweep's folder with its manifest, and whether this call made the folder. A folder holding another
    sweep only with --resume and the same arguments (SweepError otherwise); one where the same sweep never
    finished a run (its engine did not start, say) holds nothing to protect and is taken as it is."""
    out = Path(args.out or Path(base.session.logs_dir).parent / "sweeps" / time.strftime("%Y%m%d_%H%M%S"))
    manifest = _manifest(args, grid, tasks)
    if out.exists() and (out / "sweep.json").exists():
        previous = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
        unstarted = previous == manifest and not (out / "rows.jsonl").exists()
        if not args.resume and not unstarted:
            raise SweepError(f"{out} holds a sweep already: --resume continues it, or choose another --out")
        if previous != manifest:
            raise SweepError(
                f"--resume with different arguments than the sweep in {out} "
                f"(it has grid {previous.get('grid')} over {_over(previous)})"
            )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out, created


def _take_back(out: Path, created: bool) -> None:
    """Undo ``_folder`` for a sweep whose engine never ran a task: no manifest, and no folder if this sweep
    made it, so nothing is in the way of the same command later."""
    if (out / "rows.jsonl").exists():
        return  # rows are results: a later --resume keeps them
    (out / "sweep.json").unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
            out.rmdir()


def _workers(args: argparse.Namespace, workers: int) -> str:
    if args.engine == "ray" and args.address:
        return "the cluster's workers"
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _start_line(
    args: argparse.Namespace,
    tasks: list[dict[str, Any]],
    grid: dict[str, list[Any]],
    done: int,
    workers: int,
    out: Path,
) -> str:
    """What the sweep is about to run, and where."""
    if args.sim_seeds is not None:
        seeds = len({t["seed"] for t in tasks})
        over = f"{seeds} seed{'s' if seeds > 1 else ''} on the simulated market"
    else:
        over = f"{len(args.replay)} recording(s)"
    return (
        f"sweep: {len(tasks)} runs ({len(grid) and ' x '.join(str(len(v)) for v in grid.values()) or 1} grid "
        f"points x {over}), {done} already done, engine {args.engine}, "
        f"{_workers(args, workers)}; folder {out}"
    )


def _results(
    out: Path,
    tasks: list[dict[str, Any]],
    rows: list[SweepRow],
    grid: dict[str, list[Any]],
    heat_keys: list[str],
    done: int,
    wall: float,
) -> tuple[int, int]:
    """Write the tables and the heatmap of every task's latest row and say so; (rows finished, failed)."""
    latest = {r.run_id: r for r in rows}  # a resumed failure replaces its earlier row
    final = [latest[t["run_id"]] for t in tasks if t["run_id"] in latest]
    write_tables(out, final, list(grid))
    heatmap = write_heatmap(out, final, heat_keys, {k: [_label(v) for v in vs] for k, vs in grid.items()})
    failed = sum(1 for r in final if r.error)
    now_done = len(final) - done
    print(
        f"sweep: {len(final)}/{len(tasks)} runs done ({failed} failed); {now_done} in {wall:.1f} s "
        f"({now_done / max(wall, 1e-9):.3f} runs/s); {out / 'results.md'}, {out / 'results.csv'}, "
        f"{out / 'results_by_point.csv'}" + (f", {heatmap}" if heatmap else ""),
        file=sys.stderr,
    )
    return len(final), failed


def main(argv: list[str] | None = None) -> int:
    import os

    from actors.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        base, grid, tasks, heat_keys = _checked(args)
        out, created = _folder(args, base, grid, tasks)
    except (SweepError, ConfigError) as exc:
        print(f"sweep error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rows_path = out / "rows.jsonl"
    done = {r.run_id: r for r in read_rows(rows_path) if not r.error}
    todo = [t for t in tasks if t["run_id"] not in done]
    rows = [done[t["run_id"]] for t in tasks if t["run_id"] in done]
    workers = args.workers or os.cpu_count() or 1
    line = _start_line(args, tasks, grid, len(done), workers, out)
    shared = [chunk for chunk in chunks(todo, workers) if len(chunk) > 1]
    if shared:  # whether they can is each worker's to check (their configs, what the market needs)
        runs = sum(len(chunk) for chunk in shared)
        chunked = f"{len(shared)} chunk{'s' if len(shared) > 1 else ''}"
        line += f"; {runs} runs in {chunked} of one market, each to share one pass of it (docs/scaling.md)"
    print(line, file=sys.stderr)
    progress = _Progress(len(tasks), len(done), recordings=len(args.replay or ()))
    started = time.monotonic()

    def on_row(row: SweepRow) -> None:
        rows.append(row)
        with open(rows_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row_document(row), separators=(",", ":")) + "\n")
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
    except SweepError as exc:  # the engine did not start (Ray missing, or not starting)
        progress.close()
        _take_back(out, created)
        print(f"sweep error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()
    finished, failed = _results(out, tasks, rows, grid, heat_keys, len(done), time.monotonic() - started)
    if status == EXIT_INTERRUPTED:
        print(
            f"interrupted: the finished rows are kept; run the same command with --resume to do the "
            f"{len(tasks) - finished} others",
            file=sys.stderr,
        )
        return status
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
