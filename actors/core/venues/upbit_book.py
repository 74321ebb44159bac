"""The rules around Upbit's order books for one connection: which book of a batch is published, when the
feed is ready, when it has gone stale.

Pure and synchronous, beside ``binance_book.py``: the feed shell (``actors/feed.py``) reads the frames and
does the I/O around a ``BookBatcher`` (publishes its views, reports readiness, raises on an error frame or a
stale feed); the batched replay (``actors/batch/``) calls the same code with frames it holds in memory.

- every Upbit order book is a full state, so of the books of one code in a batch only the last is
  published; the others are counted (``books_superseded``), as are the zero units Upbit pads thin books
  with (``padded_levels``);
- the feed is ready once it has published a book of every subscribed code (``stats.connected``);
- a code stays fresh while its books arrive: the feed is stale ``stale_after_s`` after the oldest code's
  last book (the subscription time until its first), which names the code and whether it ever had one;
- an error frame ends the connection once the batch's books are published (the first error of a batch).
"""

from __future__ import annotations

import attrs

from actors.core.book import BookView
from actors.core.kpi import FeedStats
from actors.core.venues.upbit import VENUE, ErrorFrame, Event, Orderbook


@attrs.frozen
class UpbitBatch:
    """What the shell does after one batch of decoded events."""

    views: tuple[BookView, ...] = ()  # publish these, in order (one per code: its newest book)
    ready: bool = False  # every subscribed code has had its first book with this batch: report readiness
    error: ErrorFrame | None = None  # the exchange sent an error frame: end the connection after publishing


class BookBatcher:
    """One connection's books: ``on_batch`` for each batch of events, ``stale_at`` for the feed's deadline."""

    def __init__(self, codes: tuple[str, ...], stats: FeedStats, subscribed_at: float) -> None:
        self.codes, self._stats = codes, stats
        self._last_book = dict.fromkeys(codes, subscribed_at)  # per code; the subscription time until its first
        self._seen: set[str] = set()

    def on_batch(self, events: list[Event], now: float) -> UpbitBatch:
        stats = self._stats
        newest: dict[str, Orderbook] = {}  # each Upbit book is a full state: the last one wins
        error = None
        for event in events:
            if isinstance(event, Orderbook):
                stats.padded_levels += event.padded_levels
                if event.code in newest:
                    stats.books_superseded += 1
                newest[event.code] = event
            elif isinstance(event, ErrorFrame):
                error = error or event
        if not newest:
            return UpbitBatch(error=error)
        stats.last_data_at = now
        stats.mark_trusted(now)
        views, ready = [], False
        for event in newest.values():
            if event.code in self._last_book:
                self._last_book[event.code] = now
            views.append(BookView(VENUE, event.code, event.bids, event.asks, now, event.timestamp_ms))
            if not stats.connected:
                self._seen.add(event.code)
                if self._seen.issuperset(self.codes):
                    stats.connected = ready = True
        return UpbitBatch(tuple(views), ready, error)

    def stale_at(self, stale_after_s: float) -> float:
        """When the feed is stale if no book of its oldest code arrives before."""
        return min(self._last_book.values()) + stale_after_s

    def stale_reason(self, stale_after_s: float) -> str:
        """Why the feed is stale, naming the code (and, for one that never had a book, what to check)."""
        code = min(self.codes, key=self._last_book.__getitem__)
        if code not in self._seen:
            return (
                f"no order book for {code} within {stale_after_s:g} s of subscribing "
                f"(is {code} a market listed on the exchange?)"
            )
        return f"no order book for {code} for {stale_after_s:g} s"
