"""What a ``Trader`` hands out: fill events (one line of fill_events_<id>.jsonl each, built by ``fill_event``)
and the frozen snapshot of its statistics that the KPI file, the status line and the live view read."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from actors.core.execution import LegFill
from actors.core.fills import CalibratedFillModel, Lots
from actors.core.kpi import Dispersion, RunningStats
from actors.core.ledger import NO_INVENTORY, FlowTotals, InventoryRows, InventorySample
from actors.core.market import MarketView
from actors.core.pairs import Pair
from actors.core.refusals import Refusal
from actors.core.trade import Trade
from actors.core.vocabulary import Currency, L2Source, Leg, LegRisk, Side, Sizing, Venue, Zone

BASE_OF_ONE_PAIR = "BTC"

if TYPE_CHECKING:  # the trader imports this module: the type only, for the annotations
    from actors.core.trader import Trader


@attrs.frozen(kw_only=True)
class FillEvent:
    """One simulated fill of one leg; one line of fill_events_<id>.jsonl (docs/file-formats.md), its keys in
    this order."""

    t_s: float
    ts_utc: str
    session_id: str
    trade_id: int
    leg: Leg
    venue: Venue
    symbol: str
    side: Side
    order_qty: float
    filled_qty: float
    fill_ratio: float
    available_volume: float
    limit_price: float
    avg_price: float | None
    best_price: float
    slippage_bps: float
    fee: float
    fee_ccy: Currency | str  # a fee in the coin (a Binance BUY's) is in the pair's base: "ETH" for ETH
    quote_ccy: Currency
    zone: str
    entry_bps: float
    tp_bps: float
    fill_model: str
    l2_source: L2Source
    decided_t_s: float
    latency_ms: float
    book_age_ms: float
    fx_krw_per_usdt: float
    fx_source: str
    fx_age_ms: float
    premium_bps: float
    exec_premium_bps: float | None
    deviation_bps: float
    exit_reason: str | None = None
    trade_pnl_usdt: float | None = None
    trade_pnl_krw: float | None = None
    qty_planned: float = 0.0  # the parent trade's planned size (entry legs), or the leg's own size
    predicted_slippage_bps: float | None = None  # the walk of the book at the decision, for this leg's size
    levels_walked: int = 0  # levels that walk took
    predicted_depth_left_btc: float | None = None  # depth within the limit that walk left on the book
    parent_id: int = 0  # the trade this leg belongs to (= trade_id)
    child: int = 0  # the child order (1, 2, ...) of a split entry; 0 for exits
    decision_price: float | None = None  # the best price of the book the leg was decided on
    attempt: int = 0  # exit legs: the exit round (1 the first exit, 2... its re-sends); other legs 0
    position_btc: float = 0.0  # the trade's BTC on this venue after this leg, net of BTC fees
    hedge_cost_bps: float | None = None  # entry legs: the expected hedge cost taken off exec_premium_bps
    base_ccy: str = BASE_OF_ONE_PAIR  # the coin traded (its pair's base): a line without it is BTC's

    def as_dict(self) -> dict[str, Any]:
        """Its line's keys: ``base_ccy`` only for a coin other than BTC, so a one-pair session's file is the same
        as before pairs existed (the ledger reads a line without it as BTC's)."""
        line = attrs.asdict(self)
        if self.base_ccy == BASE_OF_ONE_PAIR:
            del line["base_ccy"]
        return line


def fill_event(
    leg: LegFill,
    view: MarketView,
    trade: Trade,
    *,
    session_id: str,
    started_at: float,
    wall_now: str,
    l2_source: L2Source,
) -> FillEvent:
    """The fill event of ``leg``, which met its book in ``view``; ``trade`` holds what it filled already."""
    order, fill, book, zone, predicted = leg.order, leg.fill, leg.book, trade.zone, leg.order.predicted
    assert view.fx is not None
    return FillEvent(
        t_s=round(leg.at - started_at, 6),
        ts_utc=wall_now,
        session_id=session_id,
        trade_id=order.trade_id,
        leg=order.leg,
        venue=book.venue,
        symbol=book.symbol,
        side=order.side,
        order_qty=order.qty,
        filled_qty=fill.filled_qty,
        fill_ratio=fill.fill_ratio,
        available_volume=fill.available_volume,
        limit_price=fill.limit_price,
        avg_price=fill.avg_price,
        best_price=fill.best_price,
        slippage_bps=fill.slippage_bps,
        fee=leg.fee,
        fee_ccy=leg.fee_ccy,
        quote_ccy=leg.quote_ccy,
        zone=zone.label,
        entry_bps=zone.entry_bps,
        tp_bps=zone.tp_bps,
        fill_model=leg.fill_model,
        l2_source=l2_source,
        decided_t_s=round(order.decided_at - started_at, 6),
        latency_ms=round((order.arrive_at - order.decided_at) * 1e3, 6),
        book_age_ms=round((leg.at - book.received_at) * 1e3, 3),
        fx_krw_per_usdt=view.fx.krw_per_usdt,
        fx_source=view.fx.source,
        fx_age_ms=round((view.at - view.fx.observed_at) * 1e3, 3),
        premium_bps=order.premium_bps,
        exec_premium_bps=order.exec_premium_bps,
        deviation_bps=order.deviation_bps,
        exit_reason=order.reason,
        qty_planned=order.qty_planned,
        predicted_slippage_bps=predicted.slippage_bps,
        levels_walked=predicted.levels_walked,
        predicted_depth_left_btc=predicted.depth_left,
        parent_id=order.trade_id,
        child=order.child,
        decision_price=predicted.decision_price,
        attempt=order.attempt,
        position_btc=trade.held(order.on_krw),
        hedge_cost_bps=order.hedge_cost_bps,
        base_ccy=leg.base,
    )


@attrs.frozen
class ZoneFillRatio:
    """The fill ratio of entry and exit legs of one zone on one side: measured, and with the calibrated fill
    model its prediction (the calibration's mean and 95 % interval)."""

    n: int
    mean: float | None  # None before the first leg
    predicted_mean: float | None = None
    predicted_ci95: tuple[float, float] | None = None

    @property
    def within_ci95(self) -> bool | None:
        """Whether the measured mean lies in the predicted interval; None without both."""
        if self.mean is None or self.predicted_ci95 is None:
            return None
        lo, hi = self.predicted_ci95
        return lo - 1e-9 <= self.mean <= hi + 1e-9


@attrs.frozen
class TraderStatistics:
    """What a ``Trader`` has done, as of ``Trader.statistics()``: copies in read-only mappings, so a reader
    never sees the trader change under it and cannot change it. Zones are in numeric order."""

    entries: int  # trades opened
    exits: int  # trades closed
    open_trades: int  # held, or with legs in flight
    legs_in_flight: int
    fills_by_side: Mapping[Side, int]  # both sides, BUY first
    fills_by_zone: Mapping[Zone, int]
    refusals: Mapping[Refusal, int]  # decisions not taken, by reason (sorted by label)
    available_volume: Mapping[Side, Dispersion]
    fill_ratios: Mapping[Zone, Mapping[Side, ZoneFillRatio]]
    realized_pnl_usdt: float
    realized_pnl_krw: float
    unrealized_pnl_usdt: float  # open trades marked to mid
    fees_paid: Mapping[tuple[str, str], float]  # (venue, currency), sorted
    balances: Mapping[str, Mapping[str, float]]  # venue -> asset -> amount
    initial_balances: Mapping[str, Mapping[str, float]]
    carried_imbalance_btc: float
    risk_stopped: str | None  # why new entries stopped, or None
    baseline_bps: float | None  # the strategy's baseline of the mid premium
    l2_source: L2Source
    fill_model: str
    latency_ms: float
    latency_jitter_ms: float
    leg_risk: LegRisk
    sizing: Sizing = Sizing.FIXED
    children_sent: int = 0  # child orders (a trade that is not split sends one)
    parents_stopped: int = 0  # split trades stopped before their last child because the premium closed
    planned_qty_btc: float = 0.0  # the trades' planned sizes, summed
    entry_filled_btc: float = 0.0  # entry legs' filled quantity, summed over both legs
    open_by_phase: Mapping[str, int] = MappingProxyType({})  # open trades per phase (sorted)
    open_btc: Mapping[str, float] = MappingProxyType({})  # venue -> BTC the open trades hold there
    dust_btc: Mapping[str, float] = MappingProxyType({})  # venue -> BTC closed trades left, below its minimum order
    exit_retries: int = 0  # re-sends of an exit's unfilled rest allowed before it is hedged
    resent_legs: int = 0  # exit legs re-sent for what an exit left unfilled
    unwind_legs: int = 0  # hedge legs sent for what the exit rounds left
    trades_worked: int = 0  # closed trades whose exit needed re-sends or unwind legs
    flows: FlowTotals = attrs.field(factory=FlowTotals)  # every fill's flows and fees (a copy)
    # the balances' change over time, marked to market (numbers: ``inventory.samples()`` builds the objects)
    inventory: InventoryRows = NO_INVENTORY
    inventory_interval_s: float = 0.0  # the spacing of those samples now
    inventory_now: InventorySample | None = None  # the same at the latest view
    lots: Lots = attrs.field(factory=Lots)  # each venue's minimum order
    # a market of many pairs (MarketTrader): one row per pair, in the pairs' order; empty for one pair's trader
    pairs: tuple[PairStatistics, ...] = ()

    @property
    def fill_events(self) -> int:
        return sum(self.fills_by_side.values())


@attrs.frozen
class PairStatistics:
    """One pair's row of a market's statistics (``TraderStatistics.pairs``). Quantities are in the pair's coin."""

    pair: Pair
    views: int  # complete views (with a premium) it decided on
    premium_bps: Dispersion  # the mid premium of those views: mean, std, min, max
    entries: int
    exits: int
    open_trades: int
    fills: int  # fill events
    realized_pnl_usdt: float
    unrealized_pnl_usdt: float  # its open trades marked to mid
    refusals: Mapping[Refusal, int]  # by reason (sorted by label); a market's caps: Refusal.MARKET_CAP
    baseline_bps: float | None
    open_qty: Mapping[str, float] = MappingProxyType({})  # venue -> the coin its open trades hold there
    dust_qty: Mapping[str, float] = MappingProxyType({})  # venue -> the coin its closed trades left as dust
    risk_stopped: str | None = None


_NOTHING: Mapping[Any, Any] = MappingProxyType({})


def balances_snapshot(balances: dict[str, dict[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({venue: MappingProxyType(dict(assets)) for venue, assets in balances.items()})


def statistics_of(trader: Trader, *, balances: bool = True) -> TraderStatistics:
    """``Trader.statistics()``: a frozen snapshot of everything the KPI file, the status line and the live view
    report, copied out of the trader and its accounts. ``balances=False``: the portfolio's balances and fees are
    left empty (a market's pairs share one portfolio: it is copied once for all of them, not once per pair)."""
    accounts, execution = trader.accounts, trader.execution
    portfolio = accounts.portfolio if balances else None
    return TraderStatistics(
        entries=accounts.entries,
        exits=accounts.exits,
        open_trades=len(trader.trades),
        legs_in_flight=len(trader.legs.pending),
        fills_by_side=MappingProxyType({side: accounts.fills_by_side[side] for side in Side}),
        fills_by_zone=MappingProxyType(dict(sorted(accounts.fills_by_zone.items()))),
        refusals=MappingProxyType(dict(sorted(accounts.refusals.items()))),
        available_volume=MappingProxyType({side: accounts.available_volume[side].statistics() for side in Side}),
        fill_ratios=_fill_ratios(trader),
        realized_pnl_usdt=accounts.realized_pnl_usdt,
        realized_pnl_krw=accounts.realized_pnl_krw,
        unrealized_pnl_usdt=trader.unrealized_pnl_usdt(),
        fees_paid=_NOTHING if portfolio is None else MappingProxyType(dict(sorted(portfolio.fees_paid.items()))),
        balances=_NOTHING if portfolio is None else balances_snapshot(portfolio.balances),
        initial_balances=_NOTHING if portfolio is None else balances_snapshot(portfolio.initial),
        carried_imbalance_btc=trader.carried_imbalance_btc,
        risk_stopped=trader.risk_stopped,
        baseline_bps=trader.baseline.value,
        l2_source=trader.l2_source,
        fill_model=trader.fill_model.name,
        latency_ms=execution.latency_ms,
        latency_jitter_ms=execution.latency_jitter_ms,
        leg_risk=execution.leg_risk,
        sizing=trader.params.sizing,
        children_sent=accounts.children_sent,
        parents_stopped=accounts.parents_stopped,
        planned_qty_btc=accounts.planned_qty_btc,
        entry_filled_btc=accounts.entry_filled_btc,
        open_by_phase=MappingProxyType(dict(sorted(Counter(str(t.phase) for t in trader.trades.values()).items()))),
        open_btc=MappingProxyType(trader.open_btc()),
        dust_btc=MappingProxyType(dict(accounts.dust_btc)),
        exit_retries=trader.params.exit_retries,
        resent_legs=accounts.resent_legs,
        unwind_legs=accounts.unwind_legs,
        trades_worked=accounts.trades_worked,
        flows=accounts.flows.copy(),
        inventory=accounts.inventory.rows(),
        inventory_interval_s=accounts.inventory.interval_s,
        inventory_now=trader.inventory_now(),
        lots=execution.lots,
    )


def _fill_ratios(trader: Trader) -> Mapping[Zone, Mapping[Side, ZoneFillRatio]]:
    """The fill ratio of entry and exit legs per zone (numeric order) and side, with the calibrated model's
    prediction."""
    model = trader.fill_model
    calibration = model.calibration if isinstance(model, CalibratedFillModel) else None

    def ratio(zone: Zone, side: Side, stats: RunningStats) -> ZoneFillRatio:
        mean = stats.mean if stats.count else None
        if calibration is None:
            return ZoneFillRatio(stats.count, mean)
        predicted = calibration.lookup(zone, side)
        return ZoneFillRatio(stats.count, mean, predicted.mean, predicted.ci95)

    return MappingProxyType(
        {
            zone: MappingProxyType({side: ratio(zone, side, stats) for side, stats in sides.items()})
            for zone, sides in sorted(trader.accounts.zone_ratios.items())
        }
    )
