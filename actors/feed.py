"""Feed actors: one per exchange. Each call is one connection lifetime; the supervisor restarts it,
and every restart is a reconnect.

A feed publishes ``BookView``s to the aggregator with ``send_nowait``: books are full states, so
when the aggregator's inbox is full the view is dropped and counted (conflation), and the feed never
stops reading its socket (which would stop it answering pings). ``started()`` is called once the
feed has delivered its first book(s): connected, subscribed and in sync.

Nothing from the exchange is trusted blindly (docs/reliability.md):
- every wait has a deadline: the connect (``connect_timeout_s``, handshake included), each REST
  snapshot (``snapshot_timeout_s``, body included, at most ``MAX_SNAPSHOT_BYTES``), and market data
  (``stale_after_s``: no data at all, or no book for one of the subscribed Upbit codes; keep-alive
  traffic does not count);
- everything the exchange can make us hold has a byte budget: a message (``max_message_bytes``; larger
  closes the connection, cause ``overflow``), the messages received and not yet read
  (``message_queue_bytes``, which also bounds the frames one wake-up takes), and a Binance book's diffs
  buffered while its snapshot is awaited (``diff_buffer_bytes``, and ``diff_buffer_total_bytes`` over every
  book) and the book itself (``book_bytes``); past those the book starts over, counted in ``overflows``;
- every REST request waits for the process's weight budget (``RestBudget``, ``feeds.binance.rest_weight_per_min``):
  a resync storm queues instead of earning a 429; a 429 or a 418 the exchange answers all the same ends the
  connection (cause ``rate_limited`` or ``banned``) and the budget holds every request until its ``Retry-After``;
- any exception while decoding one frame makes it a bad frame: counted, logged, skipped; more than
  ``max_bad_frames_per_min`` on one connection reconnects it;
- a Binance book that cannot be trusted (a sequence gap, a crossed book, a book that stops advancing
  while diffs arrive) is withdrawn downstream at once (an empty view: no decision can use it) and
  resynced; it is published again only once the stream has advanced it past its new snapshot.
"""

from __future__ import annotations

import math
import uuid
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

import trio
from loguru import logger

from actors.config import BinanceFeedConfig, UpbitFeedConfig
from actors.core.book import BookView
from actors.core.budget import ByteBudget
from actors.core.kpi import FeedStats
from actors.core.venues import binance, upbit
from actors.core.venues.binance_book import BookKeeper
from actors.core.venues.upbit_book import BookBatcher, UpbitQuiet
from actors.core.vocabulary import FeedFailure, RestartCause, Venue
from actors.feed_snapshot import BinanceShard, rest_budget
from actors.net.failures import FailureKind
from actors.net.http import http_client
from actors.net.rest_budget import RestBudget
from actors.net.ws import WsClosed, WsConn, WsConnectError, WsLimits, open_ws
from supervision import sole_exception

if TYPE_CHECKING:
    from loguru import Logger

    from actors.records.files import Recorder

BAD_FRAME_WINDOW_S = 60.0
MAX_BATCH = 256  # frames read per wake-up when they have queued up behind the first (and message_queue_bytes)
MAX_REFETCH = 10  # snapshots in a row older than the buffered diffs
MAX_STUCK_IN_A_ROW = 3  # snapshots in a row that the stream never continued: the endpoints disagree
SCHEDULED_CUT_TOLERANCE_S = 60.0  # a close this close to scheduled_cut_s is the exchange's planned cut
# a name that does not resolve at a feed's first connect (no internet, a mistyped URL) is tried this many times
# in all before the feed is given up on (the usual policy retries for about 15 s); after a first connection,
# a name failure (a network blip) gets the usual policy
FIRST_CONNECT_NAME_ATTEMPTS = 2


class FeedStale(FeedFailure):
    """No market data (or no book for a subscribed code) for stale_after_s."""

    cause = RestartCause.STALE


class FeedError(FeedFailure):
    """The exchange said something that ends this connection (an error frame, a shutdown notice, a stream of
    bad frames); ``cause`` ERROR unless given."""


class _Outbox:
    """A feed's end of the books channel.

    A view that finds the aggregator's inbox full is dropped and counted: the next one supersedes it.
    A withdrawal (an empty view: the book cannot be trusted) is never dropped: it waits and is sent
    before anything else, unless a newer view of the same market replaces it first."""

    def __init__(self, out: trio.MemorySendChannel[BookView], stats: FeedStats, venue: Venue) -> None:
        self._out, self._stats, self._venue = out, stats, venue
        self._withdrawn: dict[str, float] = {}  # symbol -> when it was withdrawn, not yet delivered

    def publish(self, view: BookView) -> None:
        self._withdrawn.pop(view.symbol, None)
        if not self.flush():
            self._stats.books_dropped += 1
            return
        try:
            self._out.send_nowait(view)
            self._stats.books += 1
        except trio.WouldBlock:
            self._stats.books_dropped += 1

    def withdraw(self, symbol: str, now: float) -> None:
        self._withdrawn[symbol] = now
        self.flush()

    def flush(self) -> bool:
        """Send pending withdrawals; False if some are still waiting for room."""
        for symbol, at in list(self._withdrawn.items()):
            try:
                self._out.send_nowait(BookView(self._venue, symbol, (), (), at))
            except trio.WouldBlock:
                return False
            del self._withdrawn[symbol]
        return True


class _Reader:
    """Frames of one connection, decoded and counted."""

    def __init__(
        self,
        conn: WsConn,
        stats: FeedStats,
        decode: Callable[[Any], list[Any]],
        log: Logger,
        max_bad_per_min: int,
        recorder: Recorder | None,
        batch_bytes: int,
    ) -> None:
        self._conn, self._stats, self._decode, self._log = conn, stats, decode, log
        self._max_bad, self._recorder, self._batch_bytes = max_bad_per_min, recorder, batch_bytes
        stats.reset_bad_window()  # a burst on the previous connection is not held against this one

    async def next_events(
        self, stale_at: float, stale: Callable[[], FeedFailure], wake_at: float = math.inf
    ) -> list[Any] | None:
        """Decoded events of the next frame and of the frames already queued behind it (up to MAX_BATCH
        frames and ``batch_bytes`` of them), in order; None at ``wake_at``; ``stale()`` raised at
        ``stale_at``. At 10 frames/s a batch is one frame; when frames queue up (a replay at full speed, a
        pause of the event loop) one wake-up reads them all and the feed publishes only the resulting book
        (docs/performance.md)."""
        frame: bytes | str | None = None
        with trio.move_on_at(min(stale_at, wake_at)):
            frame = await self._conn.receive()
        if frame is None:
            if trio.current_time() >= stale_at:
                raise stale()
            return None
        self._stats.batches += 1
        taken = len(frame)
        events = self._decode_counted(frame)
        for _ in range(MAX_BATCH - 1):
            if taken >= self._batch_bytes:
                break  # the rest waits for the next wake-up, after these events are handled
            try:
                frame = self._conn.receive_nowait()
            except WsClosed:
                break  # the next receive reports it, after these events are handled
            if frame is None:
                break
            taken += len(frame)
            events += self._decode_counted(frame)
        return events

    def _decode_counted(self, frame: bytes | str) -> list[Any]:
        """One frame's events ([] for a bad frame: counted, logged, skipped). Any exception of the decoder
        is a bad frame (deeply nested JSON raises RecursionError, not a decode error)."""
        stats = self._stats
        stats.messages += 1
        if self._recorder is not None:
            self._recorder.write(stats.venue, "ws", trio.current_time(), frame)
        try:
            return self._decode(frame)
        except Exception as exc:
            recent = stats.bad_frame(trio.current_time(), BAD_FRAME_WINDOW_S)
            self._log.warning(
                "bad frame #{} skipped: {}: {} (first bytes: {!r})",
                stats.bad_frames,
                type(exc).__name__,
                str(exc)[:200],
                frame[:120],
            )
            if recent > self._max_bad:
                raise FeedError(
                    f"{recent} bad frames within {BAD_FRAME_WINDOW_S:g} s: the exchange keeps sending "
                    f"garbage; reconnecting"
                ) from None
            return []


async def run_upbit_feed(
    cfg: UpbitFeedConfig,
    out: trio.MemorySendChannel[BookView],
    stats: FeedStats,
    *,
    codes: tuple[str, ...] | None = None,
    recorder: Recorder | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One connection, one subscription message for every code. Default ``codes``: (``cfg.market``,
    ``cfg.fx_market``), and a code without a book for ``stale_after_s`` reconnects the feed. Given ``codes``
    (many coins): only ``cfg.fx_market`` or no book at all for ``stale_after_s`` reconnects; any other code goes
    quiet, counted per code and withdrawn downstream until its next book (actors/core/venues/upbit_book.py)."""
    log = logger.bind(actor="feed:upbit")
    watched = None if codes is None else (cfg.fx_market,)
    codes = (cfg.market, cfg.fx_market) if codes is None else codes
    outbox = _Outbox(out, stats, upbit.VENUE)
    limits = WsLimits(cfg.max_message_bytes, cfg.message_queue_bytes, "feeds.upbit")
    async with _connecting(stats), open_ws(cfg.url, connect_timeout_s=cfg.connect_timeout_s, limits=limits) as conn:
        stats.connects += 1
        reader = _Reader(conn, stats, upbit.decode, log, cfg.max_bad_frames_per_min, recorder, cfg.message_queue_bytes)
        await conn.send(upbit.subscribe_request(str(uuid.uuid4()), codes))
        log.info("connected to {}, subscribed to {}", cfg.url, _codes_in_words(codes))
        stats.last_data_at = next_ping_at = subscribed_at = trio.current_time()
        books = BookBatcher(codes, stats, subscribed_at, watched)

        def stale() -> FeedStale:
            return FeedStale(books.stale_reason(cfg.stale_after_s))

        try:
            while True:
                if trio.current_time() >= next_ping_at:
                    # text PING (the server then sends {"status":"UP"} every 10 s): no idle timeout
                    await conn.send(upbit.PING)
                    stats.pings_sent += 1
                    next_ping_at += cfg.ping_interval_s
                wake_at = min(next_ping_at, books.quiet_at(cfg.stale_after_s))
                events = await reader.next_events(books.stale_at(cfg.stale_after_s), stale, wake_at)
                if events is None:  # time to ping, or a code went quiet
                    _withdraw_quiet(books.quiet(trio.current_time(), cfg.stale_after_s), outbox, log, task_status)
                    continue
                batch = books.on_batch(events, trio.current_time())
                for view in batch.views:
                    outbox.publish(view)
                if batch.ready:
                    task_status.started()
                if batch.error is not None:
                    raise FeedError(f"Upbit error {batch.error.name}: {batch.error.message}")
        finally:
            stats.connected = False
            now = trio.current_time()
            stats.mark_untrusted(now)
            for code in stats.per_symbol.keys() & set(codes):
                stats.book_untrusted(code, now)


def _codes_in_words(codes: tuple[str, ...]) -> str:
    return ", ".join(codes) if len(codes) <= 4 else f"{len(codes)} codes ({', '.join(codes[:3])}, ...)"


def _withdraw_quiet(quiet: UpbitQuiet, outbox: _Outbox, log: Logger, task_status: trio.TaskStatus[None]) -> None:
    now = trio.current_time()
    for code in quiet.codes:
        outbox.withdraw(code, now)
        log.warning("no order book for {}: withdrawn until its next one (the feed stays connected)", code)
    if quiet.ready:
        task_status.started()


def _decode_binance(frame: bytes | str) -> list[binance.Event]:
    return [binance.decode(frame)]


async def run_binance_feed(
    cfg: BinanceFeedConfig,
    out: trio.MemorySendChannel[BookView],
    stats: FeedStats,
    *,
    symbols: tuple[str, ...] | None = None,
    priority: Callable[[str], int] | None = None,
    rotate_at: Callable[[float], float] | None = None,
    recorder: Recorder | None = None,
    diff_pool: ByteBudget | None = None,
    rest: RestBudget | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One connection carrying the depth streams of ``symbols`` (a shard; default ``(cfg.symbol,)``), a book each,
    ready once every book has published. ``priority(symbol)``: the book's place in the snapshot queues, lower first.
    ``rotate_at(connected_at)``: when to end the connection, cause ``scheduled`` (``ShardPlan.rotation``).
    ``diff_pool``: the byte budget every Binance book of the session shares for its pre-snapshot diffs (default:
    this feed's own). ``rest``: the process's REST weight budget (default: this connection's own)."""
    log = logger.bind(actor="feed:binance")
    symbols = (cfg.symbol,) if symbols is None else symbols
    names = tuple(n for s in symbols for n in binance.stream_names(s, ("depth@100ms",)))
    url = cfg.ws_url.rstrip("/") + binance.combined_path(names)
    outbox = _Outbox(out, stats, binance.VENUE)
    limits = WsLimits(cfg.max_message_bytes, cfg.message_queue_bytes, "feeds.binance")
    async with (
        _connecting(stats),
        http_client(cfg.rest_url, cfg.connect_timeout_s, cfg.snapshot_timeout_s) as http,
        open_ws(url, connect_timeout_s=cfg.connect_timeout_s, limits=limits) as conn,
    ):
        stats.connects += 1
        log.info("connected to {}", url if len(symbols) == 1 else f"{cfg.ws_url} ({len(symbols)} depth streams)")
        reader = _Reader(
            conn, stats, _decode_binance, log, cfg.max_bad_frames_per_min, recorder, cfg.message_queue_bytes
        )
        shard = BinanceShard(
            cfg,
            symbols,
            http,
            stats,
            outbox,
            log,
            recorder,
            partial(book_keeper, cfg, stats, diff_pool if diff_pool is not None else diff_buffer_pool(cfg)),
            rest if rest is not None else rest_budget(cfg),
            priority or _same_priority,
            task_status.started,
        )
        stats.last_data_at = connected_at = trio.current_time()
        try:
            due = math.inf if rotate_at is None else rotate_at(connected_at)
            await _read_binance(cfg, stats, reader, outbox, shard, due)
        except WsClosed:
            cut = _scheduled_cut(cfg, trio.current_time() - connected_at)
            if cut is None:
                raise
            raise cut from None
        finally:
            shard.close(trio.current_time())
            stats.connected = False
            stats.mark_untrusted(trio.current_time())


async def _read_binance(
    cfg: BinanceFeedConfig, stats: FeedStats, reader: _Reader, outbox: _Outbox, shard: BinanceShard, due: float
) -> None:
    """Read the connection until it fails, goes stale, is told to shut down or is ``due`` to rotate; its books'
    snapshots are fetched in tasks of their own meanwhile."""
    connected_at = trio.current_time()

    def stale() -> FeedStale:
        return FeedStale(f"no market data for {cfg.stale_after_s:g} s")

    with _one_failure():
        async with trio.open_nursery() as snapshots:
            while True:
                outbox.flush()
                events = await reader.next_events(_stale_at(stats, cfg.stale_after_s), stale, due)
                if events is None:
                    raise _rotation(trio.current_time() - connected_at, len(shard.books))
                if shard.on_events(events, trio.current_time(), snapshots):
                    raise FeedError("server announced a shutdown (serverShutdown)", cause=RestartCause.SCHEDULED)


def _stale_at(stats: FeedStats, stale_after_s: float) -> float:
    return (stats.last_data_at or 0.0) + stale_after_s


def _same_priority(symbol: str) -> int:
    return 0


def _rotation(age: float, books: int) -> FeedError:
    """The connection's planned rotation (``ShardPlan``): ended before the exchange cuts it, at a time of its own."""
    return FeedError(
        f"planned rotation after {age:.0f} s (before the exchange's cut, apart from the other connections'); "
        f"its {books} book(s) resync",
        cause=RestartCause.SCHEDULED,
    )


def _scheduled_cut(cfg: BinanceFeedConfig, age: float) -> FeedError | None:
    """A close this long after connecting is the exchange's scheduled cut (None: it is not)."""
    if age < cfg.scheduled_cut_s - SCHEDULED_CUT_TOLERANCE_S:
        return None
    return FeedError(
        f"connection closed after {age:.0f} s: the scheduled cut ({cfg.scheduled_cut_s:g} s)",
        cause=RestartCause.SCHEDULED,
    )


@asynccontextmanager
async def _connecting(stats: FeedStats) -> AsyncIterator[None]:
    """A connect failure at a feed's first connect of the session whose name does not resolve is worth
    FIRST_CONNECT_NAME_ATTEMPTS attempts (``max_attempts``, read by the supervisor), not the usual policy's."""
    try:
        yield
    except WsConnectError as exc:
        if stats.connects == 0 and exc.failure.kind is FailureKind.NAME:
            exc.max_attempts = FIRST_CONNECT_NAME_ATTEMPTS
        raise


def book_keeper(cfg: BinanceFeedConfig, stats: FeedStats, pool: ByteBudget, symbol: str | None = None) -> BookKeeper:
    """A Binance book's keeper as every path builds it (the feed, the batched replay): the book of ``symbol``
    (default ``cfg.symbol``); twice the view's depth kept sorted, so every view is a slice (actors/core/book.py);
    its byte budgets; the diffs it buffers for a snapshot drawn from ``pool``, the session's."""
    return BookKeeper(
        cfg.symbol if symbol is None else symbol,
        stats,
        keep_sorted=max(128, 2 * cfg.view_depth),
        max_stuck_in_a_row=MAX_STUCK_IN_A_ROW,
        max_refetch=MAX_REFETCH,
        budget=ByteBudget(cfg.diff_buffer_bytes, "feeds.binance.diff_buffer_bytes"),
        pool=pool,
        book_budget=ByteBudget(cfg.book_bytes, "feeds.binance.book_bytes"),
    )


def diff_buffer_pool(cfg: BinanceFeedConfig) -> ByteBudget:
    """The byte budget every Binance book of a session shares for its pre-snapshot diffs."""
    return ByteBudget(cfg.diff_buffer_total_bytes, "feeds.binance.diff_buffer_total_bytes")


@contextmanager
def _one_failure() -> Iterator[None]:
    """A connection's nursery raises a group; its one real failure (the reader's or a snapshot task's)
    is what the supervisor should see. Cancellation and anything else pass through as they are."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = sole_exception(group)
        if isinstance(leaf, Exception):
            raise leaf from None
        raise
