"""Premium-deviation strategy: trade the executable premium's deviation from the moving baseline.

- The baseline is a time-aware exponential moving average of the mid premium (half-life in s).
- The executable premium of a direction is computed on the prices the order size would really get
  (VWAP through each book) with both venues' taker fees included:
  selling on the KRW venue and buying on the USDT venue ("sell_krw") gets
  ``krw_bid_vwap * (1 - fee_krw) / fx / (usdt_ask_vwap * (1 + fee_usdt)) - 1``;
  "buy_krw" pays ``krw_ask_vwap * (1 + fee_krw) / fx / (usdt_bid_vwap * (1 - fee_usdt)) - 1``.
- Open "sell_krw" when its executable premium exceeds the baseline by ``entry_bps``; open "buy_krw"
  when its executable premium is ``entry_bps`` below the baseline.
- Close when the executable premium of the closing direction has moved ``tp_bps`` in the trade's
  favour since entry ("take_profit"), or after ``max_hold_s`` ("max_hold"). Fees of both
  round trips are inside these numbers, so a take-profit is a profit after fees.
- When the fill model expects the two entry legs to fill different shares (the calibrated model: a zone's
  BUY ratio of 0.26 against a SELL ratio of 1.0), the difference is hedged back at a cost: the entry's
  executable premium is net of it (``hedge_cost_bps``), and so is the take-profit measured from it.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import attrs

from actors.core.book import BookView, Level
from actors.core.rules import Rule, between, non_negative, positive
from actors.core.vocabulary import Direction, Side, Sizing, Zone

ZONE_PAIRS = Rule(
    lambda v: all(len(z) == 2 and z[0] > 0 and z[1] > 0 for z in v),
    "a list of [entry_bps, tp_bps] pairs of numbers > 0",
)

SELL_KRW, BUY_KRW = Direction.SELL_KRW, Direction.BUY_KRW


@attrs.frozen
class StrategyParams:
    """What the strategy decides with. ``[strategy]`` in the config is this type plus the execution
    settings (``actors.config.StrategyConfig``): one set of defaults and rules."""

    entry_bps: float = attrs.field(validator=positive)
    tp_bps: float = attrs.field(validator=positive)
    order_qty_btc: float = attrs.field(validator=positive)
    baseline_halflife_s: float = attrs.field(default=30.0, validator=positive)
    warmup_s: float = attrs.field(default=5.0, validator=non_negative)
    max_hold_s: float = attrs.field(default=60.0, validator=positive)
    max_book_age_s: float = attrs.field(default=5.0, validator=positive)
    max_slippage_bps: float = attrs.field(default=20.0, validator=non_negative)
    # (entry_bps, tp_bps) cycled per trade; () = the one above
    zones: tuple[tuple[float, ...], ...] = attrs.field(default=(), validator=ZONE_PAIRS)
    # "fixed": every trade is order_qty_btc; "depth": the largest size up to max_order_qty_btc whose executable
    # premium, both books walked together, still clears the entry threshold (actors.core.sizing)
    sizing: Sizing = attrs.field(default=Sizing.FIXED, converter=Sizing)
    max_order_qty_btc: float = attrs.field(default=1.0, validator=positive)
    min_order_qty_btc: float = attrs.field(default=0.0001, validator=positive)  # smaller: no trade
    max_depth_share: float = attrs.field(default=1.0, validator=between(0.01, 1.0))  # of the depth within the limit
    slices: int = attrs.field(default=1, validator=between(1, 100, "an integer"))  # child orders per trade
    slice_interval_ms: float = attrs.field(default=0.0, validator=non_negative)
    # what an exit leaves unfilled is sent again as exit legs this many times (on later views), then hedged
    exit_retries: int = attrs.field(default=3, validator=between(0, 100, "an integer"))

    def signal_qty(self) -> float:
        """The size the entry signal is computed at: the order's, or with depth sizing the smallest one."""
        return self.order_qty_btc if self.sizing is Sizing.FIXED else self.min_order_qty_btc

    def zone(self, trade_index: int) -> Zone:
        """The zone of the ``trade_index``-th trade: ``zones`` cycled, or the one of entry_bps/tp_bps."""
        if not self.zones:
            return Zone(self.entry_bps, self.tp_bps)
        entry_bps, tp_bps = self.zones[trade_index % len(self.zones)]
        return Zone(entry_bps, tp_bps)


def vwap(levels: Sequence[Level], qty: float) -> float | None:
    """Average price of taking ``qty`` through ``levels`` (best first), or of the whole visible depth
    when it is shorter (the fill would be partial); None for an empty side."""
    left, cost, taken = qty, 0.0, 0.0
    for price, size in levels:
        take = min(size, left)
        cost += take * price
        taken += take
        left -= take
        if left <= 1e-12:
            break
    return cost / taken if taken > 0 else None


def executable_premiums(
    krw_bids: Sequence[Level],
    krw_asks: Sequence[Level],
    usdt_bids: Sequence[Level],
    usdt_asks: Sequence[Level],
    qty: float,
    krw_per_usdt: float,
    fee_krw_bps: float,
    fee_usdt_bps: float,
) -> tuple[float | None, float | None]:
    """(sell_krw, buy_krw) executable premiums in bps for ``qty``; None where a side is empty."""
    fk, fu = fee_krw_bps / 1e4, fee_usdt_bps / 1e4
    krw_sell, usdt_buy = vwap(krw_bids, qty), vwap(usdt_asks, qty)
    krw_buy, usdt_sell = vwap(krw_asks, qty), vwap(usdt_bids, qty)
    sell = (
        None
        if krw_sell is None or usdt_buy is None
        else (krw_sell * (1 - fk) / krw_per_usdt / (usdt_buy * (1 + fu)) - 1) * 1e4
    )
    buy = (
        None
        if krw_buy is None or usdt_sell is None
        else (krw_buy * (1 + fk) / krw_per_usdt / (usdt_sell * (1 - fu)) - 1) * 1e4
    )
    return sell, buy


def hedge_cost_bps(krw_ratio: float, usdt_ratio: float, krw_round_trip_bps: float, usdt_round_trip_bps: float) -> float:
    """The expected cost of hedging an entry's unmatched part, in bps of the position it holds.

    ``krw_ratio``, ``usdt_ratio``: the share of its order each entry leg is expected to fill. The position
    held is the smaller share; the larger leg's surplus is traded back on its venue, which costs that venue's
    round trip (``*_round_trip_bps``: the spread crossed and the fee twice) on the surplus. So the cost per
    unit held is ``(large - small) / small * round_trip``: inf when the smaller leg is expected to fill
    nothing (the entry would only pay for its hedge), 0 when both fill alike."""
    small, large = sorted((krw_ratio, usdt_ratio))
    if large <= small:
        return 0.0
    if small <= 0:
        return math.inf
    round_trip = krw_round_trip_bps if krw_ratio > usdt_ratio else usdt_round_trip_bps
    return (large - small) / small * round_trip


def net_of(
    sell_krw: float | None, buy_krw: float | None, costs: Mapping[Direction, float]
) -> tuple[float | None, float | None]:
    """(sell_krw, buy_krw) executable premiums less what hedging costs each direction: a cost lowers what
    "sell_krw" captures and raises the premium "buy_krw" pays."""
    return (
        None if sell_krw is None else sell_krw - costs[SELL_KRW],
        None if buy_krw is None else buy_krw + costs[BUY_KRW],
    )


def round_trip_bps(entry_levels: Sequence[Level], back_levels: Sequence[Level], qty: float, fee_bps: float) -> float:
    """What trading ``qty`` back right after an entry leg costs, in bps of the entry's price: the spread
    crossed (the VWAP of ``back_levels``, the other side of the book, against the entry's) and the fee twice;
    inf when a side is empty."""
    entry, back = vwap(entry_levels, qty), vwap(back_levels, qty)
    if entry is None or back is None:
        return math.inf
    return abs(entry - back) / entry * 1e4 + 2 * fee_bps


def hedge_costs(
    krw: BookView,
    usdt: BookView,
    ratios: Mapping[Direction, tuple[float, float]],
    qty: float,
    fee_krw_bps: float,
    fee_usdt_bps: float,
) -> dict[Direction, float]:
    """``hedge_cost_bps`` of an entry of ``qty`` in each direction, from the legs' expected fill ratios
    (``ratios``: direction -> (KRW leg, USDT leg)) and the round trip on each book."""
    costs = {}
    for direction, (krw_ratio, usdt_ratio) in ratios.items():
        if krw_ratio == usdt_ratio:  # no book walk when nothing is expected to be hedged
            costs[direction] = 0.0
            continue
        krw_sells, usdt_sells = direction.krw_side == Side.SELL, direction.usdt_side == Side.SELL
        costs[direction] = hedge_cost_bps(
            krw_ratio,
            usdt_ratio,
            round_trip_bps(*((krw.bids, krw.asks) if krw_sells else (krw.asks, krw.bids)), qty, fee_krw_bps),
            round_trip_bps(*((usdt.bids, usdt.asks) if usdt_sells else (usdt.asks, usdt.bids)), qty, fee_usdt_bps),
        )
    return costs


@attrs.define
class Baseline:
    halflife_s: float
    value: float | None = None
    first_at: float | None = None
    _last_at: float | None = None

    def update(self, x: float, now: float) -> float:
        if self.value is None or self._last_at is None:
            self.value, self.first_at = x, now
        else:
            dt = max(now - self._last_at, 0.0)
            alpha = 1.0 - math.exp(-dt * math.log(2) / self.halflife_s)
            self.value += alpha * (x - self.value)
        self._last_at = now
        return self.value


@attrs.frozen
class Open:
    direction: Direction
    deviation_bps: float


@attrs.frozen
class Close:
    reason: str
    captured_bps: float


def entry_signal(
    baseline_bps: float, sell_krw_bps: float | None, buy_krw_bps: float | None, entry_bps: float
) -> Open | None:
    if sell_krw_bps is not None and sell_krw_bps - baseline_bps >= entry_bps:
        return Open(SELL_KRW, sell_krw_bps - baseline_bps)
    if buy_krw_bps is not None and baseline_bps - buy_krw_bps >= entry_bps:
        return Open(BUY_KRW, buy_krw_bps - baseline_bps)
    return None


def exit_signal(
    direction: Direction,
    entry_exec_bps: float,
    sell_krw_bps: float | None,
    buy_krw_bps: float | None,
    held_s: float,
    tp_bps: float,
    max_hold_s: float,
) -> Close | None:
    """Close a "sell_krw" trade by buying back on KRW (buy_krw premium), and vice versa."""
    closing = buy_krw_bps if direction == SELL_KRW else sell_krw_bps
    captured = None
    if closing is not None:
        captured = entry_exec_bps - closing if direction == SELL_KRW else closing - entry_exec_bps
        if captured >= tp_bps:
            return Close("take_profit", captured)
    if held_s >= max_hold_s:
        return Close("max_hold", captured if captured is not None else float("nan"))
    return None
