"""Run one PAPER session: its market, its actor tree and its final KPI file (docs/architecture.md).

With ``market = "sim"`` (or ``"replay"``) the embedded exchange first; then the actor tree
(``actors.session.tree``): the consumers (collector, executor, aggregator), each under a supervisor, then the
producers (one feed per exchange), which must be ready within ``startup_timeout_s``. The duration counts from
the moment both feeds are ready. The session ends by cancelling the producers; channel closure then drains
the aggregator, the executor and the collector in that order, within ``shutdown_grace_s``; the final KPI file
is written last. Ctrl-C or SIGTERM take the same path (``actors.interrupts``), as does a disk error (an event:
``DiskWatch``, which this frame reacts to).

The session frame (``run_session``) owns what the session is (``SessionInfo``) and every source of its state
(``Sources``); the KPI document is built from their snapshots. The command line is ``actors.cli``
(``python -m actors.session`` runs it: ``actors/session/__main__.py``); what is built from the config is
``actors.wiring``.
"""

from __future__ import annotations

import gc
from contextlib import nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import attrs
import trio
from loguru import logger

from actors import wiring
from actors.clock import MarketClock, show_in_log
from actors.config import Config, Inputs, read_inputs
from actors.conventions import ExitCode
from actors.interrupts import Interrupts
from actors.liveview import LiveView
from actors.net.seam import network_scope
from actors.records.files import DataWriteError, FillWriter, Recorder, write_json_atomic
from actors.records.info import SessionInfo, SessionStatus
from actors.records.kpi import build_kpi
from actors.records.paths import SessionPaths
from actors.session.batch import BatchedReplay
from actors.session.batch_pass import BatchedPass
from actors.session.batch_path import why_actors
from actors.session.batch_sim import BatchedSim
from actors.session.fast_forward import on_virtual_clock
from actors.session.market import open_market
from actors.session.tree import Frame, run_actors
from actors.sim.direct import ENDPOINTS, DirectReplay
from actors.sim.exchange import SimEndpoints
from actors.sim.replay import ReplayHub, ReplayMarket, ReplayPacer
from actors.sim.serve import serve_hub, serve_sim, simulated_hub
from actors.wiring_market import MarketSetup

if TYPE_CHECKING:
    from loguru import Logger
    from rich.console import Console

EXIT_OK, EXIT_FAILED = ExitCode.OK, ExitCode.FAILED


@attrs.frozen
class SessionResult:
    status: SessionStatus
    exit_code: int
    paths: SessionPaths
    kpi: dict[str, Any]
    config: Config | None = None  # what the session ran with (the summary names the settings that mattered)
    kpi_error: str | None = None  # why the final KPI file could not be written (the file on disk is older)


async def run_session(
    cfg: Config,
    paths: SessionPaths,
    *,
    handle_signals: bool = True,
    interrupts: Interrupts | None = None,
    live_console: Console | None = None,
    replay: ReplayMarket | None = None,
    stop: trio.Event | None = None,
    inputs: Inputs | None = None,
) -> SessionResult:
    """Run a whole session in the current Trio run; always attempts the final KPI file.

    ``stop``: setting it ends the session as a signal does (stop the feeds, drain, write); for callers
    that embed a session, such as bench/pipeline.py. ``handle_signals``: Ctrl-C and SIGTERM stop it
    (``interrupts`` carries what the process already received; a new one otherwise).

    ``replay`` (market = "replay"): the pre-rolled recording (``prepare_replay``; else it is prepared here);
    its clock starts when both feeds are ready and the session stops at its end (or after duration_s, if
    sooner). ``inputs``: the files the config names, as ``config.load_with_inputs`` parsed them (else they are
    read here).
    """
    log = logger.bind(actor="session")
    inputs = inputs if inputs is not None else read_inputs(cfg)
    # a market of many pairs lists them first (and starts the embedded exchange that serves the listings)
    async with open_market(cfg, inputs, trio.current_time(), log) as market:
        # GC: collect now, then freeze everything that exists once the feeds are ready (modules, config, a
        # pre-rolled recording, the books) out of the cyclic collector's reach, so later collections only
        # walk what trading allocates (a full pass over the startup heap took ~30 ms; docs/performance.md)
        gc.collect()
        frame = _open(cfg, paths, inputs, replay, stop if stop is not None else trio.Event(), log, market)
        return await run_frame(frame, _serve, handle_signals, interrupts, live_console)


Serve = Callable[["Frame", trio.Nursery], Awaitable[tuple[SimEndpoints | None, DirectReplay | BatchedPass | None]]]


async def run_frame(
    frame: Frame,
    serve: Serve,
    handle_signals: bool = False,
    interrupts: Interrupts | None = None,
    live_console: Console | None = None,
) -> SessionResult:
    """Run an opened session: its market as ``serve`` starts it (``_serve``; a group of sessions over one replay,
    ``actors.session.group``, serves each its share of the pass), its actors or batched pass, its final KPI."""
    cfg, paths, log, market = frame.info.config, frame.info.paths, frame.log, frame.market
    if handle_signals and interrupts is None:
        interrupts = Interrupts()
    pairs = None if market is None else (lambda: frame.sources.progress(trio.current_time()).pairs)
    live = None if live_console is None else LiveView(frame.info, frame.sources, live_console, pairs=pairs)
    with live if live is not None else nullcontext():  # leaving it draws the last frame, with the final status
        try:
            async with trio.open_nursery() as root:
                if interrupts is not None:
                    root.start_soon(interrupts.watch, frame.stop)
                if live is not None:
                    root.start_soon(live.run)
                root.start_soon(_watch_disk, frame)
                endpoints, direct = await serve(frame, root)
                if isinstance(direct, BatchedPass):
                    await direct.run()
                else:
                    with network_scope(direct) if direct is not None else nullcontext():
                        await run_actors(frame, wiring.feed_configs(cfg, endpoints))
                root.cancel_scope.cancel()
        finally:
            show_in_log(None)
            gc.unfreeze()
            frame.writer.close()  # never raises: a failure is reported to the DiskWatch
            if frame.recorder is not None:
                frame.recorder.close()
            _on_disk_failure(frame)  # a failure while closing, after the watcher stopped
            kpi, kpi_error = _final_kpi(frame, interrupted=interrupts is not None and interrupts.count > 0)
    fatal = frame.sources.lifecycle.statistics().fatal
    for error in fatal:
        log.error("fatal: {}", error)
    status = frame.sources.lifecycle.status
    return SessionResult(status, EXIT_FAILED if fatal else EXIT_OK, paths, kpi, cfg, kpi_error)


def _open(
    cfg: Config,
    paths: SessionPaths,
    inputs: Inputs,
    replay: ReplayMarket | None,
    stop: trio.Event,
    log: Logger,
    market: MarketSetup | None = None,
    pacer: ReplayPacer | None = None,
) -> Frame:
    """The session frame as the session opens: what it is, its sources, its data files. ``pacer``: the replay's
    clock when several sessions share it (``actors.session.group``)."""
    if cfg.session.market == "replay" and replay is None:
        replay = wiring.prepare_replay(cfg, inputs)
    info = wiring.session_info(cfg, paths, inputs, trio.current_time(), replay)
    if replay is not None and pacer is None:
        pacer = wiring.replay_pacer(cfg, replay)
    sources = wiring.sources(info, inputs, pacer, market)
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    writer = FillWriter(paths.fill_events, cfg.collector.fsync, cfg.collector.fsync_interval_s, disk=sources.disk)
    recorder = Recorder(paths.recording, info.opened_at, sources.disk) if cfg.session.record else None
    if writer.repaired_bytes:
        log.warning("{}: cut a torn last line ({} bytes) left by a crash", paths.fill_events, writer.repaired_bytes)
    return Frame(info, inputs, sources, _market_clock(info), stop, writer, recorder, log, market=market)


def _market_clock(info: SessionInfo) -> MarketClock:
    """The market's wall time: the system clock live, the simulated market's own from the session's start (a
    replay's follows its recording: ``_serve_replay``)."""
    clock = MarketClock()
    if info.market == "sim":  # the simulated market's time runs with the (maybe virtual) Trio clock
        clock.simulate(info.opened_at, info.started.timestamp())
    return clock


async def _serve(frame: Frame, root: trio.Nursery) -> tuple[SimEndpoints | None, DirectReplay | BatchedPass | None]:
    """The market the feeds connect to: the embedded exchange, a replay, or (None) the live exchanges. A simulated
    session on the virtual clock runs batched where it can (``actors.session.batch_sim``)."""
    cfg = frame.info.config
    if cfg.session.market == "sim":
        why = why_actors(cfg, virtual_clock=on_virtual_clock())
        if why is not None:
            frame.log.info("market path: actors ({})", why)
    if frame.market is not None:  # a market session: its exchange (sim) serves already, or live (None)
        return frame.market.endpoints, None
    if cfg.session.market == "sim":
        model = frame.inputs.market_model
        if why is None:
            batched = BatchedSim(frame, simulated_hub(cfg.sim, cfg.session.seed, cfg.feeds.binance.symbol, model))
            root.start_soon(batched.run_clock)
            return None, batched
        serve = partial(serve_sim, cfg.sim, cfg.session.seed, binance_symbol=cfg.feeds.binance.symbol, model=model)
        endpoints: SimEndpoints = await root.start(serve)
        return endpoints, None
    if cfg.session.market == "replay":
        return await _serve_replay(frame, root)
    return None, None


async def _serve_replay(frame: Frame, nursery: trio.Nursery) -> tuple[SimEndpoints, DirectReplay | BatchedPass | None]:
    """Serve a replay, directly at the network seam or through the embedded exchange; the session's
    market clock follows the recording from the replay's first served instant. A direct replay on the
    virtual clock runs batched where it can (``actors.session.batch``)."""
    cfg, pacer, clock = frame.info.config, frame.sources.replay, frame.clock
    assert pacer is not None
    replay = pacer.market
    clock.hold(replay.start_epoch_s)
    show_in_log(clock)
    pacer.on_start = lambda t0: clock.follow(t0, replay.start_epoch_s, pacer.speed)
    why = why_actors(cfg, replay)
    if why is not None:
        frame.log.info("replay path: actors ({})", why)
    if replay.direct:
        direct = DirectReplay(replay, pacer)
        batched = BatchedReplay(frame, direct) if why is None else None
        nursery.start_soon(direct.run_clock if batched is None else batched.run_clock)
        return ENDPOINTS, direct if batched is None else batched
    hub = ReplayHub(replay, cfg.sim, cfg.session.seed, pacer, cfg.replay.read_ahead_bytes)
    endpoints: SimEndpoints = await nursery.start(partial(serve_hub, hub, binance_symbol=cfg.feeds.binance.symbol))
    return endpoints, None


async def _watch_disk(frame: Frame) -> None:
    await frame.sources.disk.failed.wait()
    _on_disk_failure(frame)


def _on_disk_failure(frame: Frame) -> None:
    """The session's reaction to a data write that failed (once): the error in the log and among the fatal
    ones, and the session stops (the executor already opens no new trade: ``ExecutorState.heed_disk``)."""
    error, life = frame.sources.disk.error, frame.sources.lifecycle
    if error is None or frame.disk_handled.is_set():
        return
    frame.disk_handled.set()
    frame.log.error("{}: no new trades; stopping the session", error)
    life.fail(f"disk: {error}; no new trades were opened after it")
    frame.stop.set()


def _final_kpi(frame: Frame, *, interrupted: bool) -> tuple[dict[str, Any], str | None]:
    """The session's status and its final KPI document, written when the disk allows (else why not)."""
    info, sources = frame.info, frame.sources
    now = trio.current_time()
    sources.lifecycle.end(now)
    sources.lifecycle.finish(interrupted=interrupted)
    kpi = build_kpi(info, sources.snapshot(now), final=True).document()
    try:
        write_json_atomic(info.paths.kpi, kpi)
    except DataWriteError as exc:
        sources.disk.report(exc)
        _on_disk_failure(frame)
        sources.lifecycle.finish(interrupted=interrupted)
        frame.log.error("the final KPI file was not written: {}", exc)
        # what the summary prints: the figures as final, with the failure in them (on disk is an older snapshot)
        return build_kpi(info, sources.snapshot(now), final=True).document(), str(exc)
    return kpi, None
