"""One pass of the pure core per step of a market held in memory on the virtual clock: what the batched replay
(``actors.session.batch``) and the batched simulated session (``actors.session.batch_sim``) share.

On the actor path every step of the market wakes the Binance feed, the Upbit feed, the aggregator and the
executor in turn, each through a memory channel (docs/performance.md). When the clock is virtual and the
frames are in memory, nothing outside the process can see those hops, so ``BatchedPass`` calls the same pure
code in the same order without them:

- at each step of the market (its clock task, ``run_clock``: the subclass's) the frames the feeds would read
  are decoded by the venues' codecs, and the keepers the feed shells use decide what is published:
  ``BookBatcher`` (Upbit: the newest book per code, readiness) and ``BookKeeper`` (Binance: sync, verdicts,
  resyncs from the market's REST answer, ``_rest``);
- the published books go through the aggregator's rule: the first book after a quiet spell is applied at
  once, the rest at the end of the ``coalesce_ms`` window, and one market view is built there (not one
  per frame) and handed to the ``Trader``, whose legs fill at their own times (``due_at``), as the
  executor does; while the market's clock runs, its task decides them on its way from step to step
  (``_until``: no wake-up of another task per window, the virtual clock moved by ``FastForward``);
- the fill events go to the collector actor, supervised as on the actor path, which writes them with the
  KPI snapshots and the premium series at the same virtual times; the session's start, duration and stop
  are the session's own.

What only the actor path can do (a feed reconnecting, chaos kills, faults, recording a session) is sent to the
actors before the session starts (``batch_path.why_actors``); what shows only once it happens ends the session
with a fatal error (``BatchUnsupported``) naming the key that runs the actors.
"""

from __future__ import annotations

import gc
import math
import random
from functools import partial
from typing import Any, Callable

import trio
from loguru import logger

from actors.collector import run_collector
from actors.conventions import AGGREGATOR, COLLECTOR, EXECUTOR, FEED_BINANCE, FEED_UPBIT, SeedStream
from actors.core.book import BookView
from actors.core.market import MarketState
from actors.core.trader_outputs import FillEvent
from actors.core.venues import binance, upbit
from actors.core.venues.binance_book import BookKeeper, Verdict
from actors.core.venues.upbit_book import BookBatcher
from actors.core.vocabulary import Venue
from actors.feed import book_keeper, diff_buffer_pool
from actors.session.batch_path import (
    BatchUnsupported,
    Coalescer,
    cancel_when,
    decode_binance,
    decoded,
    synthesised_book,
    synthesised_diff,
)
from actors.session.fast_forward import FastForward
from actors.session.tree import Frame
from actors.sim.exchange import MarketHolder
from actors.sim.model import StepResult
from actors.sim.recordings import Recorded
from actors.sim.upbit_server import parse_subscription
from supervision import SupervisorGaveUp, supervise

FILLS_BUFFER = 1024  # as the session's fills channel
UpbitFrame = bytes | str | upbit.Orderbook  # a frame as read, or a synthesised book as its frame decodes
Decode = Callable[[Any], list[Any]]
DiffFrame = tuple[bytes | str | binance.DepthDiff, Decode]  # a Binance frame and how it decodes


class BatchedPass:
    """The feeds, the aggregator and the executor of a session on the virtual clock whose market is in memory, as
    one pass of the pure core per step. A subclass runs the market's clock (``run_clock``, a task of the session's
    root nursery, calling ``_deliver`` at each step) and says how it answers a REST depth request (``_rest``),
    what a subscription's first Upbit frames are (``_upbit_snapshot``) and which path the log names
    (``PATH_LINE``); ``run`` stands in for the session's actor tree."""

    PATH_LINE = "batched"
    FAILED = "batched path: {}"  # the fatal line when the pass ended early (naming the key that runs the actors)
    WHERE = ("", "")  # the Upbit and Binance endpoints the log lines name
    # the feeds' close after the stop: the executor's inbox closes this long after it (legs due later are drained
    # then, as the executor drains them); None: once nothing is pending (a direct replay's feeds close at once)
    FEEDS_CLOSE_S: float | None = None

    def __init__(self, frame: Frame, holder: MarketHolder) -> None:
        cfg = frame.info.config
        self.frame, self.holder = frame, holder
        self._ufeed, self._bfeed = cfg.feeds.upbit, cfg.feeds.binance
        self._ustats, self._bstats = frame.sources.feeds[Venue.UPBIT], frame.sources.feeds[Venue.BINANCE]
        self._ulog, self._blog = logger.bind(actor="feed:upbit"), logger.bind(actor="feed:binance")
        self._codes = (self._ufeed.market, self._ufeed.fx_market)
        self._symbol = self._bfeed.symbol  # the Binance book's name on the market's stream
        ticket = upbit.subscribe_request("batched", self._codes)
        self._sub = parse_subscription(ticket, holder.market.upbit_codes)
        self._upbit: BookBatcher | None = None
        self._keeper: BookKeeper | None = None
        self._snapshot_wanted = False
        self._refetch_at, self._refetches = -math.inf, 0  # a snapshot older than the buffered diffs: when to ask again
        self._connected = False  # both feeds connected
        self._ready = trio.Event()  # both feeds have published their first books
        market = frame.sources.market
        assert isinstance(market, MarketState), "a batched session serves one pair (why_actors)"
        self._market = market
        self._aggregator = Coalescer(market, cfg.aggregator.coalesce_ms / 1e3)
        self._window = trio.Event()  # a window opened while the executor's task slept
        self._driving = False  # the market's clock task decides for the executor (``_until``)
        self._handed_back = trio.Event()  # ... until this is set: the executor's task decides again
        self._ff: FastForward | None = None
        self._next_ping_at = math.inf
        self._fills: trio.MemorySendChannel[FillEvent] | None = None
        self._stopped_at: float | None = None
        self._drain_at: float | None = None  # when the executor's inbox closes (``FEEDS_CLOSE_S``)
        self._outbox: list[FillEvent] = []
        self.error: str | None = None  # what ended the batched pass early
        # a session over another's pass that reads its feeds (``actors.session.group``): it connects none of its
        # own, and what its shell counts goes to counters no KPI reads (its sources' are the leader's)
        self.follower = False

    # -- what a subclass says ----------------------------------------------------------------------

    async def run_clock(self) -> None:
        raise NotImplementedError

    def _upbit_snapshot(self, code: str, units: int) -> bytes | str:
        """The first frame of ``code`` after the subscription."""
        raise NotImplementedError

    def _rest(self) -> bytes:
        """The market's answer to the Binance feed's depth request (BatchUnsupported if it is not a 200)."""
        raise NotImplementedError

    def _recorded(self, recorded: Recorded, now: float, upbit_frames: list[UpbitFrame], diffs: list[DiffFrame]) -> None:
        """A recorded frame of the step, to the frames the feeds read (a replay's)."""

    def _rest_ready(self) -> bool:
        """Whether the market can answer a depth request now."""
        return True

    def _keepalive(self, now: float, at_now: bool = True) -> None:
        """The keep-alive traffic due by ``now`` (``at_now``: at ``now`` too): the Upbit feed's pings (counted;
        nothing answers them here)."""
        while self._next_ping_at < now or at_now and self._next_ping_at == now:
            self._ustats.pings_sent += 1
            self._next_ping_at += self._ufeed.ping_interval_s

    def _during_trade(self, nursery: trio.Nursery) -> None:
        """Tasks of the trading phase beside the session's duration (a replay stops at its recording's end)."""

    def _after_trade(self) -> None:
        """The trading phase has ended (a replay says how far it got)."""

    # -- a step of the market --------------------------------------------------------------------

    async def _deliver(self, recorded: Recorded | None, result: StepResult | None) -> None:
        if self.error is not None or self._stopped_at is not None or not self._connected:
            return  # no feed reads what the market serves now
        now = trio.current_time()
        try:
            self._step(recorded, result, now)
        except Exception as exc:  # a failure a feed's restart would have handled: the session ends on it
            self.error = f"{type(exc).__name__}: {exc}"
            self._hand_back()
            self.frame.stop.set()
            return
        if self._aggregator.ends_at is not None:
            self._window.set()

    def _step(self, recorded: Recorded | None, result: StepResult | None, now: float) -> None:
        self._check_stale(now)
        self._keepalive(now)
        upbit_frames: list[UpbitFrame] = []
        diffs: list[DiffFrame] = []
        if recorded is not None:
            self._recorded(recorded, now, upbit_frames, diffs)
        elif result is not None:
            self._synthesised(result, upbit_frames, diffs)
        if upbit_frames:
            self._upbit_batch(upbit_frames, now)
        if diffs:
            self._binance_batch(diffs, now)
        if self._snapshot_wanted and self._rest_ready() and now >= self._refetch_at:
            self._resync(self._rest(), now)

    def _synthesised(self, result: StepResult, upbit_frames: list[UpbitFrame], diffs: list[DiffFrame]) -> None:
        """The market model's step as its servers send it: the changed Upbit books, the Binance diff."""
        market = self.holder.market
        if not self._sub.only_snapshot:
            for code in result.upbit_changed:
                units = self._sub.units.get(code)
                if units is not None:
                    upbit_frames.append(
                        synthesised_book(self.holder, self._sub, self._ufeed.max_message_bytes, code, units)
                    )
        if result.binance_diff is not None:
            limit = self._bfeed.max_message_bytes
            diffs.append((synthesised_diff(self._symbol, market.time_ms, limit, result.binance_diff), decode_binance))

    def _check_stale(self, now: float) -> None:
        upbit_books, stale_after = self._upbit, self._ufeed.stale_after_s
        if upbit_books is not None and now >= upbit_books.stale_at(stale_after):
            raise BatchUnsupported(f"feed:upbit would reconnect: {upbit_books.stale_reason(stale_after)}")
        last_data_at = self._bstats.last_data_at
        if last_data_at is not None and now >= last_data_at + self._bfeed.stale_after_s:
            raise BatchUnsupported(f"feed:binance would reconnect: no market data for {self._bfeed.stale_after_s:g} s")

    # -- the feeds' pure part, as the shells in actors/feed.py call it ---------------------------------

    def _upbit_batch(self, frames: list[UpbitFrame], now: float) -> None:
        books = self._upbit
        assert books is not None
        stats, limit = self._ustats, self._ufeed.max_message_bytes
        self._ustats.batches += 1
        events: list[Any] = []
        for frame in frames:
            if isinstance(frame, upbit.Orderbook):  # a synthesised book, as its frame decodes
                stats.messages += 1
                events.append(frame)
            else:
                events += decoded(stats, frame, upbit.decode, limit, self._ufeed.max_bad_frames_per_min, self._ulog)
        batch = books.on_batch(events, now)
        for view in batch.views:
            stats.books += 1
            self._aggregator.offer(view, now)
        if batch.error is not None:
            raise BatchUnsupported(f"feed:upbit would reconnect: Upbit error {batch.error.name}")

    def _binance_batch(self, diffs: list[DiffFrame], now: float) -> None:
        keeper = self._keeper
        assert keeper is not None
        stats, limit = self._bstats, self._bfeed.max_message_bytes
        stats.batches += 1
        changed = False
        for frame, decode in diffs:
            if isinstance(frame, binance.DepthDiff):  # a synthesised diff, as its frame decodes
                stats.messages += 1
                events: list[Any] = [frame]
            else:
                events = decoded(stats, frame, decode, limit, self._bfeed.max_bad_frames_per_min, self._blog)
            for event in events:
                if isinstance(event, binance.DepthDiff):
                    stats.last_data_at = now
                    if self._follow(keeper.on_diff(event), now):
                        stats.books_superseded += changed
                        changed = True
                    if keeper.needs_snapshot:
                        self._snapshot_wanted = True
                elif isinstance(event, binance.ErrorReply):
                    self._blog.warning("error reply {}: {}", event.code, event.msg)
                else:  # a recording's stream frames are depth diffs (``recordings._peek``)
                    raise BatchUnsupported(f"feed:binance got {type(event).__name__}, which the actor path handles")
        if changed and keeper.sync.trusted:
            self._publish(now)

    def _follow(self, verdict: Verdict, now: float) -> bool:
        keeper = self._keeper
        assert keeper is not None
        if verdict.lost is not None:
            self._aggregator.offer(BookView(binance.VENUE, self._bfeed.symbol, (), (), now), now)
            self._blog.warning(verdict.lost)
        return keeper.follow(verdict, now)

    def _publish(self, now: float) -> None:
        keeper = self._keeper
        assert keeper is not None
        self._bstats.books += 1
        self._aggregator.offer(keeper.publish(self._bfeed.view_depth, now), now)
        if not self._bstats.connected:
            self._bstats.connected = True
            self._ready.set()

    def _resync(self, body: bytes, now: float) -> None:
        keeper = self._keeper
        assert keeper is not None
        snapshot = binance.decode_snapshot(body)
        verdict = keeper.on_snapshot(snapshot)
        if verdict.refetch:  # as the feed: ask again 0.2 s later, and later each time (the next step from then)
            self._refetches += 1
            self._refetch_at = now + 0.2 * self._refetches
            return
        self._snapshot_wanted = False
        self._refetch_at, self._refetches = -math.inf, 0
        self._blog.info("book synced from snapshot {} ({} levels)", snapshot.last_update_id, len(keeper.sync.book))
        if self._follow(verdict, now):
            self._publish(now)

    # -- the session's actors ----------------------------------------------------------------------

    def _connect(self, now: float) -> None:
        """Both feeds connect and subscribe, as the feed shells do at the session's start: Upbit's first books
        (the subscription's snapshot frames) and a Binance book that waits for its first diff. A follower's feeds
        are its leader's: it only says so."""
        if self.follower:
            self._ulog.info(
                "connected to {}, subscribed to {}", self.WHERE[0] or self._ufeed.url, ", ".join(self._codes)
            )
            self._blog.info("connected to {}", self.WHERE[1] or self._bfeed.ws_url)
            self._connected = True
            return
        ustats, bstats = self._ustats, self._bstats
        ustats.connects += 1
        ustats.last_data_at = now
        self._ulog.info("connected to {}, subscribed to {}", self.WHERE[0] or self._ufeed.url, ", ".join(self._codes))
        self._upbit = BookBatcher(self._codes, ustats, now)
        ustats.pings_sent += 1
        self._next_ping_at = now + self._ufeed.ping_interval_s
        frames: list[UpbitFrame] = [self._upbit_snapshot(code, units) for code, units in self._sub.units.items()]
        if not self._sub.only_realtime:
            self._upbit_batch(frames, now)
        if not ustats.connected:
            raise BatchUnsupported("feed:upbit: no first book for every code from the market")
        self._keeper = book_keeper(self._bfeed, bstats, diff_buffer_pool(self._bfeed))
        bstats.connects += 1
        bstats.last_data_at = now
        self._blog.info("connected to {}", self.WHERE[1] or self._bfeed.ws_url)
        self._connected = True

    async def _execute(self) -> None:
        """The executor's part: a view at the end of each window, the legs at their times (while the market's
        clock runs, its task decides them on its way from step to step: ``_until``); after the stop, the window
        still open (as the aggregator drains its inbox), then the session drains the legs."""
        while self.error is None:
            if self._driving:
                await self._handed_back.wait()
                continue
            at = self._next_decision()
            if self._drain_at is not None and (at is None or at > self._drain_at):
                await trio.sleep_until(self._drain_at)  # the feeds have closed: the session drains the legs
                return
            if at is None and self._stopped_at is not None:
                return
            self._window = trio.Event()
            with trio.move_on_at(math.inf if at is None else at):
                await self._window.wait()  # a window opened (or the session stopped) before ``at``
            if at is not None and trio.current_time() >= at and not self._driving:
                await self._decide(at)

    def _next_decision(self) -> float | None:
        """When the executor acts next: a window's end or a leg's time (None: nothing pending)."""
        window, due = self._aggregator.ends_at, self.frame.sources.trader.due_at()
        return min((x for x in (window, due) if x is not None), default=None)

    async def _decide(self, at: float) -> None:
        """At ``at``: the legs due then, else the view the window closing now builds; the fill events out."""
        sources, clock = self.frame.sources, self.frame.clock
        trader = sources.trader
        self._heed_disk()
        stopped, due = trader.risk_stopped, trader.due_at()
        if due is not None and due <= at:
            self._outbox.extend(trader.on_timer(at, clock.utc(at)))
        else:
            view = self._market.publish(self._aggregator.close())
            if view.complete:
                self._outbox.extend(trader.on_view(view, clock.utc(at)))
                if view.newest_received_at is not None:
                    sources.wire_to_decision.add(at - view.newest_received_at)
        if trader.risk_stopped is not None and stopped is None:
            logger.bind(actor="executor").warning("risk limit reached, no new entries: {}", trader.risk_stopped)
        await self._flush()

    async def _until(self, t: float) -> None:
        """The market clock's wait for its step at Trio time ``t``: the executor's decisions due before it, each at its
        time, in this task (no wake-up of the executor's task per window), the clock moved by ``FastForward``.
        Once the feeds are stopped the executor's task decides again, and this is ``trio.sleep_until``."""
        if self._handed_back.is_set():  # the clock ended, the feeds stopped or the pass failed (each hands back)
            await trio.sleep_until(t)
            return
        if not self._driving:
            self._driving = True
            self._window.set()  # the executor's task lets go of its deadline
        ff = self._ff
        assert ff is not None
        while (at := self._next_decision()) is not None and at <= t:
            await ff.until(at)
            if self._handed_back.is_set():  # the feeds stopped meanwhile: the executor's task decides from now on
                await trio.sleep_until(t)
                return
            await self._decide(at)
        await ff.until(t)

    def _hand_back(self) -> None:
        """The executor's task decides from now on (the market's clock has ended, or the feeds stopped)."""
        self._driving = False
        self._handed_back.set()
        self._window.set()

    def _heed_disk(self) -> None:
        """As the executor: no new trades once a data write failed (``ExecutorState.heed_disk``)."""
        disk = self.frame.sources.disk
        if disk.error is not None:
            self.frame.sources.trader.stop_entries(f"disk: {disk.error}")

    async def _flush(self) -> None:
        assert self._fills is not None
        if self._outbox and self._ff is not None:
            self._ff.stirred()  # the collector is woken
        while self._outbox:
            await self._fills.send(self._outbox.pop(0))

    async def run(self) -> None:
        """In place of the session's actor tree: the collector under its supervisor, the pure pass in this
        task; the same start (both feeds ready within startup_timeout_s), duration and stop."""
        frame = self.frame
        info, sources, stop, log = frame.info, frame.sources, frame.stop, frame.log
        cfg, life, s = info.config, sources.lifecycle, info.config.session
        log.info(self.PATH_LINE)
        fills_send, fills_recv = trio.open_memory_channel[FillEvent](FILLS_BUFFER)
        self._fills = fills_send
        jitter_rng = random.Random(s.seed + SeedStream.MARKET)
        collector = partial(run_collector, fills_recv, frame.writer, info, sources, frame.clock)

        async def supervised(*, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
            with fills_recv:
                try:
                    await supervise(
                        collector,
                        name=COLLECTOR,
                        policy=cfg.supervision,
                        stats=sources.actors[COLLECTOR],
                        rng=random.Random(jitter_rng.random()),
                        hurry=frame.draining,
                        task_status=task_status,
                    )
                except SupervisorGaveUp as exc:
                    life.fail(str(exc))
                    stop.set()

        async with trio.open_nursery() as consumers:
            await consumers.start(supervised, name=COLLECTOR)
            with fills_send:
                for name in (EXECUTOR, AGGREGATOR, FEED_UPBIT, FEED_BINANCE):  # each started once, ready at once
                    sources.actors[name].starts += 1
                async with trio.open_nursery() as trading:
                    trading.start_soon(self._execute)
                    self._connect(trio.current_time())
                    await self._await_ready()
                    if not stop.is_set():
                        await self._trade()
                    if self.error is not None:
                        life.fail(self.FAILED.format(self.error))
                    self._stop_feeds()
                # the executor's drain once its inbox closes: legs still in flight meet the last books
                self._heed_disk()
                trader = sources.trader
                while (due := trader.due_at()) is not None:
                    self._outbox.extend(trader.on_timer(due, frame.clock.utc(due)))
                await self._flush()
            consumers.cancel_scope.deadline = trio.current_time() + s.shutdown_grace_s
        if consumers.cancel_scope.cancelled_caught:
            life.fail(f"the pipeline did not drain within shutdown_grace_s={s.shutdown_grace_s:g}")

    async def _await_ready(self) -> None:
        """Both feeds ready within startup_timeout_s of the session's start, or the session fails."""
        frame = self.frame
        s, stop = frame.info.config.session, frame.stop
        with trio.CancelScope(deadline=frame.info.opened_at + s.startup_timeout_s) as startup:
            async with trio.open_nursery() as waiting:
                waiting.start_soon(cancel_when, stop, startup)
                await self._ready.wait()
                waiting.cancel_scope.cancel()
        if startup.cancelled_caught and not stop.is_set():
            frame.sources.lifecycle.fail(
                f"startup: the feeds were not ready within startup_timeout_s={s.startup_timeout_s:g} (batched path)"
            )
            stop.set()

    def _stop_feeds(self) -> None:
        """The session's end as the feeds' cancellation leaves it: the pings sent until then, both feeds
        disconnected and untrusted from then on."""
        frame = self.frame
        self._stopped_at = ended_at = trio.current_time()
        if self.FEEDS_CLOSE_S is not None:
            self._drain_at = ended_at + self.FEEDS_CLOSE_S
        frame.sources.lifecycle.end(ended_at)
        frame.log.info("stopping: cancelling the feeds, draining the pipeline")
        frame.draining.set()
        self._keepalive(ended_at, at_now=False)  # the keep-alive traffic until the feeds are cancelled
        for stats in (self._ustats, self._bstats):
            stats.connected = False
            stats.mark_untrusted(ended_at)
        self._hand_back()

    async def _trade(self) -> None:
        frame = self.frame
        cfg, life, log = frame.info.config, frame.sources.lifecycle, frame.log
        life.trading_since = trio.current_time()
        gc.freeze()  # as the session does once the feeds are ready (undone when it ends)
        log.info(
            "both feeds ready after {:.2f} s; trading for {:g} s",
            life.trading_since - frame.info.opened_at,
            cfg.session.duration_s,
        )
        async with trio.open_nursery() as nursery:
            self._during_trade(nursery)
            with trio.move_on_after(cfg.session.duration_s):
                await frame.stop.wait()
            nursery.cancel_scope.cancel()
        self._after_trade()
