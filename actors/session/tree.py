"""The actor tree of one session: the channels between the actors, their supervisors, the startup deadline,
trading for the session's duration, then the feeds cancelled and the pipeline drained (docs/architecture.md,
"Actor tree and channels" and "Start and stop").

``Frame`` is what the session frame holds for the tree: what the session is (``SessionInfo``) and the owners
of its state (``Sources``, each written by one actor or by the frame itself, so state survives restarts).
"""

from __future__ import annotations

import gc
import random
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import attrs
import trio

from actors import wiring_market
from actors.aggregator import Views, run_aggregator
from actors.chaos import Killable, run_chaos
from actors.clock import MarketClock
from actors.collector import run_collector
from actors.config import BinanceFeedConfig, Inputs, UpbitFeedConfig
from actors.conventions import (
    AGGREGATOR,
    COLLECTOR,
    EXECUTOR,
    FEED_BINANCE,
    FEED_UPBIT,
    SeedStream,
    feed_actor,
    feed_key,
)
from actors.core.book import BookView
from actors.core.market_trader import MarketTrader
from actors.core.trader_outputs import FillEvent
from actors.core.vocabulary import RestartCause, Venue
from actors.executor import ExecutorState, run_executor
from actors.feed import diff_buffer_pool, run_binance_feed, run_upbit_feed
from actors.feed_snapshot import rest_budget
from actors.net.ws import WsConnectError
from actors.records.files import FillWriter, Recorder
from actors.records.info import SessionInfo
from actors.records.sources import Progress, Sources
from actors.wiring_market import MarketSetup
from supervision import SupervisorGaveUp, sole_exception, supervise

if TYPE_CHECKING:
    from loguru import Logger

BOOKS_BUFFER, VIEWS_BUFFER, FILLS_BUFFER = 64, 16, 1024
REPLAY_TAIL_S = 1.0  # after a recording's last event, before the session stops


@attrs.frozen
class Frame:
    """What the actor tree runs with, held by the session frame (``run_session``)."""

    info: SessionInfo
    inputs: Inputs  # the files the config names, parsed
    sources: Sources
    clock: MarketClock  # the market's wall time (a replay's: recorded)
    stop: trio.Event  # set: the session ends as its time were up (a signal, a disk error, a give-up)
    writer: FillWriter
    recorder: Recorder | None
    log: Logger
    draining: trio.Event = attrs.field(factory=trio.Event)  # the feeds are stopped: restarts hurry to drain
    market: MarketSetup | None = None  # a market of many pairs (its pairs, shards, weight budget); None: one pair
    disk_handled: trio.Event = attrs.field(factory=trio.Event)  # the session has reacted to a failed data write


async def run_actors(frame: Frame, feeds: tuple[UpbitFeedConfig, BinanceFeedConfig]) -> None:
    """Consumers started first and stopped last, feeds ready within startup_timeout_s, trading, then the feeds
    cancelled and the pipeline drained within shutdown_grace_s."""
    s, life = frame.info.config.session, frame.sources.lifecycle
    actors, owned = _actors(frame, feeds)
    supervised = partial(_supervised, frame, actors, owned, random.Random(s.seed + SeedStream.MARKET))
    async with trio.open_nursery() as consumers:
        for name in (COLLECTOR, EXECUTOR, AGGREGATOR):  # the task carries the actor's name (tracebacks, instruments)
            await consumers.start(supervised, name, name=name)
        # the feeds' channel ends close when the producers are done, also those of a feed never started
        # (a stop during startup): the aggregator then sees the end of its inbox and the pipeline drains
        feeds_in_order = _feed_names(frame)
        with ExitStack() as feed_ends:
            for name in feeds_in_order:
                feed_ends.enter_context(owned[name][0])
            async with trio.open_nursery() as producers:
                with trio.CancelScope(deadline=frame.info.opened_at + s.startup_timeout_s) as startup:
                    producers.start_soon(_cancel_when, frame.stop, startup)
                    for name in feeds_in_order:
                        await producers.start(supervised, name, name=name)
                if startup.cancelled_caught and not frame.stop.is_set():
                    progress = frame.sources.progress(trio.current_time())
                    life.fail(_startup_failure(progress, s.startup_timeout_s, s.market))
                    frame.stop.set()
                if not frame.stop.is_set():
                    await _trade(frame, producers, actors)
                life.end(trio.current_time())
                frame.log.info("stopping: cancelling the feeds, draining the pipeline")
                frame.draining.set()
                producers.cancel_scope.cancel()
        consumers.cancel_scope.deadline = trio.current_time() + s.shutdown_grace_s
    if consumers.cancel_scope.cancelled_caught:
        life.fail(f"the pipeline did not drain within shutdown_grace_s={s.shutdown_grace_s:g}")


async def _supervised(
    frame: Frame,
    actors: dict[str, Killable],
    owned: dict[str, tuple[Any, ...]],
    jitter_rng: random.Random,
    name: str,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Supervise one actor; close the channels it owns when supervision ends; a give-up stops the session."""
    with ExitStack() as stack:
        for channel in owned[name]:
            stack.enter_context(channel)
        try:
            await supervise(
                actors[name],
                name=name,
                policy=frame.info.config.supervision,
                stats=frame.sources.actors[name],
                rng=random.Random(jitter_rng.random()),
                hurry=frame.draining,
                task_status=task_status,
            )
        except SupervisorGaveUp as exc:
            frame.sources.lifecycle.fail(_gave_up(exc, frame.info.market))
            frame.stop.set()


def _actors(
    frame: Frame, feeds: tuple[UpbitFeedConfig, BinanceFeedConfig]
) -> tuple[dict[str, Killable], dict[str, tuple[Any, ...]]]:
    """Every actor, killable by chaos, and the channel ends each one's supervisor owns (and closes)."""
    info, sources = frame.info, frame.sources
    pairs = 1 if frame.market is None else len(frame.market.universe.pairs)
    books_send, books_recv = trio.open_memory_channel[BookView](max(BOOKS_BUFFER, 2 * pairs))
    views_send, views_recv = trio.open_memory_channel[Views](VIEWS_BUFFER)  # a market's: a batch of views each
    fills_send, fills_recv = trio.open_memory_channel[FillEvent](FILLS_BUFFER)
    with books_send:  # fan-in: one clone per feed
        outs = {name: books_send.clone() for name in _feed_names(frame)}
    upbit_out, binance_out = outs[FEED_UPBIT], outs[FEED_BINANCE]
    executor_state = ExecutorState(
        sources.trader, frame.clock, wire_to_decision=sources.wire_to_decision, disk=sources.disk
    )
    coalesce_s = info.config.aggregator.coalesce_ms / 1e3
    children: dict[str, Callable[..., Awaitable[None]]] = {
        COLLECTOR: partial(run_collector, fills_recv, frame.writer, info, sources, frame.clock),
        EXECUTOR: partial(run_executor, views_recv, fills_send, executor_state),
        AGGREGATOR: partial(run_aggregator, books_recv, views_send, sources.market, coalesce_s),
        FEED_UPBIT: partial(run_upbit_feed, feeds[0], upbit_out, sources.feeds[Venue.UPBIT], recorder=frame.recorder),
        FEED_BINANCE: partial(
            run_binance_feed,
            feeds[1],
            binance_out,
            sources.feeds[Venue.BINANCE],
            recorder=frame.recorder,
            diff_pool=diff_buffer_pool(feeds[1]),  # every Binance book's (one today), across restarts
            rest=rest_budget(feeds[1], info.config.session.seed + SeedStream.REST_JITTER),  # the process's weight
        ),
    }
    if frame.market is not None:
        children.update(_market_feeds(frame, feeds, outs))
    owned: dict[str, tuple[Any, ...]] = {
        COLLECTOR: (fills_recv,),
        EXECUTOR: (views_recv, fills_send),
        AGGREGATOR: (books_recv, views_send),
        **{name: (out,) for name, out in outs.items()},
    }
    return {name: Killable(name, child) for name, child in children.items()}, owned


def _feed_names(frame: Frame) -> tuple[str, ...]:
    """The feed actors in start order: Upbit, then Binance (a market's shards: feed:binance, feed:binance-2...)."""
    if frame.market is None:
        return (FEED_UPBIT, FEED_BINANCE)
    shards = frame.market.plan.shards
    return (FEED_UPBIT, *(feed_actor(feed_key(Venue.BINANCE, shard.index)) for shard in shards))


def _market_feeds(
    frame: Frame,
    feeds: tuple[UpbitFeedConfig, BinanceFeedConfig],
    outs: dict[str, trio.MemorySendChannel[BookView]],
) -> dict[str, Callable[..., Awaitable[None]]]:
    """A market's feeds: Upbit's one connection with every pair's code and the FX market's; one Binance connection
    per shard, each with its symbols, its staggered rotation, the session's weight budget and diff pool, and the
    snapshot queue's priority (books of pairs with an open trade first)."""
    market, sources, cfg = frame.market, frame.sources, frame.info.config
    assert market is not None
    trader = sources.trader
    assert isinstance(trader, MarketTrader)
    priority = wiring_market.priority(trader, market.universe)
    pool = diff_buffer_pool(feeds[1])
    children: dict[str, Callable[..., Awaitable[None]]] = {
        FEED_UPBIT: partial(
            run_upbit_feed,
            feeds[0],
            outs[FEED_UPBIT],
            sources.feeds[Venue.UPBIT],
            codes=wiring_market.upbit_codes(cfg, market.universe),
            recorder=frame.recorder,
        )
    }
    for shard in market.plan.shards:
        key = feed_key(Venue.BINANCE, shard.index)
        children[feed_actor(key)] = partial(
            run_binance_feed,
            feeds[1],
            outs[feed_actor(key)],
            sources.feeds[key],
            symbols=shard.symbols,
            priority=priority,
            rotate_at=market.plan.rotation(shard.index),
            recorder=frame.recorder,
            diff_pool=pool,
            rest=market.rest,
        )
    return children


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _trade(frame: Frame, producers: trio.Nursery, actors: dict[str, Killable]) -> None:
    """Both feeds are ready: trade for the session's duration, or until ``stop``."""
    cfg, life, pacer = frame.info.config, frame.sources.lifecycle, frame.sources.replay
    life.trading_since = trio.current_time()
    gc.freeze()  # see gc.collect() in run_session; undone when the session ends
    frame.log.info(
        "both feeds ready after {:.2f} s; trading for {:g} s",
        life.trading_since - frame.info.opened_at,
        cfg.session.duration_s,
    )
    if cfg.chaos.kill_every_s > 0:
        frame.log.warning("chaos: killing one of {} every {:g} s", ", ".join(cfg.chaos.actors), cfg.chaos.kill_every_s)
        producers.start_soon(
            run_chaos,
            [actors[name] for name in cfg.chaos.actors],
            cfg.chaos.kill_every_s,
            random.Random(cfg.session.seed + SeedStream.CHAOS),
            frame.sources.chaos,
        )
    if pacer is not None:
        producers.start_soon(_stop_after_replay, frame)
    with trio.move_on_after(cfg.session.duration_s):
        await frame.stop.wait()
    if pacer is not None and not pacer.finished.is_set():
        frame.log.info(
            "replay: stopped after {:.1f} s of the recording; {}",
            pacer.market.served_s,
            pacer.market.recording.describe(),
        )


async def _stop_after_replay(frame: Frame) -> None:
    pacer = frame.sources.replay
    assert pacer is not None
    await pacer.finished.wait()
    await trio.sleep(REPLAY_TAIL_S)  # legs in flight meet the last books, the collector writes them
    frame.log.info("end of the recording: stopping")
    if pacer.error is not None:
        frame.sources.lifecycle.fail(f"replay: {pacer.error}")
    frame.stop.set()


def _startup_failure(progress: Progress, timeout_s: float, market: str) -> str:
    """Why the session could not start: which feed was not ready, and its last error."""
    waiting, causes = [], set()
    for venue in progress.feeds:
        name = feed_actor(venue)
        if not progress.feeds[venue].connected:
            child = progress.actors[name]
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
    leaf = None if exc.__cause__ is None else sole_exception(exc.__cause__)
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
