"""What a ``MarketTrader`` hands out: its statistics, the totals over its pairs as a one-pair trader reports them
(``TraderStatistics``) with one row per pair (``PairStatistics``, in ``TraderStatistics.pairs``).

Counts, PnL, fills, refusals and every fill's flows are summed over pairs; dispersions and fill ratios pooled; the
balances, fees and inventory are the one shared portfolio's. The fields in BTC (``open_btc``, ``dust_btc``,
``carried_imbalance_btc``, ``planned_qty_btc``, ``entry_filled_btc``) are the BTC pair's (0 without one): a
quantity of one coin does not add to another's, and the KPI's check of the BTC no trade explains reads them;
each pair's row has its own coin's.
"""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping, TypeVar

import attrs

from actors.core.kpi import merged_dispersion
from actors.core.ledger import FlowTotals
from actors.core.pairs import Pair
from actors.core.trader_outputs import PairStatistics, TraderStatistics, ZoneFillRatio, balances_snapshot, statistics_of
from actors.core.vocabulary import Currency, Side, Zone

if TYPE_CHECKING:  # the market trader imports this module: the type only, for the annotations
    from actors.core.market_trader import MarketTrader

BTC = Currency.BTC  # the coin the BTC-denominated settings and fields are about
K = TypeVar("K")


def market_statistics(market: MarketTrader) -> TraderStatistics:
    """The statistics of every pair's trader, as totals plus one row per pair."""
    parts = {pair: statistics_of(trader, balances=False) for pair, trader in market.traders.items()}  # shared: below
    stats = tuple(parts.values())
    btc = tuple(s for pair, s in parts.items() if pair.base == BTC)
    first = stats[0]
    inventory_now = market.inventory_now()
    portfolio = market.portfolio
    return attrs.evolve(
        first,
        fees_paid=MappingProxyType(dict(sorted(portfolio.fees_paid.items()))),
        balances=balances_snapshot(portfolio.balances),
        initial_balances=balances_snapshot(portfolio.initial),
        entries=sum(s.entries for s in stats),
        exits=sum(s.exits for s in stats),
        open_trades=sum(s.open_trades for s in stats),
        legs_in_flight=sum(s.legs_in_flight for s in stats),
        fills_by_side=MappingProxyType({side: sum(s.fills_by_side[side] for s in stats) for side in Side}),
        fills_by_zone=_summed(tuple(s.fills_by_zone for s in stats)),
        refusals=_summed(tuple(s.refusals for s in stats)),
        available_volume=MappingProxyType(
            {side: merged_dispersion(tuple(s.available_volume[side] for s in stats)) for side in Side}
        ),
        fill_ratios=_fill_ratios(stats),
        realized_pnl_usdt=sum(s.realized_pnl_usdt for s in stats),
        realized_pnl_krw=sum(s.realized_pnl_krw for s in stats),
        unrealized_pnl_usdt=sum(s.unrealized_pnl_usdt for s in stats),
        carried_imbalance_btc=sum(s.carried_imbalance_btc for s in btc),
        risk_stopped=market.risk_stopped,
        baseline_bps=first.baseline_bps if len(stats) == 1 else None,
        children_sent=sum(s.children_sent for s in stats),
        parents_stopped=sum(s.parents_stopped for s in stats),
        planned_qty_btc=sum(s.planned_qty_btc for s in btc),
        entry_filled_btc=sum(s.entry_filled_btc for s in btc),
        open_by_phase=_summed(tuple(s.open_by_phase for s in stats)),
        open_btc=_added(tuple(s.open_btc for s in btc)),
        dust_btc=_added(tuple(s.dust_btc for s in btc)),
        resent_legs=sum(s.resent_legs for s in stats),
        unwind_legs=sum(s.unwind_legs for s in stats),
        trades_worked=sum(s.trades_worked for s in stats),
        flows=merged_flows(tuple(s.flows for s in stats)),
        inventory=market.inventory.rows(),
        inventory_interval_s=market.inventory.interval_s,
        inventory_now=inventory_now,
        pairs=tuple(_row(market, pair, s) for pair, s in parts.items()),
    )


def _row(market: MarketTrader, pair: Pair, s: TraderStatistics) -> PairStatistics:
    premium = market.premium_of(pair)
    return PairStatistics(
        pair=pair,
        views=premium.count,
        premium_bps=premium.statistics(),
        entries=s.entries,
        exits=s.exits,
        open_trades=s.open_trades,
        fills=s.fill_events,
        realized_pnl_usdt=s.realized_pnl_usdt,
        unrealized_pnl_usdt=s.unrealized_pnl_usdt,
        refusals=s.refusals,
        baseline_bps=s.baseline_bps,
        open_qty=s.open_btc,
        dust_qty=s.dust_btc,
        risk_stopped=s.risk_stopped,
    )


def merged_flows(parts: tuple[FlowTotals, ...]) -> FlowTotals:
    """Every part's flows and fees summed per (venue, asset): the flows of every fill of every pair."""
    total = FlowTotals()
    for part in parts:
        for mine, theirs in ((total.flows, part.flows), (total.fees, part.fees), (total.gross, part.gross)):
            for key, amount in theirs.items():
                mine[key] = mine.get(key, 0.0) + amount
        total.fills += part.fills
    return total


def _summed(parts: tuple[Mapping[K, int], ...]) -> Mapping[K, int]:
    """The counts of every part, summed, in their keys' order (refusals by label, zones by number)."""
    counts: Counter[K] = Counter()
    for part in parts:
        counts.update(part)
    return MappingProxyType(dict(sorted(counts.items(), key=lambda item: item[0])))  # type: ignore[arg-type,return-value]


def _added(parts: tuple[Mapping[str, float], ...]) -> Mapping[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for key, amount in part.items():
            total[key] = total.get(key, 0.0) + amount
    return MappingProxyType(total)


def _fill_ratios(stats: tuple[TraderStatistics, ...]) -> Mapping[Zone, Mapping[Side, ZoneFillRatio]]:
    """Per zone and side, the pairs' fill ratios pooled (count-weighted means; the calibrated prediction is the
    same model's for every pair)."""
    pooled: dict[Zone, dict[Side, ZoneFillRatio]] = {}
    for s in stats:
        for zone, sides in s.fill_ratios.items():
            mine = pooled.setdefault(zone, {})
            for side, ratio in sides.items():
                mine[side] = _pooled(mine.get(side), ratio)
    return MappingProxyType({zone: MappingProxyType(sides) for zone, sides in sorted(pooled.items())})


def _pooled(a: ZoneFillRatio | None, b: ZoneFillRatio) -> ZoneFillRatio:
    if a is None or not a.n or a.mean is None:
        return b
    if not b.n or b.mean is None:
        return a
    n = a.n + b.n
    return attrs.evolve(a, n=n, mean=(a.n * a.mean + b.n * b.mean) / n)
