"""Run one PAPER session: ``python -m actors.session --config PATH [--duration S] [--market live|sim]
[--seed N] [--logs-dir DIR]``.

Builds the actor tree (docs/architecture.md): with ``market = "sim"`` the embedded exchange first;
then the consumers (collector, executor, aggregator), each under a supervisor; then the producers
(one feed per exchange). The duration counts from the moment both feeds are ready. The session ends
by cancelling the producers; channel closure then drains the aggregator, the executor and the
collector in that order, within ``shutdown_grace_s``; the final KPI file is written last.
Ctrl-C or SIGTERM take the same path; a second one exits at once.

``--virtual-time`` (sim only) runs the same session on a virtual clock over an in-memory network.

Exit status: 0 completed (or stopped by Ctrl-C/SIGTERM), 1 failed (an actor was given up on, or an
unexpected error), 2 bad config or command line, 130 second interrupt.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import re
import signal
import sys
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from loguru import logger

from actors import config as config_mod
from actors.aggregator import run_aggregator
from actors.chaos import Killable, run_chaos
from actors.collector import run_collector
from actors.config import Config, ConfigError
from actors.core.acceptance import Thresholds
from actors.core.book import BookView
from actors.core.fills import CalibratedFillModel, Fees, SimpleFillModel
from actors.core.kpi import FeedStats
from actors.core.market import MarketState, MarketView
from actors.core.strategy import StrategyParams
from actors.core.portfolio import Portfolio
from actors.core.trader import ExecutionParams, FillEvent, RiskLimits, Trader
from actors.executor import ExecutorState, run_executor
from actors.feed import run_binance_feed, run_upbit_feed
from actors import recordings
from actors.recordings import RecordingError
from actors.sim.exchange import serve_hub, serve_sim
from actors.sim.replay import ReplayHub, ReplayMarket
from actors.ws import memory_network
from actors.telemetry import (FEED_ACTORS, DataWriteError, FillWriter, Recorder, SessionContext, SessionIdTaken,
                              SessionPaths, build_kpi, claim_session, point_latest, write_json_atomic)
from supervision import ChildStats, SupervisorGaveUp, supervise

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ACTORS = ("collector", "executor", "aggregator", "feed:upbit", "feed:binance")
BOOKS_BUFFER, VIEWS_BUFFER, FILLS_BUFFER = 64, 16, 1024
REPLAY_TAIL_S = 1.0  # after a recording's last event, before the session stops


@attrs.frozen
class SessionResult:
    status: str
    exit_code: int
    paths: SessionPaths
    kpi: dict[str, Any]


_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def new_session_id() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


def _feed_configs(cfg: Config, endpoints) -> tuple[Any, Any]:
    upbit_cfg, binance_cfg = cfg.feeds.upbit, cfg.feeds.binance
    if endpoints is not None:
        upbit_cfg = attrs.evolve(upbit_cfg, url=endpoints.upbit_url)
        binance_cfg = attrs.evolve(binance_cfg, ws_url=endpoints.binance_ws_url,
                                   rest_url=endpoints.binance_rest_url)
    return upbit_cfg, binance_cfg


def _portfolio(cfg: Config) -> Portfolio:
    p = cfg.portfolio
    return Portfolio.of("upbit", p.upbit_krw, p.upbit_btc, "binance", p.binance_usdt, p.binance_btc)


def _fill_model(cfg: Config, seed: int):
    strategy = cfg.strategy
    if strategy.fill_model == "simple":
        return SimpleFillModel()
    return CalibratedFillModel(config_mod.read_calibration(strategy.calibration),
                               strategy.calibration_mode == "stochastic", random.Random(seed + 1))


class Interrupts:
    """Ctrl-C and SIGTERM, for the whole life of the process.

    The first one, in any phase, stops the session as if its time were up: the feeds stop, the pipeline
    drains, the final KPI file and the report are written, exit status 0 (``interrupted``). A second one,
    in any phase, exits at once with status 130: no traceback, no waiting. Nothing is lost by it: fill
    events are written line by line, the KPI file is replaced atomically, and a torn recording tail is
    read back as far as it goes.

    Inside the Trio run ``watch`` receives them (trio's signal receiver); before and after it, and while
    the final files are written, the process-level handlers ``install`` sets do the same.
    """

    def __init__(self) -> None:
        self.count = 0
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # a signal handler can interrupt a logging or printing call: only os.write is safe here
        self._count_or_exit(signum)
        os.write(2, f"{signal.Signals(signum).name} received: stopping (again to exit at once)\n".encode())
        if self._stop is not None and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._stop.set)

    def _count_or_exit(self, signum: int) -> None:
        self.count += 1
        if self.count > 1:
            os.write(2, f"{signal.Signals(signum).name} received again: exited at once; the fill-event file is "
                        "complete up to its last line\n".encode())
            os._exit(EXIT_INTERRUPTED)

    async def watch(self, stop: trio.Event) -> None:
        self._stop, self._token = stop, trio.lowlevel.current_trio_token()
        if self.count:
            stop.set()  # a signal came before the session started: it ends at once
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self._count_or_exit(signum)
                logger.bind(actor="session").warning("{} received: stopping (again to exit at once)",
                                                     signal.Signals(signum).name)
                stop.set()


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def prepare_replay(cfg: Config) -> ReplayMarket:
    """Read the recordings named by $.replay.files and pre-roll them; RecordingError says what is wrong."""
    recording = recordings.load(cfg.replay.files)
    return ReplayMarket(recording, cfg.sim, cfg.session.seed, upbit_market=cfg.feeds.upbit.market,
                        fx_market=cfg.feeds.upbit.fx_market if cfg.fx.source == "upbit" else None,
                        binance_symbol=cfg.feeds.binance.symbol)


async def _stop_after_replay(hub: ReplayHub, stop: trio.Event) -> None:
    await hub.finished.wait()
    await trio.sleep(REPLAY_TAIL_S)  # legs in flight meet the last books, the collector writes them
    logger.bind(actor="session").info("end of the recording: stopping")
    stop.set()


async def run_session(cfg: Config, paths: SessionPaths, *, handle_signals: bool = True,
                      interrupts: Interrupts | None = None, live_console=None, replay: ReplayMarket | None = None,
                      stop: trio.Event | None = None) -> SessionResult:
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
    opened_at = trio.current_time()
    seed = cfg.session.seed
    jitter_rng = random.Random(seed)
    policy = cfg.supervision.policy()
    strategy = cfg.strategy
    fx_key = ("upbit", cfg.feeds.upbit.fx_market) if cfg.fx.source == "upbit" else None
    market_state = MarketState(("upbit", cfg.feeds.upbit.market), ("binance", cfg.feeds.binance.symbol),
                               fx_key, cfg.fx.fixed_krw_per_usdt, started_at=opened_at)
    params = StrategyParams(strategy.entry_bps, strategy.tp_bps, strategy.order_qty_btc,
                            strategy.baseline_halflife_s, strategy.warmup_s, strategy.max_hold_s,
                            strategy.max_book_age_s, strategy.max_slippage_bps,
                            tuple((z[0], z[1]) for z in strategy.zones))
    risk = cfg.risk
    trader = Trader(params, paths.session_id, opened_at, _portfolio(cfg), _fill_model(cfg, seed),
                    ExecutionParams(strategy.latency_ms, strategy.latency_jitter_ms, strategy.leg_risk,
                                    Fees(cfg.fees.upbit_bps, cfg.fees.binance_bps)),
                    RiskLimits(risk.max_position_btc, risk.max_notional_usdt, risk.max_loss_usdt, risk.max_premium_bps),
                    seed=seed, l2_source=strategy.l2_source)
    ctx = SessionContext(paths.session_id, cfg.session.market, cfg.session.duration_s, trader, market_state,
                         {"upbit": FeedStats("upbit"), "binance": FeedStats("binance")},
                         {name: ChildStats(name) for name in ACTORS}, opened_at)
    ctx.chaos_every_s = cfg.chaos.kill_every_s
    a = cfg.acceptance
    ctx.thresholds = Thresholds(a.min_fill_events, a.min_volume_std_over_mean, a.max_extra_reconnects)
    executor_state = ExecutorState(trader, wire_to_decision=ctx.wire_to_decision)
    if stop is None:
        stop = trio.Event()
    if handle_signals and interrupts is None:
        interrupts = Interrupts()

    def disk_failed(error: str) -> None:
        log.error("{}: no new trades; stopping the session", error)
        stop.set()

    ctx.on_disk_error = disk_failed
    draining = trio.Event()  # set once the feeds are stopped: consumers restart without backoff to drain
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    writer = FillWriter(paths.fill_events, cfg.collector.fsync, cfg.collector.fsync_interval_s,
                        on_error=ctx.write_failed)
    recorder = Recorder(paths.recording, opened_at, ctx.write_failed) if cfg.session.record else None
    if writer.repaired_bytes:
        log.warning("{}: cut a torn last line ({} bytes) left by a crash", paths.fill_events, writer.repaired_bytes)

    async def supervised(name: str, child, owned: tuple = (), *,
                         task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Supervise ``child``; close the channels it owns when supervision ends; a give-up stops the session."""
        forwarded = []

        class _Status:
            def started(self, value: Any = None) -> None:
                forwarded.append(True)
                task_status.started(value)

        with ExitStack() as stack:
            for channel in owned:
                stack.enter_context(channel)
            try:
                await supervise(child, name=name, policy=policy, stats=ctx.children[name],
                                rng=random.Random(jitter_rng.random()), hurry=draining, task_status=_Status())
            except SupervisorGaveUp as exc:
                ctx.fatal.append(str(exc))
                stop.set()
                if not forwarded:
                    task_status.started()

    try:
        async with trio.open_nursery() as root:
            if interrupts is not None:
                root.start_soon(interrupts.watch, stop)
            if live_console is not None:
                from actors.liveview import run_live_view
                root.start_soon(run_live_view, ctx, live_console)
            endpoints = replay_hub = None
            if cfg.session.market == "sim":
                endpoints = await root.start(partial(serve_sim, cfg.sim, seed, binance_symbol=cfg.feeds.binance.symbol))
            elif cfg.session.market == "replay":
                if replay is None:
                    replay = prepare_replay(cfg)
                replay_hub = ReplayHub(replay, cfg.sim, seed, 1.0 if cfg.replay.as_fast_as_possible else cfg.replay.speed)
                ctx.replay = {"files": list(cfg.replay.files), "sources": replay.recording.sources,
                              "speed": "as fast as possible" if cfg.replay.as_fast_as_possible else cfg.replay.speed,
                              "recording_s": round(replay.duration_s, 3), "recorded": sorted(replay.recorded),
                              "synthesised": replay.synthesised, "start_epoch_ms": replay.recording.start_epoch_ms}
                endpoints = await root.start(partial(serve_hub, replay_hub, binance_symbol=cfg.feeds.binance.symbol))
            upbit_cfg, binance_cfg = _feed_configs(cfg, endpoints)

            books_send, books_recv = trio.open_memory_channel[BookView](BOOKS_BUFFER)
            views_send, views_recv = trio.open_memory_channel[MarketView](VIEWS_BUFFER)
            fills_send, fills_recv = trio.open_memory_channel[FillEvent](FILLS_BUFFER)
            s = cfg.session
            with books_send:
                upbit_out, binance_out = books_send.clone(), books_send.clone()
            actors = {name: Killable(name, child) for name, child in (
                ("collector", partial(run_collector, fills_recv, writer, ctx, paths.kpi, s.kpi_interval_s,
                                      s.status_interval_s, paths.premium)),
                ("executor", partial(run_executor, views_recv, fills_send, executor_state)),
                ("aggregator", partial(run_aggregator, books_recv, views_send, market_state,
                                       cfg.aggregator.coalesce_ms / 1e3)),
                ("feed:upbit", partial(run_upbit_feed, upbit_cfg, upbit_out, ctx.feeds["upbit"], recorder=recorder)),
                ("feed:binance", partial(run_binance_feed, binance_cfg, binance_out, ctx.feeds["binance"],
                                         recorder=recorder)))}
            async with trio.open_nursery() as consumers:
                # each supervised actor's task carries the actor's name (tracebacks, trio instruments)
                await consumers.start(supervised, "collector", actors["collector"], (fills_recv,), name="collector")
                await consumers.start(supervised, "executor", actors["executor"], (views_recv, fills_send),
                                      name="executor")
                await consumers.start(supervised, "aggregator", actors["aggregator"], (books_recv, views_send),
                                      name="aggregator")
                # the feeds' channel ends close when the producers are done, also those of a feed never started
                # (a stop during startup): the aggregator then sees the end of its inbox and the pipeline drains
                with upbit_out, binance_out:
                    async with trio.open_nursery() as producers:
                        with trio.CancelScope(deadline=opened_at + s.startup_timeout_s) as startup:
                            producers.start_soon(_cancel_when, stop, startup)
                            await producers.start(supervised, "feed:upbit", actors["feed:upbit"], (upbit_out,),
                                                  name="feed:upbit")
                            await producers.start(supervised, "feed:binance", actors["feed:binance"], (binance_out,),
                                                  name="feed:binance")
                        if startup.cancelled_caught and not stop.is_set():
                            ctx.fatal.append(_startup_failure(ctx, s.startup_timeout_s))
                            stop.set()
                        if not stop.is_set():
                            await _trade(ctx, cfg, stop, producers, actors, replay_hub, log)
                        ctx.ended_at = trio.current_time()
                        log.info("stopping: cancelling the feeds, draining the pipeline")
                        draining.set()
                        producers.cancel_scope.cancel()
                consumers.cancel_scope.deadline = trio.current_time() + s.shutdown_grace_s
            if consumers.cancel_scope.cancelled_caught:
                ctx.fatal.append(f"the pipeline did not drain within shutdown_grace_s={s.shutdown_grace_s:g}")
            root.cancel_scope.cancel()
    finally:
        gc.unfreeze()
        writer.close()  # never raises: a failure is reported through ctx.write_failed
        if recorder is not None:
            recorder.close()
        now = trio.current_time()
        if ctx.ended_at is None:
            ctx.ended_at = now
        interrupted = interrupts is not None and interrupts.count > 0
        ctx.status = "failed" if ctx.fatal else ("interrupted" if interrupted else "completed")
        kpi = build_kpi(ctx, now, final=True)
        try:
            write_json_atomic(paths.kpi, kpi)
        except DataWriteError as exc:
            ctx.write_failed(exc)
            ctx.status = "failed"
            log.error("the final KPI file was not written: {}", exc)
    for error in ctx.fatal:
        log.error("fatal: {}", error)
    return SessionResult(ctx.status, EXIT_FAILED if ctx.fatal else EXIT_OK, paths, kpi)


async def _trade(ctx: SessionContext, cfg: Config, stop: trio.Event, producers: trio.Nursery,
                 actors: dict[str, Killable], replay_hub: ReplayHub | None, log) -> None:
    """Both feeds are ready: trade for the session's duration, or until ``stop``."""
    ctx.trading_since = trio.current_time()
    gc.freeze()  # see gc.collect() in run_session; undone when the session ends
    log.info("both feeds ready after {:.2f} s; trading for {:g} s", ctx.trading_since - ctx.opened_at,
             cfg.session.duration_s)
    if cfg.chaos.kill_every_s > 0:
        log.warning("chaos: killing one of {} every {:g} s", ", ".join(cfg.chaos.actors), cfg.chaos.kill_every_s)
        producers.start_soon(run_chaos, [actors[name] for name in cfg.chaos.actors], cfg.chaos.kill_every_s,
                             random.Random(cfg.session.seed + 2), ctx.chaos_kills)
    if replay_hub is not None:
        producers.start_soon(_stop_after_replay, replay_hub, stop)
    with trio.move_on_after(cfg.session.duration_s):
        await stop.wait()


def _startup_failure(ctx: SessionContext, timeout_s: float) -> str:
    """Why the session could not start: which feed was not ready, and its last error."""
    waiting = []
    for venue, name in FEED_ACTORS.items():
        if not ctx.feeds[venue].connected:
            child = ctx.children[name]
            last = child.last_error or ("never started" if not child.starts else "no error: still connecting")
            waiting.append(f"{name} not ready ({child.restarts} restarts; last: {last})")
    return (f"startup: the feeds were not ready within startup_timeout_s={timeout_s:g}: " + "; ".join(waiting)
            + ". Check the endpoints and market codes in [feeds]")


# -- command line ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, like a config error
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m actors.session", description="Run one PAPER arbitrage session.")
    p.add_argument("--config", required=True, help="TOML config file (see docs/config.md)")
    p.add_argument("--duration", type=float, metavar="S", help="override session.duration_s")
    p.add_argument("--market", choices=("live", "sim", "replay"), help="override session.market")
    p.add_argument("--replay", nargs="+", metavar="FILE",
                   help="recording(s) to replay (ours, hftbacktest or cryptofeed; merged by time): replay.files, "
                        "implies --market replay")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, metavar="X", help="replay at X times the recorded pace: replay.speed")
    pace.add_argument("--as-fast-as-possible", action="store_true", default=None,
                      help="replay on a virtual clock, as fast as the CPU allows; same recording and seed, "
                           "same fill events: replay.as_fast_as_possible")
    p.add_argument("--session-id", metavar="ID", help="name the session's files (default: the start time)")
    p.add_argument("--seed", type=int, metavar="N", help="override session.seed")
    p.add_argument("--logs-dir", metavar="DIR", help="override session.logs_dir")
    p.add_argument("--record", action="store_true", default=None,
                   help="save every raw frame with its receive time (recording_<id>.jsonl.gz): session.record")
    p.add_argument("--chaos-kill-every", type=float, metavar="S",
                   help="kill a feed (seeded choice) every S seconds: override chaos.kill_every_s")
    p.add_argument("--virtual-time", action="store_true",
                   help="market = sim only: run on a virtual clock over an in-memory network, as fast as the "
                        "CPU allows (same market and decisions; wall-clock fields and rates differ)")
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    session = {key: value for key, value in (("duration_s", args.duration), ("market", args.market),
                                             ("seed", args.seed), ("logs_dir", args.logs_dir),
                                             ("record", args.record)) if value is not None}
    out: dict[str, dict[str, Any]] = {"session": session} if session else {}
    if args.chaos_kill_every is not None:
        out["chaos"] = {"kill_every_s": args.chaos_kill_every}
    replay = {key: value for key, value in (("files", args.replay), ("speed", args.speed),
                                            ("as_fast_as_possible", args.as_fast_as_possible)) if value is not None}
    if replay:
        out["replay"] = replay
        if args.replay and args.market is None:
            out.setdefault("session", {})["market"] = "replay"
    return out


LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[actor]: <12} | {message}"


class _LogFile:
    """The session log as a loguru sink: line-buffered, and on a write error (disk full) it reports once on
    stderr and stops, where loguru's own file sink would print a traceback for every line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, message: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(message)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            sys.stderr.write(f"log file {self.path}: cannot write ({exc.strerror or exc}); logging to the "
                             "terminal only\n")

    def stop(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


def configure_logging(log_path: Path | None, *, stderr_level: str = "INFO", console=None) -> None:
    """stderr for people (through ``console`` when a live view owns the terminal) and a file per session."""
    logger.remove()
    logger.configure(extra={"actor": "-"})
    if console is None:
        sink = sys.stderr
    else:
        def sink(message) -> None:
            console.print(str(message).rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    logger.add(sink, level=stderr_level, format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False)
    if log_path is not None:
        logger.add(_LogFile(log_path), level="DEBUG", format=LOG_FORMAT, colorize=False, backtrace=False,
                   diagnose=False)


def _summary(result: SessionResult) -> str:
    k = result.kpi
    vol = k["available_volume"]
    cv = {side: vol[side]["std_over_mean"] for side in ("BUY", "SELL")}
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [
        f"session {k['session_id']} {k['status']} ({k['market']}), {k['duration_s']:.1f} s of "
        f"{k['requested_duration_s']:g} s",
        f"  entry trades {k['entry_trades']}, fill events {k['fill_events']} "
        f"(BUY {k['fill_events_by_side']['BUY']}, SELL {k['fill_events_by_side']['SELL']}), "
        f"written {k['fill_events_written']}",
        f"  available_volume std/mean: BUY {fmt(cv['BUY'])}, SELL {fmt(cv['SELL'])}",
        f"  PnL {k['pnl_usdt']:+.4f} USDT / {k['pnl_krw']:+.0f} KRW realized after fees "
        f"({k['closed_trades']} closed trades), open trades marked {k['unrealized_pnl_usdt']:+.4f} USDT",
        "  zones: " + (", ".join(f"{z} {n} fills" for z, n in k["fill_events_by_zone"].items()) or "none"),
        "  feeds: " + ", ".join(f"{v} msgs {f['messages']} reconnects {f['reconnects']} "
                                 f"{dict(f['reconnect_causes']) or ''}".rstrip() for v, f in k["feeds"].items()),
        "  chaos: off" if not k["chaos"]["kill_every_s"]
        else f"  chaos kills: {k['chaos']['kills']} (one every {k['chaos']['kill_every_s']:g} s)",
        f"  fatal exceptions {k['fatal_exceptions']}",
        f"files in {result.paths.logs_dir}/ (and links in {result.paths.logs_dir}/latest/):",
        f"  {result.paths.fill_events.name}  {result.paths.kpi.name}  {result.paths.log.name}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    interrupts = Interrupts()
    interrupts.install()  # from here on, a first Ctrl-C or SIGTERM stops the session, a second one exits
    args = build_parser().parse_args(argv)
    try:
        cfg = config_mod.load(args.config, overrides_from(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.virtual_time and cfg.session.market != "sim":
        print(f"config error: --virtual-time needs market = 'sim', got {cfg.session.market!r}"
              + (" (a replay uses --as-fast-as-possible)" if cfg.session.market == "replay" else ""), file=sys.stderr)
        return EXIT_USAGE
    if args.session_id is not None and not _SESSION_ID.match(args.session_id):
        print(f"command line error: --session-id expected letters, digits, '_' or '-', got {args.session_id!r}",
              file=sys.stderr)
        return EXIT_USAGE
    replay = None
    if cfg.session.market == "replay":
        try:
            replay = prepare_replay(cfg)
        except RecordingError as exc:
            print(f"replay error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    virtual = args.virtual_time or (replay is not None and cfg.replay.as_fast_as_possible)
    logs_dir = Path(cfg.session.logs_dir)
    try:
        paths = claim_session(logs_dir, args.session_id, new_session_id())
        console = None
        if sys.stdout.isatty() and not virtual:
            from rich.console import Console
            console = Console()
        configure_logging(paths.log, console=console)
    except SessionIdTaken as exc:
        print(f"command line error: --session-id: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"config error: {args.config}: $.session.logs_dir: cannot write session files in {str(logs_dir)!r}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    log = logger.bind(actor="session")
    try:
        point_latest(paths)
    except OSError as exc:
        log.warning("{}/latest/ not updated ({}): follow {} instead", logs_dir, exc.strerror or exc, paths.log)
    log.info("session {}: market {}, {:g} s, seed {}, logs in {}", paths.session_id,
             cfg.session.market, cfg.session.duration_s, cfg.session.seed, paths.logs_dir)
    if replay is not None:
        log.info("recording {}", replay.recording.describe())
        log.info("replay: recorded {}, synthesised {} (model FX and premium, seed {}); {:.1f} s to serve{}",
                 ", ".join(sorted(replay.recorded)), ", ".join(replay.synthesised) or "nothing", cfg.session.seed,
                 replay.duration_s, "" if replay.duration_s <= cfg.session.duration_s * (
                     1 if cfg.replay.as_fast_as_possible else cfg.replay.speed)
                 else f", cut at session.duration_s = {cfg.session.duration_s:g} (--duration changes it)")
    session = partial(run_session, cfg, paths, interrupts=interrupts, replay=replay)
    try:
        if virtual:
            async def on_virtual_clock() -> SessionResult:
                memory_network()
                return await session()
            result = trio.run(on_virtual_clock, clock=trio.testing.MockClock(autojump_threshold=0))
        else:
            result = trio.run(partial(session, live_console=console))
    except Exception as exc:  # one boundary for what no supervisor handled
        # the traceback goes to the session log only (DEBUG is below the terminal's level)
        logger.bind(actor="session").opt(exception=exc).debug("session failed: {}", exc)
        print(f"session failed: {type(exc).__name__}: {exc} (details in {paths.log})", file=sys.stderr)
        return EXIT_FAILED
    print(_summary(result))
    try:
        from actors.report import write_report
        print(f"  report: {write_report(paths.logs_dir, paths.session_id)}")
    except Exception as exc:  # the session's data files are complete either way
        logger.bind(actor="session").opt(exception=exc).debug("report failed: {}", exc)
        print(f"  report not written: {type(exc).__name__}: {exc} (python -m actors.report retries)", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
