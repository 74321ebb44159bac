"""What the trader did, counted and valued: the accounting half of the trader.

``Accounts`` owns the balances (``Portfolio``) and everything the KPI file reports of the trader's work: the
fills per side and zone with their measures, the decisions not taken (``Refusal``), trades opened and closed,
child orders, the exits that had to be worked, the dust closed trades left, PnL, every fill's flows and the
inventory over time. The trader tells it what happened; outsiders read it through ``Trader.statistics()``.

PnL of a trade, in USDT: each venue's cash flow net of fees (KRW converted at the FX rate at exit, BTC fees
at the venue's mid), plus BTC left over valued at each venue's mid at exit. In KRW: the same at the exit FX
rate. Trades still open when the session ends are marked to market, not closed.
"""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import Iterable, Mapping

import attrs

from actors.core.execution import LegFill
from actors.core.kpi import RunningStats, Spread, Values
from actors.core.ledger import FlowTotals, InventoryLog, InventorySample, inventory_sample, marks_of
from actors.core.market import MarketView
from actors.core.portfolio import Portfolio
from actors.core.refusals import Refusal
from actors.core.trade import Trade
from actors.core.vocabulary import Leg, Side, Zone

BUY, SELL = Side.BUY, Side.SELL


def _by_side() -> dict[Side, RunningStats]:
    return {BUY: RunningStats(), SELL: RunningStats()}


def _values_by_side() -> dict[Side, Values]:
    return {BUY: Values(), SELL: Values()}


@attrs.define
class Accounts:
    portfolio: Portfolio  # the balances per venue: every fill is applied to them
    refusals: Counter[Refusal] = attrs.field(factory=Counter)  # decisions not taken, one per view
    entries: int = 0  # trades opened
    exits: int = 0  # trades closed flat
    planned_qty_btc: float = 0.0  # the trades' planned sizes, summed
    children_sent: int = 0  # child orders sent (a trade that is not split sends one)
    parents_stopped: int = 0  # split trades stopped before their last child: the premium closed
    entry_filled_btc: float = 0.0  # entry legs' filled quantity, summed over both legs
    fills_by_side: Counter[Side] = attrs.field(factory=Counter)
    fills_by_zone: Counter[Zone] = attrs.field(factory=Counter)
    available_volume: dict[Side, RunningStats] = attrs.field(factory=_by_side)
    zone_ratios: dict[Zone, dict[Side, RunningStats]] = attrs.field(factory=dict)  # entry and exit legs
    fill_ratios: dict[Side, Values] = attrs.field(factory=_values_by_side)  # every leg
    slippages: dict[Side, Values] = attrs.field(factory=_values_by_side)  # legs that filled
    resent_legs: int = 0  # exit legs sent again for what an exit left unfilled
    unwind_legs: int = 0  # hedge legs sent for what the exit and its re-sends left
    trades_worked: int = 0  # closed trades whose exit needed re-sends or unwind legs
    dust_btc: dict[str, float] = attrs.field(factory=dict)  # venue -> BTC closed trades left below its minimum
    realized_pnl_usdt: float = 0.0
    realized_pnl_krw: float = 0.0
    trade_pnls: RunningStats = attrs.field(factory=RunningStats)
    flows: FlowTotals = attrs.field(factory=FlowTotals)  # every fill's flows and fees (actors.core.ledger)
    inventory: InventoryLog = attrs.field(factory=InventoryLog)  # the balances' change over time, marked
    # False for a pair of a market (MarketTrader): its view marks one coin of balances that hold many, so the
    # market samples the shared balances itself
    sampling: bool = True

    # -- what happened -------------------------------------------------------------------------------

    def refuse(self, reason: Refusal) -> None:
        self.refusals[reason] += 1

    def opened(self, trade: Trade) -> None:
        self.entries += 1
        self.planned_qty_btc += trade.planned_qty

    def child_sent(self) -> None:
        self.children_sent += 1

    def parent_stopped(self) -> None:
        self.parents_stopped += 1

    def exit_resent(self, legs: int) -> None:
        self.resent_legs += legs

    def unwind_sent(self, legs: int) -> None:
        self.unwind_legs += legs

    def record(self, leg: LegFill, trade: Trade) -> None:
        """A leg of ``trade`` filled: its flows go to the balances, the trade's holdings and the ledger's totals;
        its measures to the statistics per side and zone."""
        order, fill = leg.order, leg.fill
        if fill.filled_qty > 0:
            self.portfolio.apply(
                leg.venue,
                order.side,
                fill.filled_qty,
                fill.avg_price or 0.0,
                leg.quote_ccy,
                leg.fee,
                leg.fee_ccy,
                leg.base,
            )
        btc, cash = leg.moved()
        trade.take(order.on_krw, btc, cash, fill.avg_price)
        self.fills_by_side[order.side] += 1
        self.fills_by_zone[trade.zone] += 1
        self.available_volume[order.side].add(fill.available_volume)
        self.fill_ratios[order.side].add(fill.fill_ratio)
        if fill.filled_qty > 0:
            self.slippages[order.side].add(fill.slippage_bps)
        if order.leg is not Leg.HEDGE:
            sides = self.zone_ratios.setdefault(trade.zone, _by_side())
            sides[order.side].add(fill.fill_ratio)
        if order.leg is Leg.ENTRY:
            self.entry_filled_btc += fill.filled_qty
        self.flows.add(leg)

    def book(self, trade: Trade, view: MarketView, closed: bool) -> tuple[float, float]:
        """A flat trade is done (``closed``: by its exit; otherwise its entry filled nothing): count it, keep
        the dust it leaves per venue and realize its PnL, (USDT, KRW)."""
        assert view.krw_leg is not None and view.usdt_leg is not None
        if closed:
            self.exits += 1
            if trade.exit_rounds > 1 or trade.unwinds:
                self.trades_worked += 1
        for venue, held in ((view.krw_leg.venue, trade.krw_btc), (view.usdt_leg.venue, trade.usdt_btc)):
            if held:
                self.dust_btc[venue] = self.dust_btc.get(venue, 0.0) + held
        usdt, krw = trade_pnl(trade, view)
        self.realized_pnl_usdt += usdt
        self.realized_pnl_krw += krw
        self.trade_pnls.add(usdt)
        return usdt, krw

    # -- inventory -----------------------------------------------------------------------------------

    def sample_inventory(self, view: MarketView, started_at: float) -> None:
        """Add the balances' change, marked at ``view``, to the inventory log when a sample is due."""
        t_s = view.at - started_at
        marks = marks_of(view) if self.sampling and self.inventory.due(t_s) else None
        if marks is not None:
            portfolio = self.portfolio
            self.inventory.add(inventory_sample(round(t_s, 6), portfolio.initial, portfolio.balances, marks))

    def inventory_now(self, view: MarketView | None, started_at: float) -> InventorySample | None:
        """The balances' change since the start, marked at ``view``; None before a whole view."""
        marks = None if view is None or not self.sampling else marks_of(view)
        if view is None or marks is None:
            return None
        portfolio = self.portfolio
        return inventory_sample(round(view.at - started_at, 6), portfolio.initial, portfolio.balances, marks)

    # -- measures ------------------------------------------------------------------------------------

    def fill_spreads(self) -> tuple[Mapping[Side, Spread], Mapping[Side, Spread]]:
        """(fill ratio over every leg, slippage in bps over the legs that filled) per side, BUY first."""
        return (
            MappingProxyType({side: self.fill_ratios[side].spread() for side in (BUY, SELL)}),
            MappingProxyType({side: self.slippages[side].spread() for side in (BUY, SELL)}),
        )


def trade_pnl(trade: Trade, view: MarketView) -> tuple[float, float]:
    """What ``trade`` made, (USDT, KRW), with what it still holds marked to mid at ``view``."""
    assert view.krw_leg is not None and view.usdt_leg is not None and view.fx is not None
    fx = view.fx.krw_per_usdt
    usdt = (
        trade.usdt_cash
        + trade.krw_cash / fx
        + trade.krw_btc * (view.krw_leg.mid or 0.0) / fx
        + trade.usdt_btc * (view.usdt_leg.mid or 0.0)
    )
    return usdt, usdt * fx


def held_btc(trades: Iterable[Trade], view: MarketView | None) -> dict[str, float]:
    """Per venue of ``view``, the BTC ``trades`` hold there; empty before a view with both legs."""
    if view is None or view.krw_leg is None or view.usdt_leg is None:
        return {}
    trades = tuple(trades)
    return {
        view.krw_leg.venue: sum((t.krw_btc for t in trades), 0.0),
        view.usdt_leg.venue: sum((t.usdt_btc for t in trades), 0.0),
    }


def marked_pnl_usdt(trades: Iterable[Trade], view: MarketView | None) -> float:
    """What ``trades`` made so far, in USDT, marked to mid at ``view`` (0 before a whole view)."""
    if view is None or view.fx is None or view.krw_leg is None or view.usdt_leg is None:
        return 0.0
    return sum(trade_pnl(t, view)[0] for t in trades)
