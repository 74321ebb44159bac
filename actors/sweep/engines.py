"""Running tasks: one session per task in a worker process (a replay, or a simulated session), both on the
virtual clock over the in-memory network, on a local process pool or on Ray. A worker takes a chunk of tasks
(``chunks``): the grid points of one market (a recording, or a seed of the simulator) whose configs differ only in
the trader's sections share one pass of it (``actors.session.group``); the others run one after the other."""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from actors.core.acceptance import SIDES
from actors.sweep.grid import SweepError
from actors.sweep.results import REPLAY, SIM, SweepRow

if TYPE_CHECKING:
    from actors.config import Config
    from actors.records.kpi import Kpi
    from actors.records.paths import SessionPaths
    from actors.session import SessionResult

# -- one run (in a worker process) -----------------------------------------------------------------


MAX_SHARED = 16  # sessions over one pass of a market at most (each holds its books, trader and files)


def chunks(tasks: list[dict[str, Any]], workers: int) -> list[list[dict[str, Any]]]:
    """The tasks as workers take them: the tasks of one market (a recording, or a seed of the simulated one) in as
    few chunks as keep ``workers`` busy (at most MAX_SHARED each), so that its grid points can share its pass."""
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for task in tasks:
        market = task.get("market", REPLAY)
        keyed.setdefault((market, str(task["recording"] if market == REPLAY else task["seed"])), []).append(task)
    out = []
    for group in keyed.values():
        parts = max(math.ceil(len(group) / MAX_SHARED), min(len(group), math.ceil(workers * len(group) / len(tasks))))
        size = math.ceil(len(group) / parts)
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


def run_tasks(tasks: list[dict[str, Any]], out_dir: str) -> list[SweepRow]:
    """Run a chunk of tasks (of one market: ``chunks``): over one pass of it where they can share it, else one by
    one; a row for each, in the same order."""
    if len(tasks) < 2:
        return [run_task(task, out_dir) for task in tasks]
    try:
        return _run_shared(tasks, out_dir)
    except _NotShared as exc:
        return [run_task(task, out_dir, note=f"market pass: its own ({exc})") for task in tasks]


class _NotShared(Exception):
    """Why a chunk's tasks run one by one (their configs, what their market needs, or the shared pass failing)."""


def _run_shared(tasks: list[dict[str, Any]], out_dir: str) -> list[SweepRow]:
    import trio
    import trio.testing

    from actors.logs import configure_run_logs
    from actors.net.memory import memory_network
    from actors.records.kpi import as_kpi
    from actors.session.group import run_replay_group, run_sim_group, why_not_grouped
    from actors.wiring import prepare_replay

    started = time.perf_counter()
    market = tasks[0].get("market", REPLAY)
    try:
        opened = [_opened(task, out_dir) for task in tasks]
        replay = prepare_replay(opened[0][0]) if market == REPLAY else None
    except Exception as exc:  # as run_task would have met it: each task says so in its row
        raise _NotShared(f"{type(exc).__name__}: {exc}") from None
    why = why_not_grouped([cfg for cfg, _ in opened], replay)
    if why is not None:
        raise _NotShared(why)
    configure_run_logs({task["run_id"]: paths.log for task, (_, paths) in zip(tasks, opened)})
    sessions = [(task["run_id"], cfg, paths) for task, (cfg, paths) in zip(tasks, opened)]

    async def main() -> list[SessionResult]:
        memory_network()
        return await (run_sim_group(sessions) if replay is None else run_replay_group(sessions, replay))

    try:
        results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except Exception as exc:  # one session's failure took the pass down: each runs alone, and says why in its row
        raise _NotShared(f"the shared pass failed: {type(exc).__name__}: {exc}") from None
    wall_s = (time.perf_counter() - started) / len(tasks)  # each run's share of the pass
    return [
        _row(task, _recording(task), cfg.session.seed, as_kpi(result.kpi), paths, wall_s)
        for task, (cfg, paths), result in zip(tasks, opened, results)
    ]


def _recording(task: dict[str, Any]) -> str:
    """The name of the recording a replay's task replays (of its first file); "" on the simulated market."""
    return Path(task["recording"].split("+")[0]).name if task.get("market", REPLAY) == REPLAY else ""


def _opened(task: dict[str, Any], out_dir: str) -> tuple[Config, SessionPaths]:
    """The task's config and its run's folder, emptied (a run cut short by an interrupt starts over)."""
    from actors import config as config_mod
    from actors.records.paths import SessionPaths

    run_dir = Path(out_dir) / "runs" / task["run_id"]
    overrides = json.loads(json.dumps(task["overrides"]))
    overrides["session"]["logs_dir"] = str(run_dir)
    cfg = config_mod.load(task["config"], overrides)
    if run_dir.exists():  # its files would be appended to
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return cfg, SessionPaths(run_dir, task["run_id"])


def _failed(task: dict[str, Any], exc: Exception, wall_s: float) -> SweepRow:
    market = task.get("market", REPLAY)
    return SweepRow(
        run_id=task["run_id"],
        market=market,
        recording=_recording(task),
        values=task["values"],
        status="failed",
        error=f"{type(exc).__name__}: {exc}".replace("\n", " | "),
        seed=task.get("seed"),
        wall_s=round(wall_s, 3),
    )


def run_task(task: dict[str, Any], out_dir: str, note: str | None = None) -> SweepRow:
    """Run one session: a replay of the task's recording, or the simulated market of its seed, as
    ``python -m actors.session`` runs them with ``--as-fast-as-possible`` / ``--virtual-time``; always returns
    a row (``error`` says what went wrong, if anything)."""
    import trio
    import trio.testing
    from loguru import logger

    from actors.logs import configure_logging
    from actors.net.memory import memory_network
    from actors.records.kpi import as_kpi
    from actors.session import run_session
    from actors.wiring import prepare_replay

    started = time.perf_counter()
    market = task.get("market", REPLAY)
    recording = _recording(task)
    try:
        cfg, paths = _opened(task, out_dir)
        configure_logging(paths.log, stderr_level="CRITICAL")
        if note is not None:
            logger.info(note)
        replay = prepare_replay(cfg) if market == REPLAY else None

        async def main() -> SessionResult:
            memory_network()
            return await run_session(cfg, paths, handle_signals=False, replay=replay)

        kpi = as_kpi(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)).kpi)
        return _row(task, recording, cfg.session.seed, kpi, paths, time.perf_counter() - started)
    except Exception as exc:  # reported in the row; the other runs go on
        return _failed(task, exc, time.perf_counter() - started)


def _row(task: dict[str, Any], recording: str, seed: int, kpi: Kpi, paths: SessionPaths, wall_s: float) -> SweepRow:
    """The row of a session that ended: its KPI's figures, and from its fill events its trades' wins and the fees
    of the trades its realized PnL counts (so that PnL + fees is the PnL before fees)."""
    from actors.tools.realism import market_sentence
    from actors.tools.session_files import read_events
    from actors.tools.trades import rebuild_trades, totals

    trades = rebuild_trades(read_events(paths.fill_events).events)
    summed = totals(trades)
    stats = kpi.realism.stats.values() if kpi.realism is not None else ()
    judged = [s.in_window_range for s in stats if s.in_window_range is not None]  # measured, with a reference
    simulated = kpi.market == SIM
    return SweepRow(
        run_id=task["run_id"],
        market=kpi.market,
        market_note=market_sentence(kpi),
        recording=recording,
        values=task["values"],
        status=kpi.status,
        error="; ".join(kpi.fatal_errors),
        seed=seed,
        replayed_s=None if simulated else round(kpi.duration_s, 3),
        simulated_s=round(kpi.duration_s, 3) if simulated else None,
        trades=kpi.entry_trades,
        closed_trades=summed.closed,
        wins=summed.wins,
        fill_events=kpi.fill_events,
        pnl_usdt=round(kpi.pnl_usdt, 6),
        unrealized_pnl_usdt=round(kpi.unrealized_pnl_usdt, 6),
        fees_usdt=round(sum(t.fees_usdt for t in trades if t.pnl_usdt is not None), 6),  # those of pnl_usdt
        fill_ratio_by_zone={
            f"{zone} {side}": round(ratio.mean, 4)
            for zone, sides in kpi.fill_ratio_by_zone.items()
            for side in SIDES
            if (ratio := sides.of(side)).mean is not None
        },
        reconnects=sum(kpi.reconnects.values()),
        risk_stopped=kpi.risk_stopped,
        realism_in_range=sum(judged) if judged else None,
        realism_judged=len(judged) if judged else None,
        wall_s=round(wall_s, 3),
    )


# -- engines ---------------------------------------------------------------------------------------


def _run_local(tasks: list[dict[str, Any]], out_dir: str, workers: int, on_row: Callable[[SweepRow], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
    )
    pending = {pool.submit(run_tasks, chunk, out_dir) for chunk in chunks(tasks, workers)}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                for row in future.result():
                    on_row(row)
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


def _run_ray(
    tasks: list[dict[str, Any]],
    out_dir: str,
    workers: int | None,
    address: str | None,
    on_row: Callable[[SweepRow], None],
) -> None:
    """The tasks as Ray tasks, on the cluster at ``address`` or on a local Ray instance of ``workers`` CPUs.

    A local instance is always a new one (``address="local"``: never the last one recorded under /tmp/ray,
    which may be dead) with its own temporary folder, removed at the end; ``ray.shutdown()`` runs whatever
    happens, so a failed start leaves no processes, sockets or session files to trip the next sweep over.
    SweepError when Ray is missing or does not start."""
    try:
        import ray
    except ImportError:
        raise SweepError(
            "--engine ray needs Ray: pip install '.[ray]' (or pip install ray), or use --engine local"
        ) from None
    temp_dir = None if address else tempfile.mkdtemp(prefix="arb-sweep-ray-")
    try:
        try:
            if address:
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(
                    address="local",
                    num_cpus=workers,
                    logging_level="WARNING",
                    log_to_driver=False,
                    include_dashboard=False,
                    _temp_dir=temp_dir,
                )
        except Exception as exc:  # whatever Ray raises: ConnectionError, RuntimeError, a timeout of its own
            what = f"connect to the Ray cluster at {address}" if address else "start a local Ray instance"
            raise SweepError(
                f"--engine ray: could not {what} ({_first_line(exc)}); nothing ran, nothing is left behind: "
                "run the same command again when Ray works, or use --engine local"
            ) from None
        remote = ray.remote(num_cpus=1, max_retries=0)(run_tasks)
        cpus = workers or int(ray.cluster_resources().get("CPU", 1))
        pending = [remote.remote(chunk, out_dir) for chunk in chunks(tasks, cpus)]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    for row in ray.get(ref):
                        on_row(row)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        try:
            ray.shutdown()  # also after a failed init: it stops the processes that init had started
        except Exception as exc:  # must not hide why the sweep stopped; say what may be left running
            print(f"sweep: ray.shutdown() failed ({_first_line(exc)}); `ray stop` ends what is left", file=sys.stderr)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
