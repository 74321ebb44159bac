"""Depth-aware order sizing: the largest quantity whose executable premium, both books walked together,
still clears the entry threshold.

A two-leg entry sells ``q`` BTC into one venue's bids and buys ``q`` from the other's asks. With both
fees and the expected drift of each leg's slippage (``SlippageDrift``) folded into two scale factors,
the entry clears at ``q`` when ``sell_scale * proceeds(q) >= buy_scale * cost(q)``: for "sell_krw"
``proceeds`` is KRW from Upbit's bids and ``cost`` USDT paid on Binance's asks, for "buy_krw" the
other way round (``entry_scales``). ``proceeds`` and ``cost`` are piecewise linear in ``q`` with a
break at every level, the margin ``f(q) = sell_scale * proceeds(q) - buy_scale * cost(q)`` has
``f(0) = 0`` and a slope that only falls (bids get worse, asks dearer), so the quantities that clear
are one interval ``[0, q*]`` and ``largest_clearing_qty`` finds ``q*`` exactly in one pass over the
levels: no search, no grid (the tests check it against a brute-force one).
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import attrs

from actors.core.book import Level
from actors.core.fills import Fees
from actors.core.market import MarketView
from actors.core.strategy import StrategyParams
from actors.core.vocabulary import Direction, Side

_EPS = 1e-12


class SlippageDrift(Protocol):
    """The expected realized-minus-predicted slippage of a leg, in bps (``actors.core.slippage``)."""

    def expected_bps(self, venue: str, side: Side, qty: float) -> float: ...


@attrs.frozen
class NoDrift:
    """No drift model: predictions taken as they are."""

    def expected_bps(self, venue: str, side: Side, qty: float) -> float:
        return 0.0


def largest_clearing_qty(
    bids: Sequence[Level], asks: Sequence[Level], sell_scale: float, buy_scale: float, max_qty: float
) -> float:
    """The largest ``q <= max_qty`` with ``sell_scale * proceeds(q) >= buy_scale * cost(q)``: selling ``q``
    into ``bids`` and buying ``q`` from ``asks`` (best first; pass only the levels an order may reach).
    0 when even the first unit does not clear; at most the shorter side's depth."""
    i = j = 0
    bid_left = bids[0][1] if bids else 0.0
    ask_left = asks[0][1] if asks else 0.0
    q = margin = 0.0
    while i < len(bids) and j < len(asks) and q < max_qty - _EPS:
        step = min(bid_left, ask_left, max_qty - q)
        slope = sell_scale * bids[i][0] - buy_scale * asks[j][0]
        if slope < 0 and margin + slope * step < 0:
            return q + margin / -slope  # where the margin reaches 0 inside this segment
        q += step
        margin += slope * step
        bid_left -= step
        ask_left -= step
        if bid_left <= _EPS:
            i += 1
            bid_left = bids[i][1] if i < len(bids) else 0.0
        if ask_left <= _EPS:
            j += 1
            ask_left = asks[j][1] if j < len(asks) else 0.0
    return q


def entry_scales(
    direction: Direction,
    threshold_bps: float,
    krw_per_usdt: float,
    fee_krw_bps: float,
    fee_usdt_bps: float,
    drift_krw_bps: float = 0.0,
    drift_usdt_bps: float = 0.0,
) -> tuple[float, float]:
    """(sell_scale, buy_scale) of ``largest_clearing_qty`` for an entry in ``direction`` whose executable
    premium must reach ``threshold_bps`` ("sell_krw": at least, "buy_krw": at most). Drift is slippage
    beyond the walk's prediction: it lowers what a sale brings and raises what a purchase costs."""
    fk, fu, t = fee_krw_bps / 1e4, fee_usdt_bps / 1e4, threshold_bps / 1e4
    dk, du = drift_krw_bps / 1e4, drift_usdt_bps / 1e4
    if direction is Direction.SELL_KRW:  # KRW proceeds / fx >= (1 + t) * USDT cost
        return (1 - fk) * (1 - dk) / krw_per_usdt, (1 + t) * (1 + fu) * (1 + du)
    # buy_krw: KRW cost / fx <= (1 + t) * USDT proceeds
    return (1 + t) * (1 - fu) * (1 - du), (1 + fk) * (1 + dk) / krw_per_usdt


def clearing_size(
    direction: Direction,
    threshold_bps: float,
    sell: Sequence[Level],
    buy: Sequence[Level],
    cap: float,
    krw_per_usdt: float,
    krw: tuple[str, float],
    usdt: tuple[str, float],
    drift: SlippageDrift,
) -> float:
    """The size of an entry in ``direction``: the largest quantity up to ``cap`` that clears ``threshold_bps``
    selling into ``sell`` and buying from ``buy`` (the reachable levels: the KRW venue's bids and the USDT
    venue's asks for "sell_krw", the other way round for "buy_krw"), both fees (``krw``, ``usdt``: venue and
    fee in bps) and each leg's expected drift included; rounded down to the venues' 1e-8 BTC step. The drift
    depends on the size's bucket: the size is found at the cap's bucket, then again at its own."""
    (krw_venue, fee_krw), (usdt_venue, fee_usdt) = krw, usdt
    qty = cap
    for _ in range(2):
        sell_scale, buy_scale = entry_scales(
            direction,
            threshold_bps,
            krw_per_usdt,
            fee_krw,
            fee_usdt,
            drift.expected_bps(krw_venue, direction.krw_side, qty),
            drift.expected_bps(usdt_venue, direction.usdt_side, qty),
        )
        qty = largest_clearing_qty(sell, buy, sell_scale, buy_scale, cap)
        if isinstance(drift, NoDrift):
            break
    return math.floor(qty * 1e8) / 1e8


def within_limit(levels: Sequence[Level], side: Side, limit: float) -> tuple[Level, ...]:
    """The levels an order with this limit price may take (best first)."""
    out = []
    if side == Side.BUY:
        highest = limit * (1 + 1e-12)
        for price, size in levels:
            if price > highest:
                break
            out.append((price, size))
    else:
        lowest = limit * (1 - 1e-12)
        for price, size in levels:
            if price < lowest:
                break
            out.append((price, size))
    return tuple(out)


def depth(levels: Sequence[Level]) -> float:
    return math.fsum(size for _, size in levels)


@attrs.frozen
class DepthSizer:
    """``sizing = "depth"``: an entry's size is the largest, up to ``max_order_qty_btc`` and the participation
    share of each side's reachable depth, whose walked premium still clears the entry threshold."""

    params: StrategyParams
    fees: Fees
    drift: SlippageDrift

    def size(
        self,
        view: MarketView,
        direction: Direction,
        threshold_bps: float,
        reachable: tuple[tuple[Level, ...], tuple[Level, ...]],
        room: float,
    ) -> float:
        """The size for an entry in ``direction`` that must clear ``threshold_bps``: ``reachable`` are the levels
        each leg may take (the KRW venue's first), ``room`` the most the balances and limits allow."""
        p, fees = self.params, self.fees
        krw, usdt, fx = view.krw_leg, view.usdt_leg, view.fx
        assert krw is not None and usdt is not None and fx is not None
        krw_levels, usdt_levels = reachable
        cap = min(
            p.max_order_qty_btc,
            p.max_depth_share * depth(krw_levels),
            p.max_depth_share * depth(usdt_levels),
            room,
        )
        sell, buy = (krw_levels, usdt_levels) if direction is Direction.SELL_KRW else (usdt_levels, krw_levels)
        return clearing_size(
            direction,
            threshold_bps,
            sell,
            buy,
            cap,
            fx.krw_per_usdt,
            (krw.venue, fees.rate_bps(krw.venue)),
            (usdt.venue, fees.rate_bps(usdt.venue)),
            self.drift,
        )
