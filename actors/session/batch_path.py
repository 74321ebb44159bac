"""Which path a session takes (a direct replay or a simulated session on the virtual clock), and the aggregator's
rule as the batched path applies it.

``why_actors`` says why a session must run on the actor path (None: the batched one, ``actors.session.batch`` for a
replay, ``actors.session.batch_sim`` for the simulated market, applies; ``why_sim_actors`` for what the simulated
market's servers do that the batched path does not); ``why_not_followed`` reads a recording's pre-scan for what
only the actors follow (a feed that would reconnect). ``Coalescer`` is the aggregator's coalescing window without
its task; ``synthesised_book`` and ``synthesised_diff`` hand the model's books (the venue a recording lacks, or the
whole simulated market) to the keepers as the events their frames decode to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import trio

from actors.config import Config, is_multi_pair
from actors.core.book import BookView
from actors.core.kpi import FeedStats
from actors.core.market import MarketState
from actors.core.venues import binance, upbit
from actors.core.venues.binance_weight import depth_weight
from actors.core.vocabulary import FeedFailure, Venue
from actors.feed import BAD_FRAME_WINDOW_S
from actors.session.tree import REPLAY_TAIL_S
from actors.sim.binance_server import diff_payload
from actors.sim.exchange import MarketHolder
from actors.sim.model import UPBIT_BTC, UPBIT_USDT, BinanceDiff
from actors.sim.recordings import Recorded, RecordingError, Scan, scan
from actors.sim.replay import ReplayMarket
from actors.sim.upbit_server import UP_INTERVAL_S, Subscription, orderbook_frame

if TYPE_CHECKING:
    from loguru import Logger

# bounds of a synthesised book's frame: its head, an Upbit slot of four numbers in Java's spelling or at 8
# decimals, a Binance level of two 8-decimal strings; within max_message_bytes by these bounds the book goes to
# the keepers as the event its frame decodes to (upbit.written_book, binance.written_diff), never encoded
WRITTEN_HEAD_BYTES, WRITTEN_UNIT_BYTES, WRITTEN_LEVEL_BYTES = 512, 256, 128


def why_actors(cfg: Config, market: ReplayMarket | None = None, *, virtual_clock: bool = False) -> str | None:
    """Why a session must run on the actor path (None: the batched path applies). ``market``: the replay's,
    whose recording is scanned for what only the actors follow (``why_not_followed``); ``virtual_clock``: the
    session runs on the virtual clock (what a simulated session needs, ``fast_forward.on_virtual_clock``)."""
    if cfg.session.market == "sim":
        if is_multi_pair(cfg):
            return "a market of many pairs ([market] pairs) runs on the actors"
        if not virtual_clock:
            return "not on the virtual clock"
        if not cfg.sim.batched:
            return "sim.batched = false"
    elif cfg.session.market != "replay" or not cfg.replay.as_fast_as_possible or not cfg.replay.direct(cfg.sim):
        return "not a direct replay on the virtual clock"
    elif not cfg.replay.batched:
        return "replay.batched = false"
    if cfg.chaos.kill_every_s > 0:
        return "chaos kills need the actors"
    if cfg.session.record:
        return "--record writes the frames as the feeds read them"
    if cfg.aggregator.coalesce_ms <= 0:
        return "aggregator.coalesce_ms = 0: the actor path's views then depend on Trio's scheduling"
    if cfg.session.market == "sim":
        return why_sim_actors(cfg)
    if market is None:
        return None
    try:
        found = scan(market.recording)
    except RecordingError as exc:  # the actors replay it up to the bad data and end there with its cause
        return f"the pre-scan stopped at bad data ({exc}): the actors replay up to it"
    return why_not_followed(cfg, market.recorded, found)


def why_sim_actors(cfg: Config) -> str | None:
    """Why a simulated session must run on the exchange's servers and the actors: what the batched path does not
    serve (faults, the many-coin market, an overlapping diff after a snapshot, codes the market does not have),
    and limits that would make a feed reconnect or be refused (a step as long as a feed's stale_after_s, the
    Upbit server's idle timeout, its connection cut, a snapshot over the REST weight limit)."""
    sim, feeds, s = cfg.sim, cfg.feeds, cfg.session
    step_s = sim.step_ms / 1000
    if sim.faults or sim.fault_rate_per_min > 0:
        return "[sim] faults are injected by the exchange's servers"
    if sim.coins > 0:
        return "sim.coins > 0: the many-coin market is served by the exchange's servers"
    if sim.binance_overlap_after_snapshot:
        return "sim.binance_overlap_after_snapshot: the Binance server's overlapping diff after a snapshot"
    missing = [c for c in (feeds.upbit.market, feeds.upbit.fx_market) if c not in (UPBIT_BTC, UPBIT_USDT)]
    if missing:
        return f"the simulated market has no Upbit {', '.join(missing)}: the Upbit feed would never be ready"
    if step_s >= min(feeds.upbit.stale_after_s, feeds.binance.stale_after_s):
        return "sim.step_ms is as long as a feed's stale_after_s: the feeds would reconnect"
    if sim.upbit_idle_timeout_s <= min(step_s, UP_INTERVAL_S, feeds.upbit.ping_interval_s):
        return "sim.upbit_idle_timeout_s: the Upbit server would drop the connection"
    if s.startup_timeout_s + s.duration_s >= sim.max_connection_s:
        return "the session would outlast sim.max_connection_s: the exchange cuts its connections"
    weight = depth_weight(feeds.binance.snapshot_limit)
    if sim.binance_rest_weight_per_min and weight > sim.binance_rest_weight_per_min:
        return "a depth snapshot weighs more than sim.binance_rest_weight_per_min: the server refuses it"
    return None


def why_not_followed(cfg: Config, recorded: Iterable[str], found: Scan) -> str | None:
    """Why the actors must replay this recording: a recorded book silent for a feed's ``stale_after_s`` (the
    feed reconnects there: the session's last REPLAY_TAIL_S counts after the recording's end), or a frame
    over its ``max_message_bytes`` (the connection is closed). A reconnect is the feed's supervisor's; the
    batched path has none, so such a recording is replayed by the actors, with the same results."""
    for code in recorded:
        venue = Venue.BINANCE if code == cfg.feeds.binance.symbol else Venue.UPBIT
        feed = cfg.feeds.binance if venue == Venue.BINANCE else cfg.feeds.upbit
        book = (venue, code)
        silent = max(found.silence_s.get(book, 0.0), found.trailing_s.get(book, 0.0) + REPLAY_TAIL_S)
        if silent >= feed.stale_after_s:
            return (
                f"the recording has no {venue} {code} frame for {silent:.1f} s, over feeds.{venue}.stale_after_s = "
                f"{feed.stale_after_s:g}: the feed reconnects there, as only the actors do"
            )
        if found.longest.get(book, 0) > feed.max_message_bytes:
            return (
                f"the recording has a {venue} {code} frame of {found.longest[book]:,} bytes, over "
                f"feeds.{venue}.max_message_bytes: the feed reconnects there, as only the actors do"
            )
    return None


class BatchUnsupported(FeedFailure):
    """Something only the actor path handles happened (a feed would reconnect)."""


class Coalescer:
    """The aggregator's rule without its task: the first book after a quiet spell is applied at once and
    opens a window of ``coalesce_s``; the books published meanwhile are applied at its end, where one market
    view is built."""

    def __init__(self, state: MarketState, coalesce_s: float) -> None:
        self.state, self.coalesce_s = state, coalesce_s
        self.ends_at: float | None = None
        self._waiting: list[BookView] = []

    def offer(self, book: BookView, now: float) -> bool:
        """True if ``book`` opened a window."""
        if self.ends_at is not None:
            self._waiting.append(book)
            return False
        self.state.update(book)
        self.ends_at = now + self.coalesce_s
        return True

    def close(self) -> float:
        """The window's end: apply what waited; the view's time."""
        at = self.ends_at
        assert at is not None
        for book in self._waiting:
            self.state.update(book)
        self._waiting.clear()
        self.ends_at = None
        return at


async def cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once ``event`` is set (a task of the nursery that waits for something else)."""
    await event.wait()
    scope.cancel()


def synthesised_book(
    holder: MarketHolder, sub: Subscription, max_bytes: int, code: str, units: int
) -> bytes | str | upbit.Orderbook:
    """The model's book of ``code`` (in ``holder``'s market: a replay's, or the simulated one) as the Upbit feed
    decodes it: the event itself where the frame the exchange would write is one ``upbit.decode`` reads on its
    fast path and fits ``max_bytes`` (every slot at most WRITTEN_UNIT_BYTES), else the frame."""
    market = holder.market
    if sub.fmt == "DEFAULT" and WRITTEN_HEAD_BYTES + units * WRITTEN_UNIT_BYTES <= max_bytes:
        bids, asks = market.books[code].top(units)
        event = upbit.written_book(code, market.time_ms, bids, asks, units)
        if event is not None:
            return event
    return orderbook_frame(holder, code, units, False, sub.fmt)


def synthesised_diff(symbol: str, time_ms: int, max_bytes: int, diff: BinanceDiff) -> bytes | str | binance.DepthDiff:
    """The model's diff of ``symbol`` at ``time_ms`` as the Binance feed decodes it (the combined stream's frame):
    the event itself where the frame fits ``max_bytes`` and ``binance.decode`` reads it on its fast path, else
    the frame."""
    levels = len(diff.bids) + len(diff.asks)
    if WRITTEN_HEAD_BYTES + levels * WRITTEN_LEVEL_BYTES <= max_bytes:
        event = binance.written_diff(symbol, time_ms, diff.first_id, diff.final_id, diff.bids, diff.asks)
        if event is not None:
            return event
    payload = diff_payload(symbol, time_ms, diff)
    return f'{{"stream":"{symbol.lower()}@depth@100ms","data":{payload}}}'


def decode_binance(frame: bytes | str) -> list[binance.Event]:
    return [binance.decode(frame)]


def recorded_event(recorded: Recorded) -> Callable[[Any], list[Any]]:
    """A recorded frame the replayed market decoded already: the same event, not decoded twice."""
    return lambda _frame: [recorded.event]


def decoded(
    stats: FeedStats, frame: bytes | str, decode: Callable[[Any], list[Any]], limit: int, max_bad: int, log: Logger
) -> list[Any]:
    """``_Reader._decode_counted`` without the socket: one frame's events ([] for a bad frame); a frame over
    ``limit`` bytes, or more than ``max_bad`` bad frames a minute, is what only the actors handle."""
    if len(frame) > limit:
        raise BatchUnsupported(f"feed:{stats.venue} would reconnect: a frame over max_message_bytes")
    stats.messages += 1
    try:
        return decode(frame)
    except Exception as exc:
        recent = stats.bad_frame(trio.current_time(), BAD_FRAME_WINDOW_S)
        log.warning(
            "bad frame #{} skipped: {}: {} (first bytes: {!r})",
            stats.bad_frames,
            type(exc).__name__,
            str(exc)[:200],
            frame[:120],
        )
        if recent > max_bad:
            raise BatchUnsupported(f"feed:{stats.venue} would reconnect: {recent} bad frames") from None
        return []
