"""Fill simulation against a live L2 book.

``available_volume`` is always the visible depth at or better than the order's limit price in the
book the order meets, never a fixed fallback (the earlier system's failure).
"""

from __future__ import annotations

import attrs

from actors.core.book import BookView, Level

BUY, SELL = "BUY", "SELL"
_PRICE_TOLERANCE = 1e-12


@attrs.frozen
class Fill:
    side: str
    order_qty: float
    filled_qty: float
    available_volume: float
    limit_price: float
    best_price: float
    avg_price: float | None  # None when nothing filled
    slippage_bps: float      # average price vs best price, positive = worse for us; 0 when unfilled
    levels_used: int

    @property
    def fill_ratio(self) -> float:
        return self.filled_qty / self.order_qty if self.order_qty > 0 else 0.0


def limit_price(best: float, side: str, max_slippage_bps: float) -> float:
    factor = max_slippage_bps / 1e4
    return best * (1 + factor) if side == BUY else best * (1 - factor)


def walk(levels: tuple[Level, ...], side: str, qty: float, limit: float) -> Fill:
    """Take ``qty`` from ``levels`` (best first) without crossing ``limit``."""
    if not levels:
        raise ValueError("cannot fill against an empty side of the book")
    if qty <= 0:
        raise ValueError(f"order quantity must be > 0, got {qty!r}")
    best = levels[0][0]
    # a limit computed as best * (1 + x) can land a hair inside a level that is exactly at it
    bound = limit * (1 + _PRICE_TOLERANCE) if side == BUY else limit * (1 - _PRICE_TOLERANCE)
    available = filled = cost = 0.0
    used = 0
    for price, size in levels:
        if (side == BUY and price > bound) or (side == SELL and price < bound):
            break
        available += size
        take = min(size, qty - filled)
        if take > 0:
            cost += take * price
            filled += take
            used += 1
    if filled <= 0:
        return Fill(side, qty, 0.0, available, limit, best, None, 0.0, 0)
    avg = min(max(cost / filled, levels[0][0] if side == BUY else levels[used - 1][0]),
              levels[used - 1][0] if side == BUY else levels[0][0])  # clamp float noise into the range taken
    slip = (avg - best) / best * 1e4 if side == BUY else (best - avg) / best * 1e4
    return Fill(side, qty, filled, available, limit, best, avg, slip, used)


@attrs.frozen
class SimpleFillModel:
    """Fills whatever the visible depth allows, up to the order quantity, within a slippage bound."""

    max_slippage_bps: float = 20.0
    name: str = "simple"

    def fill(self, book: BookView, side: str, qty: float) -> Fill:
        levels = book.asks if side == BUY else book.bids
        if not levels:
            raise ValueError(f"{book.venue} {book.symbol} has no {'asks' if side == BUY else 'bids'}")
        return walk(levels, side, qty, limit_price(levels[0][0], side, self.max_slippage_bps))
