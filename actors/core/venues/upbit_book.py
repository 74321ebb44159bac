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

Many codes (issue 26: every KRW coin on one connection). A thin coin can be quiet for minutes, and
reconnecting the feed for it would cost every other coin its books. So a batcher given ``watched`` codes
reconnects only for those (the FX code: every pair's view needs it) and for no book at all for
``stale_after_s``; any other code without a book for ``stale_after_s`` goes *quiet*: counted
(``FeedStats.per_symbol[code].quiet``), untrusted from then, and withdrawn downstream by the shell (an empty
view: no decision uses it) until its next book. The feed is then ready once every watched code has had a
book and every other code has had one or gone quiet. Without ``watched`` (one pair), every code is watched:
today's behaviour.
"""

from __future__ import annotations

import math

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


@attrs.frozen
class UpbitQuiet:
    """Codes that went quiet (many codes): withdraw them downstream; the feed stays connected."""

    codes: tuple[str, ...] = ()
    ready: bool = False  # the last codes the feed was waiting for went quiet: report readiness


class BookBatcher:
    """One connection's books: ``on_batch`` for each batch of events, ``stale_at`` for the feed's deadline."""

    def __init__(
        self, codes: tuple[str, ...], stats: FeedStats, subscribed_at: float, watched: tuple[str, ...] | None = None
    ) -> None:
        self.codes, self._stats = codes, stats
        self._last_book = dict.fromkeys(codes, subscribed_at)  # per code; the subscription time until its first
        self._seen: set[str] = set()
        self._many = watched is not None
        self.watched = codes if watched is None else tuple(c for c in codes if c in watched)
        self._quiet: set[str] = set()  # codes withdrawn for want of books (many codes only)
        self._last_any = subscribed_at  # the last book of any code
        if self._many:
            stats.track(codes, subscribed_at)

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
        stats.last_data_at = self._last_any = now
        stats.mark_trusted(now)
        views, ready = [], False
        for event in newest.values():
            if event.code in self._last_book:
                self._last_book[event.code] = now
            if self._many:
                self._quiet.discard(event.code)
                stats.book_trusted(event.code, now)
            views.append(BookView(VENUE, event.code, event.bids, event.asks, now, event.timestamp_ms))
            if not stats.connected:
                self._seen.add(event.code)
                ready = self._ready()
        return UpbitBatch(tuple(views), ready, error)

    def _ready(self) -> bool:
        """Every code had a book (many codes: every watched code did, the others did or went quiet)."""
        if self._stats.connected or not self._seen.issuperset(self.watched):
            return False
        if not (self._seen | self._quiet).issuperset(self.codes):
            return False
        self._stats.connected = True
        return True

    def quiet_at(self, stale_after_s: float) -> float:
        """When the next code goes quiet if no book of it arrives before (inf: none can; one pair)."""
        if not self._many:
            return math.inf
        loud = [at for code, at in self._last_book.items() if code not in self._quiet and code not in self.watched]
        return min(loud, default=math.inf) + stale_after_s

    def quiet(self, now: float, stale_after_s: float) -> UpbitQuiet:
        """The codes that went quiet by ``now`` (counted, untrusted from now: the shell withdraws them)."""
        gone = tuple(
            code
            for code, at in self._last_book.items()
            if code not in self._quiet and code not in self.watched and at + stale_after_s <= now
        )
        for code in gone:
            self._quiet.add(code)
            self._stats.per_symbol[code].quiet += 1
            self._stats.book_untrusted(code, now)
        return UpbitQuiet(gone, bool(gone) and self._ready())

    def stale_at(self, stale_after_s: float) -> float:
        """When the feed is stale if no book of its oldest watched code (nor of any code) arrives before."""
        oldest = min((self._last_book[c] for c in self.watched), default=math.inf)
        return min(oldest, self._last_any) + stale_after_s

    def stale_reason(self, stale_after_s: float) -> str:
        """Why the feed is stale, naming the code (and, for one that never had a book, what to check)."""
        if not self.watched or self._last_any < min(self._last_book[c] for c in self.watched):
            return f"no order book of any of its {len(self.codes)} codes for {stale_after_s:g} s"
        code = min(self.watched, key=self._last_book.__getitem__)
        if code not in self._seen:
            return (
                f"no order book for {code} within {stale_after_s:g} s of subscribing "
                f"(is {code} a market listed on the exchange?)"
            )
        return f"no order book for {code} for {stale_after_s:g} s"
