"""Feed actors: one per exchange. Each call is one connection lifetime; the supervisor restarts it,
and every restart is a reconnect.

A feed publishes ``BookView``s to the aggregator with ``send_nowait``: books are full states, so
when the aggregator's inbox is full the view is dropped and counted (conflation), and the feed never
stops reading its socket (which would stop it answering pings). ``started()`` is called once the
feed has delivered its first book(s): connected, subscribed and in sync.

Stale means no market data for ``stale_after_s``; keep-alive traffic does not count.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Callable

import httpx
import trio
from loguru import logger

from actors.config import BinanceFeedConfig, UpbitFeedConfig
from actors.core.book import BookView, DiffBook
from actors.core.kpi import FeedStats
from actors.core.venues import FrameError, binance, upbit
from actors.ws import WsClosed, WsConn, http_client, open_ws


class FeedStale(Exception):
    restart_cause = "stale"


class FeedError(Exception):
    """The exchange said something that ends this connection (an error frame, a shutdown notice)."""

    def __init__(self, message: str, cause: str = "error") -> None:
        super().__init__(message)
        self.restart_cause = cause


class SnapshotError(Exception):
    restart_cause = "snapshot"


def publish(out: trio.MemorySendChannel[BookView], view: BookView, stats: FeedStats) -> None:
    try:
        out.send_nowait(view)
        stats.books += 1
    except trio.WouldBlock:
        stats.books_dropped += 1


async def _receive_data(conn: WsConn, stats: FeedStats, stale_after_s: float,
                        wake_at: float = math.inf) -> bytes | str | None:
    """The next frame; None if ``wake_at`` came first; FeedStale if no data came for stale_after_s."""
    assert stats.last_data_at is not None
    stale_at = stats.last_data_at + stale_after_s
    with trio.move_on_at(min(stale_at, wake_at)):
        return await conn.receive()
    if trio.current_time() >= stale_at:
        raise FeedStale(f"no market data for {stale_after_s:g} s")
    return None


BAD_FRAME_WINDOW_S = 60.0
MAX_BATCH = 256  # frames read per wake-up when they have queued up behind the first


def _decode_counted(frame: bytes | str, stats: FeedStats, decode: Callable[[Any], list], log, max_bad_per_min: int,
                    recorder) -> list:
    """One frame's events ([] for a bad frame: counted, logged, skipped). A feed whose bad frames
    exceed ``max_bad_per_min`` within a minute is reconnected (cause error)."""
    stats.messages += 1
    if recorder is not None:
        recorder.write(stats.venue, "ws", trio.current_time(), frame)
    try:
        return decode(frame)
    except FrameError as exc:
        recent = stats.bad_frame(trio.current_time(), BAD_FRAME_WINDOW_S)
        log.warning("bad frame #{} skipped: {} (first bytes: {!r})", stats.bad_frames, exc, frame[:120])
        if recent > max_bad_per_min:
            raise FeedError(f"{recent} bad frames within {BAD_FRAME_WINDOW_S:g} s: the exchange keeps sending "
                            f"garbage; reconnecting") from None
        return []


async def _next_events(conn: WsConn, stats: FeedStats, stale_after_s: float, decode: Callable[[Any], list],
                       log, max_bad_per_min: int, wake_at: float = math.inf, recorder=None) -> list | None:
    """Decoded events of the next frame and of the frames already queued behind it (up to MAX_BATCH),
    in order; None at ``wake_at``. At 10 frames/s a batch is one frame; when frames queue up (a replay
    at full speed, a pause of the event loop) one wake-up reads them all and the feed publishes only the
    resulting book (docs/performance.md)."""
    frame = await _receive_data(conn, stats, stale_after_s, wake_at)
    if frame is None:
        return None
    stats.batches += 1
    events = _decode_counted(frame, stats, decode, log, max_bad_per_min, recorder)
    for _ in range(MAX_BATCH - 1):
        try:
            frame = conn.receive_nowait()
        except WsClosed:
            break  # the next receive reports it, after these events are handled
        if frame is None:
            break
        events += _decode_counted(frame, stats, decode, log, max_bad_per_min, recorder)
    return events


async def run_upbit_feed(cfg: UpbitFeedConfig, out: trio.MemorySendChannel[BookView], stats: FeedStats, *,
                         recorder=None, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    log = logger.bind(actor="feed:upbit")
    codes = (cfg.market, cfg.fx_market)
    async with open_ws(cfg.url, connect_timeout_s=cfg.connect_timeout_s) as conn:
        stats.connects += 1
        await conn.send(upbit.subscribe_request(str(uuid.uuid4()), codes))
        log.info("connected to {}, subscribed to {}", cfg.url, ", ".join(codes))
        stats.last_data_at = next_ping_at = trio.current_time()
        seen: set[str] = set()
        try:
            while True:
                if trio.current_time() >= next_ping_at:
                    # text PING (the server then sends {"status":"UP"} every 10 s): no idle timeout
                    await conn.send(upbit.PING)
                    stats.pings_sent += 1
                    next_ping_at += cfg.ping_interval_s
                events = await _next_events(conn, stats, cfg.stale_after_s, upbit.decode, log,
                                            cfg.max_bad_frames_per_min, next_ping_at, recorder)
                if events is None:
                    continue  # time to ping
                now = trio.current_time()
                newest: dict[str, upbit.Orderbook] = {}  # each Upbit book is a full state: the last one wins
                error = None
                for event in events:
                    if isinstance(event, upbit.Orderbook):
                        stats.padded_levels += event.padded_levels
                        if event.code in newest:
                            stats.books_superseded += 1
                        newest[event.code] = event
                    elif isinstance(event, upbit.ErrorFrame):
                        error = error or event
                if newest:
                    stats.last_data_at = now
                    stats.mark_trusted(now)
                for event in newest.values():
                    publish(out, BookView(upbit.VENUE, event.code, event.bids, event.asks, now, event.timestamp_ms),
                            stats)
                    if not stats.connected:
                        seen.add(event.code)
                        if seen.issuperset(codes):
                            stats.connected = True
                            task_status.started()
                if error is not None:
                    raise FeedError(f"Upbit error {error.name}: {error.message}")
        finally:
            stats.connected = False
            stats.mark_untrusted(trio.current_time())


async def _fetch_snapshot(http: httpx.AsyncClient, cfg: BinanceFeedConfig, recorder=None) -> binance.DepthSnapshot:
    query = binance.depth_query(cfg.symbol, cfg.snapshot_limit)
    try:
        response = await http.get(query)
    except httpx.HTTPError as exc:
        raise SnapshotError(f"depth snapshot request failed: {type(exc).__name__}: {exc}") from None
    if recorder is not None and response.status_code == 200:
        recorder.write("binance", "rest", trio.current_time(), response.content)
    if response.status_code != 200:
        raise SnapshotError(f"depth snapshot HTTP {response.status_code}: {response.text[:200]}")
    try:
        return binance.decode_snapshot(response.content)
    except FrameError as exc:
        raise SnapshotError(f"depth snapshot unreadable: {exc}") from None


MAX_REFETCH = 10
SCHEDULED_CUT_TOLERANCE_S = 60.0  # a close this close to scheduled_cut_s is the exchange's planned cut


def _decode_binance(frame: bytes | str) -> list[binance.Event]:
    return [binance.decode(frame)]


async def _sync_from_snapshot(http: httpx.AsyncClient, cfg: BinanceFeedConfig, sync: binance.BookSync,
                              stats: FeedStats, log, recorder=None) -> binance.Outcome:
    for attempt in range(MAX_REFETCH):
        snapshot = await _fetch_snapshot(http, cfg, recorder)
        outcome = sync.on_snapshot(snapshot)
        if outcome is not binance.Outcome.REFETCH:
            stats.resyncs += 1
            log.info("book synced from snapshot {} ({} levels)", snapshot.last_update_id, len(sync.book))
            return outcome
        stats.snapshot_refetches += 1
        await trio.sleep(0.2 * (attempt + 1))
    raise SnapshotError(f"snapshot stayed older than the buffered diffs after {MAX_REFETCH} fetches")


async def run_binance_feed(cfg: BinanceFeedConfig, out: trio.MemorySendChannel[BookView], stats: FeedStats, *,
                           recorder=None, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    log = logger.bind(actor="feed:binance")
    names = binance.stream_names(cfg.symbol, ("depth@100ms",))
    url = cfg.ws_url.rstrip("/") + binance.combined_path(names)
    # the book keeps twice the view's depth sorted, so every view is a slice (actors/core/book.py)
    sync = binance.BookSync(cfg.symbol, book=DiffBook(keep_sorted=max(128, 2 * cfg.view_depth)))
    async with http_client(cfg.rest_url, cfg.connect_timeout_s) as http, \
            open_ws(url, connect_timeout_s=cfg.connect_timeout_s) as conn:
        stats.connects += 1
        log.info("connected to {}", url)
        stats.last_data_at = connected_at = trio.current_time()
        try:
            while True:
                events = await _next_events(conn, stats, cfg.stale_after_s, _decode_binance, log,
                                            cfg.max_bad_frames_per_min, recorder=recorder)
                if not events:
                    continue
                now = trio.current_time()
                newest = None  # the last diff that changed the book: one view per batch, as of it
                for event in events:
                    if isinstance(event, binance.DepthDiff):
                        stats.last_data_at = now
                        outcome = sync.on_diff(event)
                        if outcome is binance.Outcome.GAP:
                            stats.gaps += 1
                            stats.mark_untrusted(now)
                            newest = None
                            log.warning("sequence gap at U={} (local id was lower); resyncing", event.first_id)
                        if sync.state is binance.SyncState.NEEDS_SNAPSHOT:
                            outcome = await _sync_from_snapshot(http, cfg, sync, stats, log, recorder)
                            now = trio.current_time()  # the book is as of now, after the snapshot wait
                            if outcome is binance.Outcome.GAP:
                                stats.gaps += 1
                                continue
                        if sync.synced and sync.book.crossed:
                            stats.crossed_books += 1
                            stats.mark_untrusted(now)
                            newest = None
                            log.warning("book crossed after update {}: discarding it and resyncing", event.final_id)
                            sync.restart()
                            continue
                        if sync.synced and outcome is not binance.Outcome.IGNORED:
                            if newest is not None:
                                stats.books_superseded += 1
                            newest = event
                    elif isinstance(event, binance.ServerShutdown):
                        raise FeedError("server announced a shutdown (serverShutdown)", cause="scheduled")
                    elif isinstance(event, binance.ErrorReply):
                        log.warning("error reply {}: {}", event.code, event.msg)
                if newest is not None and sync.synced:
                    stats.mark_trusted(now)
                    publish(out, sync.book.view(binance.VENUE, cfg.symbol, cfg.view_depth, now, newest.event_ms),
                            stats)
                    if not stats.connected:
                        stats.connected = True
                        task_status.started()
        except WsClosed:
            age = trio.current_time() - connected_at
            if age >= cfg.scheduled_cut_s - SCHEDULED_CUT_TOLERANCE_S:
                raise FeedError(f"connection closed after {age:.0f} s: the scheduled cut "
                                f"({cfg.scheduled_cut_s:g} s)", cause="scheduled") from None
            raise
        finally:
            stats.connected = False
            stats.mark_untrusted(trio.current_time())
