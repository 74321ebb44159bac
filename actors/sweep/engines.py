"""Running tasks: one session per task in a worker process (a replay, or a simulated session), both on the
virtual clock over the in-memory network, on a local process pool or on Ray."""

from __future__ import annotations

import json
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
    from actors.records.kpi import Kpi
    from actors.records.paths import SessionPaths
    from actors.session import SessionResult

# -- one run (in a worker process) -----------------------------------------------------------------


def run_task(task: dict[str, Any], out_dir: str) -> SweepRow:
    """Run one session: a replay of the task's recording, or the simulated market of its seed, as
    ``python -m actors.session`` runs them with ``--as-fast-as-possible`` / ``--virtual-time``; always returns
    a row (``error`` says what went wrong, if anything)."""
    import trio
    import trio.testing

    from actors import config as config_mod
    from actors.logs import configure_logging
    from actors.net.memory import memory_network
    from actors.records.kpi import as_kpi
    from actors.records.paths import SessionPaths
    from actors.session import run_session
    from actors.wiring import prepare_replay

    started = time.perf_counter()
    market = task.get("market", REPLAY)
    recording = Path(task["recording"].split("+")[0]).name if market == REPLAY else ""
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
        replay = prepare_replay(cfg) if market == REPLAY else None

        async def main() -> SessionResult:
            memory_network()
            return await run_session(cfg, paths, handle_signals=False, replay=replay)

        kpi = as_kpi(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)).kpi)
        return _row(task, recording, cfg.session.seed, kpi, paths, time.perf_counter() - started)
    except Exception as exc:  # reported in the row; the other runs go on
        return SweepRow(
            run_id=task["run_id"],
            market=market,
            recording=recording,
            values=task["values"],
            status="failed",
            error=f"{type(exc).__name__}: {exc}".replace("\n", " | "),
            seed=task.get("seed"),
            wall_s=round(time.perf_counter() - started, 3),
        )


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
        try:
            ray.shutdown()  # also after a failed init: it stops the processes that init had started
        except Exception as exc:  # must not hide why the sweep stopped; say what may be left running
            print(f"sweep: ray.shutdown() failed ({_first_line(exc)}); `ray stop` ends what is left", file=sys.stderr)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
