"""Which path a replay takes, and the aggregator's rule as the batched path applies it.

``why_actors`` says why a session must run on the actor path (None: the batched one, ``actors.session.batch``,
applies); ``why_not_followed`` reads a recording's pre-scan for what only the actors follow (a feed that would
reconnect). ``Coalescer`` is the aggregator's coalescing window without its task.
"""

from __future__ import annotations

from typing import Iterable

import trio

from actors.config import Config
from actors.core.book import BookView
from actors.core.market import MarketState
from actors.core.vocabulary import FeedFailure, Venue
from actors.session.tree import REPLAY_TAIL_S
from actors.sim.recordings import RecordingError, Scan, scan
from actors.sim.replay import ReplayMarket


def why_actors(cfg: Config, market: ReplayMarket | None = None) -> str | None:
    """Why a session must run on the actor path (None: the batched path applies). ``market``: the replay's,
    whose recording is scanned for what only the actors follow (``why_not_followed``)."""
    if cfg.session.market != "replay" or not cfg.replay.as_fast_as_possible or not cfg.replay.direct(cfg.sim):
        return "not a direct replay on the virtual clock"
    if not cfg.replay.batched:
        return "replay.batched = false"
    if cfg.chaos.kill_every_s > 0:
        return "chaos kills need the actors"
    if cfg.session.record:
        return "--record writes the frames as the feeds read them"
    if cfg.aggregator.coalesce_ms <= 0:
        return "aggregator.coalesce_ms = 0: the actor path's views then depend on Trio's scheduling"
    if market is None:
        return None
    try:
        found = scan(market.recording)
    except RecordingError as exc:  # the actors replay it up to the bad data and end there with its cause
        return f"the pre-scan stopped at bad data ({exc}): the actors replay up to it"
    return why_not_followed(cfg, market.recorded, found)


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
