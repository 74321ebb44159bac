"""The books of one Binance connection and their REST depth snapshots (the feed, actors/feed.py, reads the socket
around them).

- ``BinanceShard``: a connection's books, one ``BinanceBook`` per symbol (its decisions in the core's
  ``BookKeeper``); a diff goes to its symbol's book, and a book that cannot be trusted is withdrawn and resyncs
  alone while the others go on publishing (never "reset every book");
- a resync waits a random ``resync_jitter_s`` at most (a shard of many books: books lost together ask apart),
  then for one of the connection's ``SnapshotSlots`` (``snapshots_in_flight``), then for the process's weight
  budget, both in the order of the books' priority (a book with an open trade first);
- ``fetch_snapshot``: one request once the budget grants it, bounded in time and size, its refusals (429, 418)
  and failures named (``SnapshotError``, ``RestRefused``)."""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterable, Protocol

import httpx
import trio
from loguru import logger

from actors.config import BinanceFeedConfig
from actors.core.book import BookView
from actors.core.kpi import FeedStats
from actors.core.venues import binance
from actors.core.venues.binance_book import BookKeeper, SnapshotError, Verdict
from actors.core.venues.binance_weight import Answer, depth_weight
from actors.core.vocabulary import RestartCause, Venue
from actors.net.failures import connect_failure
from actors.net.rest_budget import RestBudget

if TYPE_CHECKING:
    from loguru import Logger

    from actors.records.files import Recorder

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024  # a 5000-level depth snapshot is well under 1 MiB


class RestRefused(SnapshotError):
    """Binance refused a REST request: 429 (past the weight limit) or 418 (the IP is banned)."""


class Outbox(Protocol):
    """The feed's end of the books channel (``actors.feed._Outbox``)."""

    def publish(self, view: BookView) -> None: ...

    def withdraw(self, symbol: str, now: float) -> None: ...


class SnapshotSlots:
    """At most ``size`` depth snapshots of one connection asked for at once (``snapshots_in_flight``): a
    connection whose many books resync together does not queue them all on the process's weight budget, where
    they would stand before the books of other connections. The others wait here, lower ``priority`` first
    (a book with an open trade before one that is only watched), then first come. A slot found free with
    nobody waiting is taken without a checkpoint: a one-book connection's timing does not change."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"snapshot slots need a size >= 1, not {size}")
        self.size = size
        self.busy = 0
        self._waiting: dict[int, tuple[int, int, trio.Event]] = {}  # seq -> (priority, seq, woken when handed a slot)
        self._seq = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[None]:
        if self.busy < self.size and not self._waiting:
            self.busy += 1
        else:
            self._seq += 1
            seq, handed = self._seq, trio.Event()
            self._waiting[seq] = (priority, seq, handed)
            try:
                await handed.wait()
            except BaseException:
                if self._waiting.pop(seq, None) is None:  # handed a slot as it was cancelled: pass it on
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        if not self._waiting:
            self.busy -= 1
            return
        _, seq, handed = min(self._waiting.values(), key=lambda w: (w[0], w[1]))
        del self._waiting[seq]
        handed.set()  # the slot goes to the first waiter: ``busy`` stays


class BinanceBook:
    """The I/O around one symbol's ``BookKeeper`` (its decisions are in the core): fetches the snapshots it asks
    for in a task of its own, so the socket is read (and diffs buffered) while a snapshot is awaited; publishes
    and withdraws its views as its verdicts say. A book that cannot be trusted resyncs alone: its shard's other
    books go on publishing."""

    def __init__(self, shard: BinanceShard, symbol: str, make_keeper: Callable[[str], BookKeeper]) -> None:
        self.shard, self.symbol = shard, symbol
        self.keeper = make_keeper(symbol)
        self.fetching = False

    @property
    def needs_snapshot(self) -> bool:
        return self.keeper.needs_snapshot and not self.fetching

    def on_diff(self, diff: binance.DepthDiff) -> bool:
        """Apply (or buffer) one diff; True if the book changed and can be trusted."""
        return self._follow(self.keeper.on_diff(diff))

    def publish(self, received_at: float) -> None:
        self.shard.outbox.publish(self.keeper.publish(self.shard.cfg.view_depth, received_at))
        self.shard.published(self.symbol)

    async def resync(self) -> None:
        """Fetch snapshots until the book is in sync again (a task of the connection's nursery): after a random
        wait of up to ``resync_jitter_s`` in a shard of many books, in one of the connection's snapshot slots,
        on the process's weight budget, both by the book's priority."""
        shard = self.shard
        self.fetching = True
        try:
            delay = shard.jitter()
            if delay > 0:
                await trio.sleep(delay)
            attempt = 0
            while self.keeper.needs_snapshot:
                priority = shard.priority(self.symbol)
                async with shard.slots.slot(priority):
                    snapshot = await fetch_snapshot(
                        shard.http,
                        shard.cfg,
                        shard.rest,
                        shard.stats,
                        shard.recorder,
                        symbol=self.symbol,
                        priority=priority,
                    )
                verdict = self.keeper.on_snapshot(snapshot)
                if verdict.refetch:
                    attempt += 1
                    await trio.sleep(0.2 * attempt)
                    continue
                shard.log.info(
                    "{}book synced from snapshot {} ({} levels)",
                    shard.prefix(self.symbol),
                    snapshot.last_update_id,
                    len(self.keeper.sync.book),
                )
                if self._follow(verdict):
                    self.publish(trio.current_time())
        finally:
            self.fetching = False

    def _follow(self, verdict: Verdict) -> bool:
        now = trio.current_time()
        if verdict.lost is not None:
            self.shard.outbox.withdraw(self.symbol, now)
            self.shard.log.warning("{}{}", self.shard.prefix(self.symbol), verdict.lost)
        return self.keeper.follow(verdict, now)


class BinanceShard:
    """One connection's books (one per symbol) and what they share: the REST client, the process's weight
    budget, the connection's snapshot slots, the books' priority and the jitter of their resyncs."""

    def __init__(
        self,
        cfg: BinanceFeedConfig,
        symbols: tuple[str, ...],
        http: httpx.AsyncClient,
        stats: FeedStats,
        outbox: Outbox,
        log: Logger,
        recorder: Recorder | None,
        make_keeper: Callable[[str], BookKeeper],
        rest: RestBudget,
        priority: Callable[[str], int],
        on_ready: Callable[[], None],
    ) -> None:
        self.cfg, self.http, self.stats, self.outbox, self.log = cfg, http, stats, outbox, log
        self.recorder, self.rest, self.priority, self._on_ready = recorder, rest, priority, on_ready
        self.slots = SnapshotSlots(cfg.snapshots_in_flight)
        self._rng = random.Random("/".join(symbols))  # the same shard draws the same waits (replays repeat)
        self._many = len(symbols) > 1
        if self._many:  # counters per book (before the keepers, which take theirs)
            stats.track(symbols, trio.current_time())
        self.books = {s: BinanceBook(self, s, make_keeper) for s in symbols}
        self._unpublished = set(symbols)

    def jitter(self) -> float:
        """The wait before a resync: none for a one-book connection (its timing is today's)."""
        return self._rng.uniform(0.0, self.cfg.resync_jitter_s) if self._many else 0.0

    def prefix(self, symbol: str) -> str:
        return f"{symbol}: " if self._many else ""

    def published(self, symbol: str) -> None:
        """The feed is ready once every book of the connection has published a view."""
        if self._unpublished:
            self._unpublished.discard(symbol)
            if not self._unpublished:
                self.stats.connected = True
                self._on_ready()

    def book_of(self, symbol: str) -> BinanceBook | None:
        if not self._many:
            return next(iter(self.books.values()))  # one book: every diff of the connection is its own
        return self.books.get(symbol)

    def on_events(self, events: Iterable[binance.Event], received_at: float, snapshots: trio.Nursery) -> bool:
        """One batch of a connection's events: each diff applied to its symbol's book (a snapshot fetched in
        ``snapshots`` when the book needs one), one view published per book as of its last diff. True: the
        server announced a shutdown (the connection ends there, nothing of the batch published)."""
        changed: dict[str, BinanceBook] = {}  # one view per book per batch, as of its last diff
        for event in events:
            if isinstance(event, binance.DepthDiff):
                book = self.book_of(event.symbol)
                if book is None:
                    continue  # a stream this connection did not ask for
                self.stats.last_data_at = received_at
                if book.on_diff(event):
                    self.stats.books_superseded += book.symbol in changed
                    changed[book.symbol] = book
                if book.needs_snapshot:
                    snapshots.start_soon(book.resync)
            elif isinstance(event, binance.ServerShutdown):
                return True
            elif isinstance(event, binance.ErrorReply):
                self.log.warning("error reply {}: {}", event.code, event.msg)
        for book in changed.values():
            if book.keeper.sync.trusted:
                book.publish(received_at)
        return False

    def close(self, now: float) -> None:
        """The connection ends: the buffered diffs no longer count against the pool; every book is untrusted."""
        for book in self.books.values():
            book.keeper.release()
            self.stats.book_untrusted(book.symbol, now)


def rest_budget(cfg: BinanceFeedConfig, seed: int | None = None) -> RestBudget:
    """The REST weight budget of a process's Binance feeds (``rest_weight_per_min``), its jitter seeded."""
    return RestBudget.per_minute(cfg.rest_weight_per_min, seed)


async def fetch_snapshot(
    http: httpx.AsyncClient,
    cfg: BinanceFeedConfig,
    rest: RestBudget,
    stats: FeedStats,
    recorder: Recorder | None = None,
    *,
    symbol: str | None = None,
    priority: int = 0,
) -> binance.DepthSnapshot:
    """One REST depth snapshot of ``symbol`` (default ``cfg.symbol``), once the weight budget grants it (queued
    by ``priority``, lower first); within ``snapshot_timeout_s`` for the whole
    request (a body that trickles one byte a second never times out per read) and at most MAX_SNAPSHOT_BYTES
    (announced or streamed). A 429 or 418 raises ``RestRefused``, after the budget has taken in its Retry-After."""
    query = binance.depth_query(cfg.symbol if symbol is None else symbol, cfg.snapshot_limit)
    weight = depth_weight(cfg.snapshot_limit)
    asked_at = trio.current_time()
    held_s = rest.statistics().blocked_until - asked_at
    if held_s > 0:  # a wait of minutes or days (a ban) says so when it starts, not only when it ends
        logger.bind(actor="feed:binance").warning(
            "depth snapshot held {:.0f} s: Binance's Retry-After (HTTP 429/418) stops every REST request until then",
            held_s,
        )
    sent_at = await rest.acquire(weight, priority)
    stats.rest_weight += weight
    stats.rest_wait_s += sent_at - asked_at
    headers: dict[str, str] = {}
    answer = Answer.OK
    with trio.move_on_after(cfg.snapshot_timeout_s) as deadline:
        try:
            async with http.stream("GET", query) as response:
                status, headers = response.status_code, dict(response.headers)
                body = await _read_body(response, MAX_SNAPSHOT_BYTES if status == 200 else 4096)
        except httpx.HTTPError as exc:
            raise SnapshotError(f"depth snapshot request failed: {_http_failure(exc, http.base_url, cfg)}") from None
        finally:
            if headers:
                answer = rest.answered(status, headers, sent_at)
    if deadline.cancelled_caught:
        raise SnapshotError(
            f"depth snapshot: no complete answer within {cfg.snapshot_timeout_s:g} s (feeds.binance.snapshot_timeout_s)"
        )
    if answer is not Answer.OK:
        cause = RestartCause.BANNED if answer is Answer.BANNED else RestartCause.RATE_LIMITED
        raise RestRefused(
            f"depth snapshot HTTP {status} ({cause}): no REST request before Retry-After "
            f"({headers.get('retry-after', '?')} s); {body[:200].decode('utf-8', 'replace')}",
            cause=cause,
        )
    if status != 200:
        raise SnapshotError(f"depth snapshot HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
    if recorder is not None:
        recorder.write(Venue.BINANCE, "rest", trio.current_time(), body)
    try:
        return binance.decode_snapshot(body)
    except Exception as exc:  # any exception of the decoder: RecursionError on nested JSON, say
        raise SnapshotError(f"depth snapshot unreadable: {type(exc).__name__}: {str(exc)[:200]}") from None


def _http_failure(exc: httpx.HTTPError, base_url: httpx.URL, cfg: BinanceFeedConfig) -> str:
    """A failed REST request in words: a timeout with the deadline and the key that sets it, the connect
    failure it names ("name resolution failed for api.binance.com (...)", "connection refused by ..."), or
    the library's own message."""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return f"no connection to {base_url.host} within {cfg.connect_timeout_s:g} s (feeds.binance.connect_timeout_s)"
    if isinstance(exc, httpx.TimeoutException):  # a read or a write: nothing moved for a whole deadline
        return (
            f"{base_url.host} sent nothing for {cfg.snapshot_timeout_s:g} s while answering "
            f"({type(exc).__name__}; feeds.binance.snapshot_timeout_s)"
        )
    fallback = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not isinstance(exc, httpx.TransportError):
        return fallback
    return connect_failure(exc, base_url.host, base_url.port, fallback).text


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body, or SnapshotError as soon as it is known to exceed ``limit`` bytes."""
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit and response.status_code == 200:
        raise SnapshotError(f"depth snapshot of {int(announced):,} bytes announced; at most {limit:,} accepted")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if response.status_code != 200:
                break  # an error page: its start is enough to say what went wrong
            raise SnapshotError(f"depth snapshot longer than {limit:,} bytes: abandoned")
        chunks.append(chunk)
    return b"".join(chunks)
