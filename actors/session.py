"""Run one PAPER session: the actor tree and its shutdown (docs/architecture.md).

With ``market = "sim"`` (or ``"replay"``) the embedded exchange first; then the consumers (collector,
executor, aggregator), each under a supervisor; then the producers (one feed per exchange), which must
be ready within ``startup_timeout_s``. The duration counts from the moment both feeds are ready. The
session ends by cancelling the producers; channel closure then drains the aggregator, the executor and
the collector in that order, within ``shutdown_grace_s``; the final KPI file is written last. Ctrl-C or
SIGTERM take the same path (``actors.interrupts``), as does a disk error.

The command line is ``actors.cli`` (``python -m actors.session`` runs it); what is built from the
config is ``actors.wiring``.
"""

from __future__ import annotations

import gc
import random
import sys
from contextlib import ExitStack, nullcontext
from functools import partial
from typing import Any

import attrs
import trio
from loguru import logger

from actors.aggregator import run_aggregator
from actors.chaos import Killable, run_chaos
from actors.clock import show_in_log
from actors.collector import run_collector
from actors.config import Config
from actors.conventions import (
    AGGREGATOR,
    COLLECTOR,
    EXECUTOR,
    FEED_ACTORS,
    FEED_BINANCE,
    FEED_UPBIT,
    ExitCode,
    SeedStream,
)
from actors.core.book import BookView
from actors.core.market import MarketView
from actors.core.trader_outputs import FillEvent
from actors.core.vocabulary import RestartCause
from actors.executor import ExecutorState, run_executor
from actors.feed import diff_buffer_pool, run_binance_feed, run_upbit_feed
from actors.interrupts import Interrupts
from actors.net.seam import network_scope
from actors.net.ws import WsConnectError
from actors.records.files import DataWriteError, FillWriter, Recorder, write_json_atomic
from actors.records.kpi import SessionContext, build_kpi
from actors.records.paths import SessionPaths
from actors.replay_batch import BatchedReplay, why_actors
from actors.sim.direct import ENDPOINTS, DirectReplay
from actors.sim.exchange import SimEndpoints
from actors.sim.replay import ReplayHub, ReplayMarket, ReplayPacer
from actors.sim.serve import serve_hub, serve_sim
from actors.wiring import context, feed_configs, prepare_replay, replay_info, replay_pace
from supervision import SupervisorGaveUp, supervise

EXIT_OK, EXIT_FAILED = ExitCode.OK, ExitCode.FAILED
BOOKS_BUFFER, VIEWS_BUFFER, FILLS_BUFFER = 64, 16, 1024
REPLAY_TAIL_S = 1.0  # after a recording's last event, before the session stops


@attrs.frozen
class SessionResult:
    status: str
    exit_code: int
    paths: SessionPaths
    kpi: dict[str, Any]
    config: Config | None = None  # what the session ran with (the summary names the settings that mattered)
    kpi_error: str | None = None  # why the final KPI file could not be written (the file on disk is older)


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _stop_after_replay(pacer: ReplayPacer, ctx: SessionContext, stop: trio.Event) -> None:
    await pacer.finished.wait()
    await trio.sleep(REPLAY_TAIL_S)  # legs in flight meet the last books, the collector writes them
    logger.bind(actor="session").info("end of the recording: stopping")
    if pacer.error is not None:
        ctx.fatal.append(f"replay: {pacer.error}")
    stop.set()


async def _serve_replay(
    cfg: Config, ctx: SessionContext, replay: ReplayMarket, nursery: trio.Nursery
) -> tuple[SimEndpoints, ReplayPacer, DirectReplay | BatchedReplay | None]:
    """Serve a replay, directly at the network seam or through the embedded exchange; the session's
    market clock follows the recording from the replay's first served instant."""
    speed = 1.0 if cfg.replay.as_fast_as_possible else cfg.replay.speed
    pacer = ReplayPacer(replay, speed, replay_pace(cfg))
    ctx.clock.hold(replay.start_epoch_s)
    show_in_log(ctx.clock)
    pacer.on_start = lambda t0: ctx.clock.follow(t0, replay.start_epoch_s, speed)
    ctx.replay = replay_info(cfg, replay)
    ctx.replay_progress = lambda: {
        "recording_s": round(replay.served_s, 3),
        "recording_ended": pacer.finished.is_set() and pacer.error is None,
        "started_at_s": None if pacer.started_at is None else round(pacer.started_at - ctx.opened_at, 6),
        "start_epoch_s": replay.start_epoch_s,
        "pace": speed,
    }
    if replay.direct:
        direct = DirectReplay(replay, pacer)
        batched = BatchedReplay(cfg, ctx, direct) if why_actors(cfg) is None else None
        nursery.start_soon(direct.run_clock if batched is None else batched.run_clock)
        return ENDPOINTS, pacer, direct if batched is None else batched
    hub = ReplayHub(replay, cfg.sim, cfg.session.seed, pacer, cfg.replay.read_ahead_bytes)
    endpoints = await nursery.start(partial(serve_hub, hub, binance_symbol=cfg.feeds.binance.symbol))
    return endpoints, pacer, None


async def run_session(
    cfg: Config,
    paths: SessionPaths,
    *,
    handle_signals: bool = True,
    interrupts: Interrupts | None = None,
    live_console=None,
    replay: ReplayMarket | None = None,
    stop: trio.Event | None = None,
) -> SessionResult:
    """Run a whole session in the current Trio run; always attempts the final KPI file.

    ``stop``: setting it ends the session as a signal does (stop the feeds, drain, write); for callers
    that embed a session, such as bench/pipeline.py. ``handle_signals``: Ctrl-C and SIGTERM stop it
    (``interrupts`` carries what the process already received; a new one otherwise).

    ``replay`` (market = "replay"): the pre-rolled recording (``prepare_replay``); its clock starts
    when both feeds are ready and the session stops at its end (or after duration_s, if sooner).
    """
    log = logger.bind(actor="session")
    # GC: collect now, then freeze everything that exists once the feeds are ready (modules, config, a
    # pre-rolled recording, the books) out of the cyclic collector's reach, so later collections only
    # walk what trading allocates (a full pass over the startup heap took ~30 ms; docs/performance.md)
    gc.collect()
    ctx = context(cfg, paths.session_id, trio.current_time())
    stop = stop if stop is not None else trio.Event()
    if handle_signals and interrupts is None:
        interrupts = Interrupts()

    def disk_failed(error: str) -> None:
        log.error("{}: no new trades; stopping the session", error)
        stop.set()

    ctx.on_disk_error = disk_failed
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    writer = FillWriter(
        paths.fill_events, cfg.collector.fsync, cfg.collector.fsync_interval_s, on_error=ctx.write_failed
    )
    recorder = Recorder(paths.recording, ctx.opened_at, ctx.write_failed) if cfg.session.record else None
    if writer.repaired_bytes:
        log.warning("{}: cut a torn last line ({} bytes) left by a crash", paths.fill_events, writer.repaired_bytes)
    live = None
    if live_console is not None:
        from actors.liveview import LiveView

        live = LiveView(ctx, live_console)
    with live if live is not None else nullcontext():  # leaving it draws the last frame, with the final status
        try:
            async with trio.open_nursery() as root:
                if interrupts is not None:
                    root.start_soon(interrupts.watch, stop)
                if live is not None:
                    root.start_soon(live.run)
                pacer, direct = None, None
                if cfg.session.market == "sim":
                    endpoints = await root.start(
                        partial(serve_sim, cfg.sim, cfg.session.seed, binance_symbol=cfg.feeds.binance.symbol)
                    )
                elif cfg.session.market == "replay":
                    replay = replay if replay is not None else prepare_replay(cfg)
                    endpoints, pacer, direct = await _serve_replay(cfg, ctx, replay, root)
                else:
                    endpoints = None
                if isinstance(direct, BatchedReplay):
                    await direct.run(cfg, paths, writer, stop, log)
                else:
                    if cfg.session.market == "replay":
                        log.info("replay path: actors ({})", why_actors(cfg))
                    with network_scope(direct) if direct is not None else nullcontext():
                        await _run_actors(
                            cfg, paths, ctx, writer, recorder, feed_configs(cfg, endpoints), stop, pacer, log
                        )
                root.cancel_scope.cancel()
        finally:
            show_in_log(None)
            gc.unfreeze()
            writer.close()  # never raises: a failure is reported through ctx.write_failed
            if recorder is not None:
                recorder.close()
            kpi, kpi_error = _final_kpi(
                ctx, paths, interrupted=interrupts is not None and interrupts.count > 0, log=log
            )
    for error in ctx.fatal:
        log.error("fatal: {}", error)
    return SessionResult(ctx.status, EXIT_FAILED if ctx.fatal else EXIT_OK, paths, kpi, cfg, kpi_error)


async def _run_actors(
    cfg: Config,
    paths: SessionPaths,
    ctx: SessionContext,
    writer: FillWriter,
    recorder: Recorder | None,
    feeds: tuple[Any, Any],
    stop: trio.Event,
    pacer: ReplayPacer | None,
    log,
) -> None:
    """The actor tree: consumers started first and stopped last, feeds ready within startup_timeout_s,
    trading, then the feeds cancelled and the pipeline drained within shutdown_grace_s."""
    s = cfg.session
    jitter_rng = random.Random(s.seed + SeedStream.MARKET)
    draining = trio.Event()  # set once the feeds are stopped: consumers restart without backoff to drain
    actors, owned = _actors(cfg, paths, ctx, writer, recorder, feeds)
    upbit_out, binance_out = owned[FEED_UPBIT][0], owned[FEED_BINANCE][0]

    async def supervised(name: str, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Supervise one actor; close the channels it owns when supervision ends; a give-up stops the session."""
        with ExitStack() as stack:
            for channel in owned[name]:
                stack.enter_context(channel)
            try:
                await supervise(
                    actors[name],
                    name=name,
                    policy=cfg.supervision,
                    stats=ctx.children[name],
                    rng=random.Random(jitter_rng.random()),
                    hurry=draining,
                    task_status=task_status,
                )
            except SupervisorGaveUp as exc:
                ctx.fatal.append(_gave_up(exc, s.market))
                stop.set()

    async with trio.open_nursery() as consumers:
        for name in (COLLECTOR, EXECUTOR, AGGREGATOR):  # the task carries the actor's name (tracebacks, instruments)
            await consumers.start(supervised, name, name=name)
        # the feeds' channel ends close when the producers are done, also those of a feed never started
        # (a stop during startup): the aggregator then sees the end of its inbox and the pipeline drains
        with upbit_out, binance_out:
            async with trio.open_nursery() as producers:
                with trio.CancelScope(deadline=ctx.opened_at + s.startup_timeout_s) as startup:
                    producers.start_soon(_cancel_when, stop, startup)
                    for name in (FEED_UPBIT, FEED_BINANCE):
                        await producers.start(supervised, name, name=name)
                if startup.cancelled_caught and not stop.is_set():
                    ctx.fatal.append(_startup_failure(ctx, s.startup_timeout_s, s.market))
                    stop.set()
                if not stop.is_set():
                    await _trade(ctx, cfg, stop, producers, actors, pacer, log)
                ctx.ended_at = trio.current_time()
                log.info("stopping: cancelling the feeds, draining the pipeline")
                draining.set()
                producers.cancel_scope.cancel()
        consumers.cancel_scope.deadline = trio.current_time() + s.shutdown_grace_s
    if consumers.cancel_scope.cancelled_caught:
        ctx.fatal.append(f"the pipeline did not drain within shutdown_grace_s={s.shutdown_grace_s:g}")


def _actors(
    cfg: Config,
    paths: SessionPaths,
    ctx: SessionContext,
    writer: FillWriter,
    recorder: Recorder | None,
    feeds: tuple[Any, Any],
) -> tuple[dict[str, Killable], dict[str, tuple[Any, ...]]]:
    """Every actor, killable by chaos, and the channel ends each one's supervisor owns (and closes)."""
    s = cfg.session
    books_send, books_recv = trio.open_memory_channel[BookView](BOOKS_BUFFER)
    views_send, views_recv = trio.open_memory_channel[MarketView](VIEWS_BUFFER)
    fills_send, fills_recv = trio.open_memory_channel[FillEvent](FILLS_BUFFER)
    with books_send:  # fan-in: one clone per feed
        upbit_out, binance_out = books_send.clone(), books_send.clone()
    executor_state = ExecutorState(ctx.trader, ctx.clock, wire_to_decision=ctx.wire_to_decision)
    children = {
        COLLECTOR: partial(
            run_collector, fills_recv, writer, ctx, paths.kpi, s.kpi_interval_s, s.status_interval_s, paths.premium
        ),
        EXECUTOR: partial(run_executor, views_recv, fills_send, executor_state),
        AGGREGATOR: partial(run_aggregator, books_recv, views_send, ctx.market_state, cfg.aggregator.coalesce_ms / 1e3),
        FEED_UPBIT: partial(run_upbit_feed, feeds[0], upbit_out, ctx.feeds["upbit"], recorder=recorder),
        FEED_BINANCE: partial(
            run_binance_feed,
            feeds[1],
            binance_out,
            ctx.feeds["binance"],
            recorder=recorder,
            diff_pool=diff_buffer_pool(cfg.feeds.binance),  # every Binance book's (one today), across restarts
        ),
    }
    owned: dict[str, tuple[Any, ...]] = {
        COLLECTOR: (fills_recv,),
        EXECUTOR: (views_recv, fills_send),
        AGGREGATOR: (books_recv, views_send),
        FEED_UPBIT: (upbit_out,),
        FEED_BINANCE: (binance_out,),
    }
    return {name: Killable(name, child) for name, child in children.items()}, owned


def _final_kpi(
    ctx: SessionContext, paths: SessionPaths, *, interrupted: bool, log
) -> tuple[dict[str, Any], str | None]:
    """The session's status and its final KPI document, written when the disk allows (else why not)."""
    now = trio.current_time()
    if ctx.ended_at is None:
        ctx.ended_at = now
    ctx.status = "failed" if ctx.fatal else ("interrupted" if interrupted else "completed")
    kpi = build_kpi(ctx, now, final=True).document()
    try:
        write_json_atomic(paths.kpi, kpi)
    except DataWriteError as exc:
        ctx.write_failed(exc)
        ctx.status = "failed"
        log.error("the final KPI file was not written: {}", exc)
        # what the summary prints: the figures as final, with the failure in them (on disk is an older snapshot)
        return build_kpi(ctx, now, final=True).document(), str(exc)
    return kpi, None


async def _trade(
    ctx: SessionContext,
    cfg: Config,
    stop: trio.Event,
    producers: trio.Nursery,
    actors: dict[str, Killable],
    pacer: ReplayPacer | None,
    log,
) -> None:
    """Both feeds are ready: trade for the session's duration, or until ``stop``."""
    ctx.trading_since = trio.current_time()
    gc.freeze()  # see gc.collect() in run_session; undone when the session ends
    log.info(
        "both feeds ready after {:.2f} s; trading for {:g} s", ctx.trading_since - ctx.opened_at, cfg.session.duration_s
    )
    if cfg.chaos.kill_every_s > 0:
        log.warning("chaos: killing one of {} every {:g} s", ", ".join(cfg.chaos.actors), cfg.chaos.kill_every_s)
        producers.start_soon(
            run_chaos,
            [actors[name] for name in cfg.chaos.actors],
            cfg.chaos.kill_every_s,
            random.Random(cfg.session.seed + SeedStream.CHAOS),
            ctx.chaos_kills,
        )
    if pacer is not None:
        producers.start_soon(_stop_after_replay, pacer, ctx, stop)
    with trio.move_on_after(cfg.session.duration_s):
        await stop.wait()
    if pacer is not None and not pacer.finished.is_set():
        log.info(
            "replay: stopped after {:.1f} s of the recording; {}",
            pacer.market.served_s,
            pacer.market.recording.describe(),
        )


def _startup_failure(ctx: SessionContext, timeout_s: float, market: str) -> str:
    """Why the session could not start: which feed was not ready, and its last error."""
    waiting, causes = [], set()
    for venue, name in FEED_ACTORS.items():
        if not ctx.feeds[venue].connected:
            child = ctx.children[name]
            if not child.starts:
                waiting.append(f"{name} not started (a feed starts once the one before it is ready)")
                continue
            last = child.last_error or "no error: still connecting"
            causes.add(child.last_cause)
            waiting.append(f"{name} not ready ({child.restarts} restarts; last: {last})")
    if causes == {RestartCause.CONNECT} and market == "live":
        advice = _unreached()
    else:
        advice = "Check the endpoints and market codes in [feeds]"
    return (
        f"startup: the feeds were not ready within startup_timeout_s={timeout_s:g}: "
        + "; ".join(waiting)
        + ". "
        + advice
    )


def _unreached(how: str = "") -> str:
    """What to do when a live feed could not reach its exchange (this machine may have no internet)."""
    return (
        f"The exchange could not be reached{f' ({how})' if how else ''}: check this machine's network and the "
        "URLs in [feeds]; without internet access, run on the embedded exchange with --market sim"
    )


def _gave_up(exc: SupervisorGaveUp, market: str) -> str:
    """The fatal line of an actor given up on. A live feed that could not connect says why in words (the name
    did not resolve, the connection was refused, it timed out) and what to do on this machine, instead of the
    generic advice to allow more restarts."""
    leaf = exc.__cause__
    while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
        leaf = leaf.exceptions[0]
    if not isinstance(leaf, WsConnectError) or market != "live":
        return str(exc)
    failure = leaf.failure
    if failure.unreached:
        advice = _unreached(failure.kind) + "."
    else:
        advice = (
            f"The exchange was reached but the connection failed ({failure.kind}): check the URLs in [feeds], "
            "or run on the embedded exchange with --market sim."
        )
    return str(attrs.evolve(exc, last_error=str(leaf), advice=advice))


if __name__ == "__main__":
    from actors.cli import main

    sys.exit(main())
