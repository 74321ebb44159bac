"""L2 order books.

Numbers: prices and sizes are Python floats, converted once at the wire edge. Exchanges publish at
most 8 decimals and far fewer than 15 significant digits, so the decimal text -> float conversion
is exact enough to round-trip and deterministic: the same price string always gives the same float
key, which is what a diff-maintained book needs. Money arithmetic (PnL) is in floats as well and is
reported rounded; see docs/file-formats.md.

- ``BookView`` is an immutable top-N view (best first) that crosses channels between actors.
- ``DiffBook`` is the mutable full book maintained from Binance diffs; it lives inside one feed.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from typing import Iterable, Sequence

import attrs

from actors.core.vocabulary import Venue

Level = tuple[float, float]  # (price, size)


@attrs.frozen
class BookView:
    """Top-of-book levels of one market at one moment. Bids descending, asks ascending."""

    venue: Venue
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    received_at: float  # local clock (trio time) when the frame that produced it arrived
    exchange_ts_ms: int | None = None
    update_id: int | None = None

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])

    def depth(self, side: str) -> float:
        """Total visible size on one side ("bids" or "asks")."""
        return sum(size for _, size in (self.bids if side == "bids" else self.asks))


def check_level(price: float, size: float, *, allow_zero_size: bool) -> None:
    """Raise ValueError unless price is finite and > 0 and size finite and > 0 (or == 0 if allowed)."""
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price must be finite and > 0, got {price!r}")
    if not math.isfinite(size) or size < 0 or (size == 0 and not allow_zero_size):
        raise ValueError(f"size must be finite and {'>=' if allow_zero_size else '>'} 0, got {size!r}")


class _Ladder:
    """One side of a DiffBook: every level's size in a dict, and the best ``keep`` prices in a sorted list.

    ``best`` is ascending on both sides (the best bid is ``best[-1]``, the best ask ``best[0]``). It
    holds the best ``len(best)`` prices of ``sizes``, and after every update at least
    ``min(len(sizes), keep // 2)`` of them, refilled from the dict when deletions thin it out. A level
    deeper than ``best``, most of what a real diff stream touches, is one dict store or delete.
    """

    __slots__ = ("sizes", "best", "bids", "keep", "low")

    def __init__(self, bids: bool, keep: int) -> None:
        self.sizes: dict[float, float] = {}
        self.best: list[float] = []
        self.bids, self.keep, self.low = bids, keep, keep // 2

    def reset(self, levels: Iterable[Level]) -> None:
        self.sizes = {p: s for p, s in levels if s > 0}
        self._refill()

    def clear(self) -> None:
        self.sizes.clear()
        self.best.clear()

    def _refill(self) -> None:
        if self.bids:
            self.best = heapq.nlargest(self.keep, self.sizes)[::-1]
        else:
            self.best = heapq.nsmallest(self.keep, self.sizes)

    def apply(self, levels: Sequence[Level]) -> None:
        sizes, best, bids = self.sizes, self.best, self.bids
        # ``edge``: every price not in ``best`` is at or beyond it, every price in ``best`` at or inside it
        near: Sequence[Level]
        deep: Sequence[Level]
        if len(best) == len(sizes):
            edge, near, deep = (-math.inf if bids else math.inf), levels, ()
        else:
            edge = best[0] if bids else best[-1]
            near = [lv for lv in levels if lv[0] >= edge] if bids else [lv for lv in levels if lv[0] <= edge]
            deep = (
                ()
                if len(near) == len(levels)
                else ([lv for lv in levels if lv[0] < edge] if bids else [lv for lv in levels if lv[0] > edge])
            )
        for price, size in near:
            if size == 0:
                if sizes.pop(price, None) is not None:
                    i = bisect_left(best, price)
                    if i < len(best) and best[i] == price:  # it may have been pushed out of ``best`` above
                        del best[i]
                continue
            if price not in sizes and (price > edge if bids else price < edge):
                insort(best, price)
                if len(best) > self.keep:
                    edge = best.pop(0) if bids else best.pop()
            sizes[price] = size
        if deep:  # beyond ``best``: dict work only
            sizes.update(deep)
            for price, size in deep:
                if size == 0 and sizes.get(price) == 0:
                    del sizes[price]
        if len(best) < self.low and len(sizes) > len(best):
            self._refill()

    def first(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` levels, best first."""
        sizes, best = self.sizes, self.best
        if n <= len(best) or len(best) == len(sizes):
            prices = best[: -n - 1 : -1] if self.bids else best[:n]
        else:  # deeper than what is kept sorted (a REST answer): sort the dict
            prices = heapq.nlargest(n, sizes) if self.bids else heapq.nsmallest(n, sizes)
        return tuple(zip(prices, map(sizes.__getitem__, prices)))


class DiffBook:
    """A full book kept up to date by absolute-quantity level updates (size 0 removes the level).

    Each side keeps every size in a dict and only its best ``keep_sorted`` prices sorted: a real diff
    stream mostly touches levels far from the top (the recorded BTCUSDT diffs insert and delete about
    28 deep levels each), and those cost one dict operation (docs/performance.md, floor). Views
    deeper than ``keep_sorted // 2`` levels are still exact, sorted from the dict on demand.
    """

    def __init__(self, keep_sorted: int = 128) -> None:
        self._bids = _Ladder(True, keep_sorted)
        self._asks = _Ladder(False, keep_sorted)
        self.update_id: int | None = None

    def reset(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        self._bids.reset(bids)
        self._asks.reset(asks)
        self.update_id = update_id

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.update_id = None

    def apply(self, bids: Sequence[Level], asks: Sequence[Level], update_id: int) -> None:
        if bids:
            self._bids.apply(bids)
        if asks:
            self._asks.apply(asks)
        self.update_id = update_id

    @property
    def best_bid(self) -> Level | None:
        side = self._bids
        return (side.best[-1], side.sizes[side.best[-1]]) if side.best else None

    @property
    def best_ask(self) -> Level | None:
        side = self._asks
        return (side.best[0], side.sizes[side.best[0]]) if side.best else None

    @property
    def crossed(self) -> bool:
        bids, asks = self._bids.best, self._asks.best
        return bool(bids and asks and bids[-1] >= asks[0])

    def __len__(self) -> int:
        return len(self._bids.sizes) + len(self._asks.sizes)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self._bids.first(n), self._asks.first(n)

    def view(self, venue: Venue, symbol: str, n: int, received_at: float, exchange_ts_ms: int | None) -> BookView:
        return BookView(
            venue, symbol, self._bids.first(n), self._asks.first(n), received_at, exchange_ts_ms, self.update_id
        )
