"""The executor's decisions: strategy signals -> two-leg orders -> fills -> fill events, positions, PnL.

Pure and deterministic: the same market views give the same fill events. All state lives in one
``Trader`` object, which the executor shell keeps outside its restart loop so a restarted executor
keeps its positions.

PnL of a trade, in USDT: the USDT venue's cash flow, plus the KRW venue's cash flow converted at the
FX rate at exit, plus any BTC left over from partial fills valued at each venue's mid at exit.
Fees are not modelled yet (every PnL is before fees).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from actors.core.book import BookView
from actors.core.fills import BUY, SELL, Fill, SimpleFillModel
from actors.core.market import MarketView
from actors.core.strategy import SELL_KRW, Baseline, StrategyParams, entry_signal, exit_signal


@attrs.frozen
class FillEvent:
    """One simulated fill of one leg; one line of fill_events_<id>.jsonl (docs/file-formats.md)."""

    t_s: float                # session clock, seconds since the session started
    ts_utc: str               # wall clock, ISO 8601 UTC (the only wall-clock field)
    session_id: str
    trade_id: int
    leg: str                  # "entry" or "exit"
    venue: str
    symbol: str
    side: str                 # BUY or SELL
    order_qty: float          # BTC
    filled_qty: float         # BTC
    fill_ratio: float
    available_volume: float   # BTC visible at or better than limit_price
    limit_price: float        # quote currency
    avg_price: float | None
    best_price: float
    slippage_bps: float
    quote_ccy: str            # KRW or USDT
    entry_bps: float
    tp_bps: float
    fill_model: str
    l2_source: str
    book_age_ms: float
    fx_krw_per_usdt: float
    fx_source: str
    fx_age_ms: float
    premium_bps: float
    deviation_bps: float
    exit_reason: str | None = None
    trade_pnl_usdt: float | None = None  # on the last exit leg of a trade only

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class _Position:
    trade_id: int
    direction: str
    opened_at: float
    entry_premium_bps: float
    krw_btc: float = 0.0    # BTC bought (+) or sold (-) on the KRW venue
    usdt_btc: float = 0.0
    krw_cash: float = 0.0   # KRW received (+) or paid (-)
    usdt_cash: float = 0.0


@attrs.define
class Trader:
    params: StrategyParams
    session_id: str
    started_at: float
    fill_model: SimpleFillModel = attrs.field(factory=SimpleFillModel)
    l2_source: str = "multi"
    baseline: Baseline = attrs.field(init=False)
    open_trade: _Position | None = None
    next_trade_id: int = 1
    entries: int = 0
    exits: int = 0
    fills_by_side: Counter = attrs.field(factory=Counter)
    refusals: Counter = attrs.field(factory=Counter)
    realized_pnl_usdt: float = 0.0
    trade_pnls: list[float] = attrs.field(factory=list)
    available_volume: dict[str, list[float]] = attrs.field(factory=lambda: {BUY: [], SELL: []})
    balances: dict[str, dict[str, float]] = attrs.field(factory=dict)
    last_view: MarketView | None = None

    def __attrs_post_init__(self) -> None:
        self.baseline = Baseline(self.params.baseline_halflife_s)

    # -- decisions ---------------------------------------------------------------------------------

    def on_view(self, view: MarketView, wall_now: str) -> list[FillEvent]:
        if view.premium_bps is None:
            return []
        self.last_view = view
        baseline = self.baseline.update(view.premium_bps, view.at)
        deviation = view.premium_bps - baseline
        pos = self.open_trade
        if pos is not None:
            close = exit_signal(pos.direction, pos.entry_premium_bps, view.premium_bps, view.at - pos.opened_at,
                                self.params)
            if close is None or not self._tradeable(view):
                return []
            return self._close(pos, view, deviation, close.reason, wall_now)
        if self.baseline.first_at is None or view.at - self.baseline.first_at < self.params.warmup_s:
            return []
        signal = entry_signal(deviation, self.params.entry_bps)
        if signal is None or not self._tradeable(view):
            return []
        return self._open(signal.direction, view, deviation, wall_now)

    def _tradeable(self, view: MarketView) -> bool:
        for book in (view.krw_leg, view.usdt_leg):
            assert book is not None
            if book.crossed:
                self.refusals["crossed"] += 1
                return False
            if view.at - book.received_at > self.params.max_book_age_s:
                self.refusals["stale"] += 1
                return False
            if not book.bids or not book.asks:
                self.refusals["empty"] += 1
                return False
        return True

    # -- legs --------------------------------------------------------------------------------------

    def _open(self, direction: str, view: MarketView, deviation: float, wall_now: str) -> list[FillEvent]:
        assert view.krw_leg is not None and view.usdt_leg is not None and view.premium_bps is not None
        pos = _Position(self.next_trade_id, direction, view.at, view.premium_bps)
        self.next_trade_id += 1
        qty = self.params.order_qty_btc
        krw_side, usdt_side = (SELL, BUY) if direction == SELL_KRW else (BUY, SELL)
        events = [
            self._leg(pos, "entry", view.krw_leg, krw_side, qty, view, deviation, wall_now),
            self._leg(pos, "entry", view.usdt_leg, usdt_side, qty, view, deviation, wall_now),
        ]
        if pos.krw_btc == 0 and pos.usdt_btc == 0:
            return events  # nothing filled on either leg: no position to manage
        self.open_trade = pos
        self.entries += 1
        return events

    def _close(self, pos: _Position, view: MarketView, deviation: float, reason: str,
               wall_now: str) -> list[FillEvent]:
        assert view.krw_leg is not None and view.usdt_leg is not None and view.fx is not None
        events = []
        for book, held in ((view.krw_leg, pos.krw_btc), (view.usdt_leg, pos.usdt_btc)):
            if held != 0:
                side = SELL if held > 0 else BUY
                events.append(self._leg(pos, "exit", book, side, abs(held), view, deviation, wall_now, reason))
        pnl = self._trade_pnl(pos, view)
        self.realized_pnl_usdt += pnl
        self.trade_pnls.append(pnl)
        if events:
            events[-1] = attrs.evolve(events[-1], trade_pnl_usdt=pnl)
        self.open_trade = None
        self.exits += 1
        return events

    def _trade_pnl(self, pos: _Position, view: MarketView) -> float:
        assert view.krw_leg is not None and view.usdt_leg is not None and view.fx is not None
        fx = view.fx.krw_per_usdt
        residual = pos.krw_btc * (view.krw_leg.mid or 0.0) / fx + pos.usdt_btc * (view.usdt_leg.mid or 0.0)
        return pos.usdt_cash + pos.krw_cash / fx + residual

    def unrealized_pnl_usdt(self) -> float:
        if self.open_trade is None or self.last_view is None or self.last_view.fx is None:
            return 0.0
        return self._trade_pnl(self.open_trade, self.last_view)

    def _leg(self, pos: _Position, leg: str, book: BookView, side: str, qty: float, view: MarketView,
             deviation: float, wall_now: str, reason: str | None = None) -> FillEvent:
        assert view.fx is not None and view.premium_bps is not None
        fill: Fill = self.fill_model.fill(book, side, qty)
        signed = fill.filled_qty if side == BUY else -fill.filled_qty
        cash = -signed * (fill.avg_price or 0.0)
        krw_leg = book is view.krw_leg
        if krw_leg:
            pos.krw_btc += signed
            pos.krw_cash += cash
        else:
            pos.usdt_btc += signed
            pos.usdt_cash += cash
        quote = "KRW" if krw_leg else "USDT"
        venue_bal = self.balances.setdefault(book.venue, {"BTC": 0.0, quote: 0.0})
        venue_bal["BTC"] += signed
        venue_bal[quote] += cash
        self.fills_by_side[side] += 1
        self.available_volume[side].append(fill.available_volume)
        return FillEvent(
            t_s=round(view.at - self.started_at, 6), ts_utc=wall_now, session_id=self.session_id,
            trade_id=pos.trade_id, leg=leg, venue=book.venue, symbol=book.symbol, side=side,
            order_qty=fill.order_qty, filled_qty=fill.filled_qty, fill_ratio=fill.fill_ratio,
            available_volume=fill.available_volume, limit_price=fill.limit_price, avg_price=fill.avg_price,
            best_price=fill.best_price, slippage_bps=fill.slippage_bps, quote_ccy=quote,
            entry_bps=self.params.entry_bps, tp_bps=self.params.tp_bps, fill_model=self.fill_model.name,
            l2_source=self.l2_source, book_age_ms=round((view.at - book.received_at) * 1e3, 3),
            fx_krw_per_usdt=view.fx.krw_per_usdt, fx_source=view.fx.source,
            fx_age_ms=round((view.at - view.fx.observed_at) * 1e3, 3), premium_bps=view.premium_bps,
            deviation_bps=deviation, exit_reason=reason,
        )
