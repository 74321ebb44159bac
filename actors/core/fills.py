"""Fill simulation against a live L2 book.

- ``walk`` takes a quantity from the levels at or better than a limit price. ``available_volume``
  is always the visible depth at or better than the limit in the book the order meets (after our
  own earlier fills, see below), never a fixed fallback.
- ``LiquidityMemory``: size our own fills took from a level is not available again until the book
  shows that level refreshed (its displayed size changed, or it left the visible book).
- ``Fees``: taker fees per venue in the currency the venue charges: Upbit KRW markets in KRW on
  both sides; Binance spot in the asset received (BTC on a BUY, USDT on a SELL). A BUY that must deliver
  a given BTC net of a BTC fee asks for more (``Fees.order_for``).
- ``Lots``: the smallest order each venue takes; a remainder below it cannot be traded there (dust).
- Fill models: ``SimpleFillModel`` fills what the depth allows; ``CalibratedFillModel`` asks for the
  zone's calibrated fill ratio of the order (exactly, or sampled from a Beta distribution with the
  zone's mean and variance) and is then capped by the depth.
"""

from __future__ import annotations

import random
from typing import Protocol

import attrs

from actors.core.book import Level
from actors.core.calibration import Calibration
from actors.core.rules import non_negative, positive
from actors.core.vocabulary import Currency, Side, Venue, Zone

BUY, SELL = Side.BUY, Side.SELL
_PRICE_TOLERANCE = 1e-12
_SIZE_EPSILON = 1e-12


@attrs.frozen
class Fill:
    side: Side
    order_qty: float
    filled_qty: float
    available_volume: float
    limit_price: float
    best_price: float
    avg_price: float | None  # None when nothing filled
    slippage_bps: float  # average price vs best price, positive = worse for us; 0 when unfilled
    levels_used: int
    takes: tuple[Level, ...] = ()  # (price, qty) taken per level

    @property
    def fill_ratio(self) -> float:
        return self.filled_qty / self.order_qty if self.order_qty > 0 else 0.0


def limit_price(best: float, side: Side, max_slippage_bps: float) -> float:
    factor = max_slippage_bps / 1e4
    return best * (1 + factor) if side == BUY else best * (1 - factor)


def walk(levels: tuple[Level, ...], side: Side, qty: float, limit: float) -> Fill:
    """Take ``qty`` from ``levels`` (best first) without crossing ``limit``."""
    if not levels:
        raise ValueError("cannot fill against an empty side of the book")
    if qty < 0:
        raise ValueError(f"order quantity must be >= 0, got {qty!r}")
    best = levels[0][0]
    # a limit computed as best * (1 + x) can land a hair inside a level that is exactly at it
    bound = limit * (1 + _PRICE_TOLERANCE) if side == BUY else limit * (1 - _PRICE_TOLERANCE)
    available = filled = cost = 0.0
    takes = []
    for price, size in levels:
        if (side == BUY and price > bound) or (side == SELL and price < bound):
            break
        available += size
        take = min(size, qty - filled)
        if take > _SIZE_EPSILON:
            cost += take * price
            filled += take
            takes.append((price, take))
    if filled <= 0:
        return Fill(side, qty, 0.0, available, limit, best, None, 0.0, 0)
    prices = [p for p, _ in takes]
    avg = min(max(cost / filled, min(prices)), max(prices))  # clamp float noise into the range taken
    slip = (avg - best) / best * 1e4 if side == BUY else (best - avg) / best * 1e4
    return Fill(side, qty, filled, available, limit, best, avg, slip, len(takes), tuple(takes))


class LiquidityMemory:
    """What our fills took from each displayed level, per (venue, side taken from)."""

    def __init__(self) -> None:
        self._taken: dict[tuple[str, str], dict[float, tuple[float, float]]] = {}

    def effective(self, venue: Venue, side: Side, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        """``levels`` minus what we took and the book has not refreshed yet."""
        memory = self._taken.get((venue, side))
        if not memory:
            return levels
        shown = dict(levels)
        for price in list(memory):
            if shown.get(price) != memory[price][0]:
                # refreshed: the level changed, or left the visible book (when it comes back into view
                # it is taken as new; remembering levels out of view would grow without bound)
                del memory[price]
        out = []
        for price, size in levels:
            entry = memory.get(price)
            left = size - entry[1] if entry is not None else size
            if left > _SIZE_EPSILON:
                out.append((price, left))
        return tuple(out)

    def record(self, venue: Venue, side: Side, levels: tuple[Level, ...], fill: Fill) -> None:
        memory = self._taken.setdefault((venue, side), {})
        shown = dict(levels)
        for price, qty in fill.takes:
            displayed = shown[price]
            prev = memory.get(price)
            memory[price] = (displayed, (prev[1] if prev is not None else 0.0) + qty)

    def __len__(self) -> int:
        return sum(len(m) for m in self._taken.values())


@attrs.frozen
class Fees:
    """Taker fees per venue (``[fees]`` in the config is this type)."""

    upbit_bps: float = attrs.field(default=5.0, validator=non_negative)
    binance_bps: float = attrs.field(default=10.0, validator=non_negative)

    def charge(self, venue: Venue, side: Side, qty: float, price: float) -> tuple[float, Currency]:
        """(fee amount, currency) of a fill of ``qty`` BTC at ``price``: in the venue's quote currency, but a
        Binance BUY's, which is taken from the BTC it buys."""
        rate = self.rate_bps(venue) / 1e4
        if venue == Venue.BINANCE and side == BUY:
            return qty * rate, Currency.BTC
        return qty * price * rate, Venue(venue).quote

    def rate_bps(self, venue: Venue) -> float:
        return self.upbit_bps if venue == Venue.UPBIT else self.binance_bps

    def order_for(self, venue: Venue, side: Side, net_btc: float) -> float:
        """The order quantity whose fill changes the BTC held by ``net_btc`` (> 0) once the fee is paid: more
        than ``net_btc`` for a Binance BUY, whose fee is taken from the BTC received; ``net_btc`` otherwise."""
        if venue == Venue.BINANCE and side == BUY:
            return net_btc / (1 - self.binance_bps / 1e4)
        return net_btc


@attrs.frozen
class Lots:
    """The smallest order each venue takes (``[lots]`` in the config is this type): its quantity step and its
    minimum order value (Upbit KRW markets: 5,000 KRW, 8 decimals of BTC; Binance BTCUSDT: LOT_SIZE 0.00001
    BTC, NOTIONAL 5 USDT). Orders are not rounded to the step (the simulated venues take any size); a
    remainder below a venue's minimum order cannot be traded there: it is dust, kept and reported."""

    upbit_btc: float = attrs.field(default=1e-8, validator=positive)
    upbit_min_krw: float = attrs.field(default=5000.0, validator=non_negative)
    binance_btc: float = attrs.field(default=1e-5, validator=positive)
    binance_min_usdt: float = attrs.field(default=5.0, validator=non_negative)

    def min_order_btc(self, venue: Venue, price: float) -> float:
        """The smallest quantity an order on ``venue`` may have at ``price`` (its quote per BTC)."""
        lot, value = (
            (self.upbit_btc, self.upbit_min_krw) if venue == Venue.UPBIT else (self.binance_btc, self.binance_min_usdt)
        )
        return max(lot, value / price) if price > 0 else lot

    def is_dust(self, venue: Venue, btc: float, price: float) -> bool:
        """Whether ``btc`` held on ``venue`` is too small to trade there (0 is dust too)."""
        return abs(btc) < self.min_order_btc(venue, price)


class FillModel(Protocol):
    """How much of an order fills against the levels it meets (``SimpleFillModel``, ``CalibratedFillModel``)."""

    @property
    def name(self) -> str: ...

    def fill(self, levels: tuple[Level, ...], side: Side, qty: float, limit: float, zone: Zone) -> Fill: ...

    def expected_ratio(self, side: Side, zone: Zone) -> float:
        """The share of an order the model expects to fill where the depth allows it all."""
        ...


@attrs.frozen
class SimpleFillModel:
    """Fills whatever the visible depth allows, up to the order quantity, within the limit."""

    name: str = "simple"

    def expected_ratio(self, side: Side, zone: Zone) -> float:
        return 1.0

    def fill(self, levels: tuple[Level, ...], side: Side, qty: float, limit: float, zone: Zone) -> Fill:
        return walk(levels, side, qty, limit)


@attrs.define
class CalibratedFillModel:
    """Fills the zone's calibrated share of the order (capped by the depth)."""

    calibration: Calibration
    stochastic: bool = False
    rng: random.Random = attrs.field(factory=lambda: random.Random(0))
    name: str = "calibrated"

    def ratio(self, side: Side, zone: Zone) -> float:
        stats = self.calibration.lookup(zone, side)
        return stats.sample(self.rng) if self.stochastic else stats.mean

    def expected_ratio(self, side: Side, zone: Zone) -> float:
        """The zone's calibrated mean (in the stochastic mode too: the mean of what it samples)."""
        return self.calibration.lookup(zone, side).mean

    def fill(self, levels: tuple[Level, ...], side: Side, qty: float, limit: float, zone: Zone) -> Fill:
        fill = walk(levels, side, qty * self.ratio(side, zone), limit)
        return attrs.evolve(fill, order_qty=qty)
