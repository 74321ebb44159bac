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

import math
from typing import Iterable

import attrs
from sortedcontainers import SortedList

Level = tuple[float, float]  # (price, size)


@attrs.frozen
class BookView:
    """Top-of-book levels of one market at one moment. Bids descending, asks ascending."""

    venue: str
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


class DiffBook:
    """A full book kept up to date by absolute-quantity level updates (size 0 removes the level).

    Sizes live in plain dicts and only the prices are kept sorted (a SortedList per side), so a size
    change, the most common update, is one dict store (bench/run.py, floor).
    """

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices = SortedList()
        self._ask_prices = SortedList()
        self.update_id: int | None = None

    def reset(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        self._bids = {p: s for p, s in bids if s > 0}
        self._asks = {p: s for p, s in asks if s > 0}
        self._bid_prices = SortedList(self._bids)
        self._ask_prices = SortedList(self._asks)
        self.update_id = update_id

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self.update_id = None

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        for side, prices, levels in ((self._bids, self._bid_prices, bids), (self._asks, self._ask_prices, asks)):
            for price, size in levels:
                if size == 0:
                    if side.pop(price, None) is not None:  # removing an unknown level is normal
                        prices.remove(price)
                else:
                    if price not in side:
                        prices.add(price)
                    side[price] = size
        self.update_id = update_id

    @property
    def best_bid(self) -> Level | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return price, self._bids[price]

    @property
    def best_ask(self) -> Level | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return price, self._asks[price]

    @property
    def crossed(self) -> bool:
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids, asks, bid_prices = self._bids, self._asks, self._bid_prices
        return (tuple([(p, bids[p]) for p in bid_prices.islice(max(len(bid_prices) - n, 0), reverse=True)]),
                tuple([(p, asks[p]) for p in self._ask_prices.islice(0, n)]))

    def view(self, venue: str, symbol: str, n: int, received_at: float, exchange_ts_ms: int | None) -> BookView:
        bids, asks = self.top(n)
        return BookView(venue, symbol, bids, asks, received_at, exchange_ts_ms, self.update_id)
