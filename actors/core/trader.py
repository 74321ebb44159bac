"""The executor's decisions: signals -> two-leg orders -> fills -> fill events, positions, PnL.

Pure and deterministic: the same market views (and seed) give the same fill events. All state is in
one ``Trader``, which the executor shell keeps outside its restart loop.

Orders have latency: a leg decided at ``t`` arrives at ``t + latency`` (fixed, or sampled from a
seeded generator) and meets the book as it is then: the executor calls ``on_timer`` at the arrival
time and the leg fills against the latest view, minus the liquidity our own earlier fills took.

Leg risk: when the two entry legs fill different quantities the trade is imbalanced; ``hedge``
trades the difference back on the venue of the larger leg (a third fill event, leg "hedge"),
``carry`` keeps it (reported, marked to market). With ``hedge``, an entry's executable premium is net of
the expected cost of that hedge: what the fill model expects the smaller leg to leave unmatched, traded
back across the spread with the fee twice (``strategy.hedge_cost_bps``).

Flat: a trade is done only when what it holds on each venue is dust, below the venue's minimum order
(``Lots``). Exit legs ask for exactly what is held (a Binance BUY for more, its BTC fee taken from what it
buys); what they leave unfilled is re-sent as exit legs on later views (phase ``working``, at most
``strategy.exit_retries`` times), then hedged on the depth (``unwinding``), each leg within the risk
limits (its notional, the balances), until flat. Dust a trade leaves is counted per venue.

PnL of a trade, in USDT: each venue's cash flow net of fees (KRW converted at the FX rate at exit,
BTC fees at the venue's mid), plus BTC left over valued at each venue's mid at exit. In KRW: the
same at the exit FX rate. Trades still open when the session ends are marked to market, not closed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from types import MappingProxyType
from typing import Mapping

import attrs

from actors.core.book import BookView, Level
from actors.core.fills import (
    BUY,
    SELL,
    Fees,
    Fill,
    FillModel,
    LiquidityMemory,
    Lots,
    SimpleFillModel,
    limit_price,
    walk,
)
from actors.core.kpi import RunningStats, Spread, Values
from actors.core.l2source import MockBook, leg_levels
from actors.core.ledger import FlowTotals, InventoryLog, InventorySample, inventory_sample, marks_of
from actors.core.market import MarketView
from actors.core.portfolio import Portfolio
from actors.core.refusals import Refusal
from actors.core.risk import RiskLimits, book_problem
from actors.core.sizing import NoDrift, SlippageDrift, clearing_size, depth, within_limit
from actors.core.strategy import (
    Baseline,
    StrategyParams,
    entry_signal,
    executable_premiums,
    exit_signal,
    hedge_costs,
    net_of,
)
from actors.core.trade import EXITING, Order, Step, Trade
from actors.core.trader_outputs import FillEvent, TraderStatistics, statistics_of
from actors.core.vocabulary import (
    Currency,
    Direction,
    HedgeReason,
    L2Source,
    Leg,
    LegRisk,
    Side,
    Sizing,
    TradePhase,
    Venue,
    Zone,
)


@attrs.frozen
class ExecutionParams:
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # each leg's latency is uniform in latency_ms ± this
    leg_risk: LegRisk = attrs.field(default=LegRisk.HEDGE, converter=LegRisk)
    fees: Fees = attrs.field(factory=Fees)
    lots: Lots = attrs.field(factory=Lots)  # each venue's minimum order: smaller remainders are dust


@attrs.define
class Trader:
    params: StrategyParams
    session_id: str
    started_at: float
    portfolio: Portfolio
    fill_model: FillModel = attrs.field(factory=SimpleFillModel)
    execution: ExecutionParams = attrs.field(factory=ExecutionParams)
    risk: RiskLimits = attrs.field(factory=RiskLimits)
    seed: int = 0
    l2_source: L2Source = attrs.field(default=L2Source.MULTI, converter=L2Source)
    drift: SlippageDrift = attrs.field(factory=NoDrift)  # expected slippage beyond the walk's prediction
    baseline: Baseline = attrs.field(init=False)
    memory: LiquidityMemory = attrs.field(factory=LiquidityMemory)
    trades: dict[int, Trade] = attrs.field(factory=dict)
    pending: list[Order] = attrs.field(factory=list)
    next_trade_id: int = 1
    entries: int = 0
    exits: int = 0
    fills_by_side: Counter[Side] = attrs.field(factory=Counter)
    fills_by_zone: Counter[Zone] = attrs.field(factory=Counter)
    refusals: Counter[Refusal] = attrs.field(factory=Counter)
    realized_pnl_usdt: float = 0.0
    realized_pnl_krw: float = 0.0
    trade_pnls: RunningStats = attrs.field(factory=RunningStats)
    available_volume: dict[str, RunningStats] = attrs.field(factory=lambda: {BUY: RunningStats(), SELL: RunningStats()})
    zone_ratios: dict[Zone, dict[Side, RunningStats]] = attrs.field(factory=dict)
    fill_ratios: dict[Side, Values] = attrs.field(factory=lambda: {BUY: Values(), SELL: Values()})  # every leg
    slippages: dict[Side, Values] = attrs.field(factory=lambda: {BUY: Values(), SELL: Values()})  # legs that filled
    risk_stopped: str | None = None
    last_view: MarketView | None = None
    children_sent: int = 0  # child orders sent (a trade that is not split sends one)
    parents_stopped: int = 0  # split trades stopped before their last child: the premium closed
    planned_qty_btc: float = 0.0  # the trades' planned sizes, summed
    entry_filled_btc: float = 0.0  # entry legs' filled quantity, summed over both legs
    dust_btc: dict[str, float] = attrs.field(factory=dict)  # venue -> BTC closed trades left below its minimum order
    resent_legs: int = 0  # exit legs sent again for what an exit left unfilled
    unwind_legs: int = 0  # hedge legs sent for what the exit and its re-sends left
    trades_worked: int = 0  # closed trades whose exit needed re-sends or unwind legs
    flows: FlowTotals = attrs.field(factory=FlowTotals)  # every fill's flows and fees (actors.core.ledger)
    inventory: InventoryLog = attrs.field(factory=InventoryLog)  # the balances' change over time, marked
    _rng: random.Random = attrs.field(init=False)
    _mock: MockBook | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.baseline = Baseline(self.params.baseline_halflife_s)
        self._rng = random.Random(self.seed)
        self._mock = MockBook(self.seed + 7) if self.l2_source is L2Source.MOCK else None

    def stop_entries(self, reason: str) -> None:
        """No new trades from now on (exits and legs in flight go on); ``risk_stopped`` says why."""
        if self.risk_stopped is None:
            self.risk_stopped = reason

    # -- clock and views ---------------------------------------------------------------------------

    def due_at(self) -> float | None:
        """The next time something is due: a leg's arrival, or the next child of a split trade (once the
        legs of the one before are done)."""
        children = (t.next_child_at for t in self.trades.values() if t.next_child_at is not None and not t.pending)
        return min((*(o.arrive_at for o in self.pending), *children), default=None)

    def on_timer(self, now: float, wall_now: str) -> list[FillEvent]:
        if self.last_view is None:
            return []
        events = self._execute_due(now, self.last_view, wall_now)
        if self._children_due(now, self.last_view, events):
            events += self._execute_due(now, self.last_view, wall_now)
        return events

    def on_view(self, view: MarketView, wall_now: str) -> list[FillEvent]:
        events = []
        if self.last_view is not None:  # legs that arrived before this update met the previous book
            events += self._execute_due(view.at, self.last_view, wall_now, strictly_before=True)
        self.last_view = view
        self._sample_inventory(view)
        if view.premium_bps is not None:
            self._children_due(view.at, view, events)
            events += self._decide(view)
        events += self._execute_due(view.at, view, wall_now)
        return events

    # -- decisions ---------------------------------------------------------------------------------

    def _premiums(self, view: MarketView, qty: float | None = None) -> tuple[float | None, float | None]:
        """(sell_krw, buy_krw) executable premiums for ``qty`` (default: the signal's size), fees and the
        drift model's expected slippage included."""
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None and view.fx is not None
        fees = self.execution.fees
        qty = self.params.signal_qty() if qty is None else qty
        sell, buy = executable_premiums(
            krw.bids,
            krw.asks,
            usdt.bids,
            usdt.asks,
            qty,
            view.fx.krw_per_usdt,
            fees.rate_bps(krw.venue),
            fees.rate_bps(usdt.venue),
        )
        if isinstance(self.drift, NoDrift):
            return sell, buy
        d = self.drift.expected_bps
        if sell is not None:  # sell KRW, buy USDT: worse fills lower what the trade captures
            sell -= d(krw.venue, SELL, qty) + d(usdt.venue, BUY, qty)
        if buy is not None:
            buy += d(krw.venue, BUY, qty) + d(usdt.venue, SELL, qty)
        return sell, buy

    def _decide(self, view: MarketView) -> list[FillEvent]:
        assert view.premium_bps is not None
        if not abs(view.premium_bps) <= self.risk.max_premium_bps:
            # bad data, not an opportunity: no order on it, and the baseline does not learn from it
            self.refusals[Refusal.PREMIUM_BAND] += 1
            return []
        baseline = self.baseline.update(view.premium_bps, view.at)
        deviation = view.premium_bps - baseline
        sell_krw, buy_krw = self._premiums(view)
        for trade in list(self.trades.values()):
            closing = buy_krw if trade.direction is Direction.SELL_KRW else sell_krw
            if trade.phase in (TradePhase.WORKING, TradePhase.UNWINDING):
                if not trade.pending and self._tradeable(view):
                    self._work(trade, view, deviation, closing)
                continue
            if trade.phase is not TradePhase.OPEN:
                continue
            close = exit_signal(
                trade.direction,
                trade.entry_exec_bps,
                sell_krw,
                buy_krw,
                view.at - trade.opened_at,
                trade.zone.tp_bps,
                self.params.max_hold_s,
            )
            if close is not None and self._tradeable(view):
                self._send_exit(trade, view, deviation, closing, close.reason)
        if self.trades:
            return []  # one trade at a time
        if self.baseline.first_at is None or view.at - self.baseline.first_at < self.params.warmup_s:
            self.refusals[Refusal.WARMUP] += 1
            return []
        zone = self.params.zone(self.next_trade_id - 1)
        costs = self._hedge_costs(view, zone, self.params.signal_qty())
        signal = entry_signal(baseline, *net_of(sell_krw, buy_krw, costs), zone.entry_bps)
        if signal is None:
            # the order size is not executable on the visible depth, or its premium is inside the threshold, or
            # it is beyond the threshold only before the expected cost of hedging what will not fill
            if entry_signal(baseline, sell_krw, buy_krw, zone.entry_bps) is not None:
                self.refusals[Refusal.HEDGE_COST] += 1
            else:
                self.refusals[Refusal.THIN_BOOKS if sell_krw is None and buy_krw is None else Refusal.BELOW_ENTRY] += 1
            return []
        if not self._tradeable(view):
            return []
        direction = signal.direction
        cost = costs[direction]
        threshold = (
            baseline + zone.entry_bps + cost if direction is Direction.SELL_KRW else baseline - zone.entry_bps - cost
        )
        qty = self._size(view, direction, threshold)
        if qty is None or not self._within_limits(view, direction, qty):
            return []
        if self.params.sizing is Sizing.DEPTH:  # the trade's premium is the one at its size
            sell_krw, buy_krw = self._premiums(view, qty)
            costs = self._hedge_costs(view, zone, qty)
            cost = costs[direction]
        exec_bps = net_of(sell_krw, buy_krw, costs)[0 if direction is Direction.SELL_KRW else 1]
        assert exec_bps is not None
        slices = self.params.slices
        trade = Trade(
            self.next_trade_id,
            direction,
            zone,
            view.at,
            exec_bps,
            planned_qty=qty,
            child_qty=qty / slices,
            children=slices,
            hedge_cost_bps=cost,
        )
        self.next_trade_id += 1
        self.trades[trade.trade_id] = trade
        self.entries += 1
        self.planned_qty_btc += qty
        self._send_child(trade, view, deviation, exec_bps)
        return []

    def _hedge_costs(self, view: MarketView, zone: Zone, qty: float) -> dict[Direction, float]:
        """The expected cost, in bps of the position an entry of ``qty`` in each direction holds, of hedging back
        what the fill model expects its smaller leg to leave unmatched (0 with ``leg_risk = "carry"``, which
        keeps it, and when both legs are expected to fill alike); inf when a leg is expected to fill nothing."""
        if self.execution.leg_risk is not LegRisk.HEDGE:
            return dict.fromkeys(Direction, 0.0)
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None
        fees, model = self.execution.fees, self.fill_model
        return hedge_costs(
            krw,
            usdt,
            {d: (model.expected_ratio(d.krw_side, zone), model.expected_ratio(d.usdt_side, zone)) for d in Direction},
            qty,
            fees.rate_bps(krw.venue),
            fees.rate_bps(usdt.venue),
        )

    # -- sizing and split entries ------------------------------------------------------------------

    def _reachable(self, view: MarketView, book: BookView, side: Side) -> tuple[Level, ...]:
        """The levels an order on ``book`` could take now, as the fill would see them (the L2 source's; the
        book's own with the mock source, whose levels are drawn at the fill), minus our own fills' liquidity,
        within the limit price."""
        if self.l2_source in (L2Source.MULTI, L2Source.MOCK):
            shown = book.asks if side == BUY else book.bids
        else:
            krw, usdt = view.krw_leg, view.usdt_leg
            assert krw is not None and usdt is not None
            shown = leg_levels(self.l2_source, book, {krw.venue: krw, usdt.venue: usdt}, side == BUY, view.at, None)
        levels = self.memory.effective(book.venue, side, shown)
        if not levels:
            return ()
        return within_limit(levels, side, limit_price(levels[0][0], side, self.params.max_slippage_bps))

    def _size(self, view: MarketView, direction: Direction, threshold_bps: float) -> float | None:
        """The trade's size: order_qty_btc, or with depth sizing the largest size up to max_order_qty_btc that
        clears ``threshold_bps`` with both books walked, capped by the participation share, balances and risk
        limits; None (counted as a refusal) when that is below min_order_qty_btc."""
        p = self.params
        if p.sizing is Sizing.FIXED:
            return p.order_qty_btc
        krw, usdt, fx = view.krw_leg, view.usdt_leg, view.fx
        assert krw is not None and usdt is not None and fx is not None
        krw_levels = self._reachable(view, krw, direction.krw_side)
        usdt_levels = self._reachable(view, usdt, direction.usdt_side)
        cap = min(
            p.max_order_qty_btc,
            p.max_depth_share * depth(krw_levels),
            p.max_depth_share * depth(usdt_levels),
            self._room(view, direction),
        )
        fees = self.execution.fees
        sell, buy = (krw_levels, usdt_levels) if direction is Direction.SELL_KRW else (usdt_levels, krw_levels)
        qty = clearing_size(
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
        if qty < p.min_order_qty_btc:
            self.refusals[Refusal.SIZE_BELOW_MIN] += 1
            return None
        return qty

    def _room(self, view: MarketView, direction: Direction) -> float:
        """The largest size balances and risk limits allow (``_within_limits`` checks the final size)."""
        assert view.krw_leg is not None and view.usdt_leg is not None
        room = self.risk.max_notional_usdt / (view.usdt_leg.mid or math.inf)
        fees = self.execution.fees
        for book, side in ((view.krw_leg, direction.krw_side), (view.usdt_leg, direction.usdt_side)):
            assets = self.portfolio.balances[book.venue]
            held = assets["BTC"] - self.portfolio.initial[book.venue]["BTC"]
            room = min(room, self.risk.max_position_btc - (held if side == BUY else -held))
            if side == SELL:
                room = min(room, assets["BTC"])
            else:
                worst = book.asks[0][0] * (1 + self.params.max_slippage_bps / 1e4)
                room = min(room, assets[Venue(book.venue).quote] / (worst * (1 + fees.rate_bps(book.venue) / 1e4)))
        return max(room, 0.0)

    def _send_child(
        self, trade: Trade, view: MarketView, deviation: float, exec_bps: float | None, at: float | None = None
    ) -> None:
        """Send the trade's next child order: its two entry legs (the last child takes what is left)."""
        trade.move(Step.CHILD_SENT)
        trade.children_sent += 1
        self.children_sent += 1
        last = trade.children_sent == trade.children
        qty = trade.planned_qty - trade.child_qty * (trade.children - 1) if last else trade.child_qty
        decided = view.at if at is None else max(at, view.at)
        trade.next_child_at = None if last else decided + self.params.slice_interval_ms / 1e3
        for on_krw, side in ((True, trade.direction.krw_side), (False, trade.direction.usdt_side)):
            self._send(
                trade,
                Leg.ENTRY,
                on_krw,
                side,
                qty,
                view,
                deviation,
                exec_bps,
                child=trade.children_sent,
                at=decided,
                hedge_cost=trade.hedge_cost_bps,
            )

    def _children_due(self, now: float, view: MarketView, events: list[FillEvent]) -> bool:
        """Send the children that are due if the premium still clears at their size on the books they meet;
        otherwise stop their parent there. True when a child was sent."""
        sent = False
        for trade in list(self.trades.values()):
            if trade.next_child_at is None or trade.pending or trade.next_child_at > now:
                continue
            exec_bps = self._child_premium(trade, view)
            if exec_bps is not None and view.premium_bps is not None:
                deviation = view.premium_bps - (self.baseline.value or 0.0)
                self._send_child(trade, view, deviation, exec_bps, at=now)
                sent = True
            else:
                trade.next_child_at = None
                self.parents_stopped += 1
                self._open(trade, view, events)
        return sent

    def _child_premium(self, trade: Trade, view: MarketView) -> float | None:
        """The executable premium of the trade's direction for its next child, on the books it meets minus
        what the earlier children took (liquidity memory); None when it no longer clears the zone's entry
        threshold against the baseline, or the books or limits do not allow the child."""
        baseline = self.baseline.value
        if (
            baseline is None
            or not self._tradeable(view)
            or not self._within_limits(view, trade.direction, trade.child_qty)
        ):
            return None
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None
        sell_krw, buy_krw = self._premiums(
            attrs.evolve(
                view,
                krw_leg=attrs.evolve(
                    krw,
                    bids=self.memory.effective(krw.venue, SELL, krw.bids),
                    asks=self.memory.effective(krw.venue, BUY, krw.asks),
                ),
                usdt_leg=attrs.evolve(
                    usdt,
                    bids=self.memory.effective(usdt.venue, SELL, usdt.bids),
                    asks=self.memory.effective(usdt.venue, BUY, usdt.asks),
                ),
            ),
            trade.child_qty,
        )
        entry = trade.zone.entry_bps
        sell_krw, buy_krw = net_of(sell_krw, buy_krw, self._hedge_costs(view, trade.zone, trade.child_qty))
        if trade.direction is Direction.SELL_KRW:
            return sell_krw if sell_krw is not None and sell_krw - baseline >= entry else None
        return buy_krw if buy_krw is not None and baseline - buy_krw >= entry else None

    def _tradeable(self, view: MarketView) -> bool:
        """Whether orders may be sent on this view at all (entries and exits alike): both books present,
        fresh, uncrossed and in price order (the premium's sanity band is checked before any decision)."""
        for book in (view.krw_leg, view.usdt_leg):
            assert book is not None
            problem = book_problem(book, view.at, self.params.max_book_age_s)
            if problem is not None:
                self.refusals[problem] += 1
                return False
        return True

    def _within_limits(self, view: MarketView, direction: Direction, qty: float) -> bool:
        assert view.krw_leg is not None and view.usdt_leg is not None and view.fx is not None
        risk = self.risk
        if self.risk_stopped is not None:
            self.refusals[Refusal.RISK_STOPPED] += 1
            return False
        if self.realized_pnl_usdt + self.unrealized_pnl_usdt() <= -risk.max_loss_usdt:
            self.risk_stopped = (
                f"max_loss: PnL {self.realized_pnl_usdt + self.unrealized_pnl_usdt():.2f} USDT "
                f"reached -{risk.max_loss_usdt:g}; no new entries"
            )
            self.refusals[Refusal.RISK_STOPPED] += 1
            return False
        if qty * (view.usdt_leg.mid or 0.0) > risk.max_notional_usdt:
            self.refusals[Refusal.MAX_NOTIONAL] += 1
            return False
        for book, side in ((view.krw_leg, direction.krw_side), (view.usdt_leg, direction.usdt_side)):
            held = self.portfolio.balances[book.venue]["BTC"] - self.portfolio.initial[book.venue]["BTC"]
            if abs(held + (qty if side == BUY else -qty)) > risk.max_position_btc:
                self.refusals[Refusal.MAX_POSITION] += 1
                return False
            if self._shortfall(book, side, qty) is not None:
                self.refusals[Refusal.BUDGET] += 1
                return False
        return True

    def _shortfall(self, book: BookView, side: Side, qty: float) -> str | None:
        """Why the balances cannot pay for ``qty`` on ``book`` (a BUY at the limit price, its fee included), or
        None."""
        price = book.asks[0][0] if side == BUY else book.bids[0][0]
        quote = Venue(book.venue).quote
        fee, fee_ccy = self.execution.fees.charge(book.venue, side, qty, price)
        return self.portfolio.shortfall(
            book.venue,
            side,
            qty,
            price * (1 + self.params.max_slippage_bps / 1e4) if side == BUY else price,
            quote,
            fee if fee_ccy == quote else 0.0,
        )

    def _latency_s(self) -> float:
        ex = self.execution
        ms = ex.latency_ms + (
            self._rng.uniform(-ex.latency_jitter_ms, ex.latency_jitter_ms) if ex.latency_jitter_ms else 0.0
        )
        return max(ms, 0.0) / 1e3

    def _send(
        self,
        trade: Trade,
        leg: Leg,
        on_krw: bool,
        side: Side,
        qty: float,
        view: MarketView,
        deviation: float,
        exec_bps: float | None,
        reason: str | None = None,
        child: int = 0,
        at: float | None = None,
        attempt: int = 0,
        hedge_cost: float | None = None,
    ) -> None:
        """Send one leg, decided at ``at`` (default: the view's time; later when the leg is decided on a
        timer, after the view); the walk of the book it is decided on predicts its slippage."""
        decided = view.at if at is None else max(at, view.at)
        assert view.premium_bps is not None
        book = view.krw_leg if on_krw else view.usdt_leg
        assert book is not None
        levels = self._reachable(view, book, side)
        predicted = walk(levels, side, qty, levels[-1][0]) if levels else None
        trade.pending += 1
        self.pending.append(
            Order(
                trade.trade_id,
                leg,
                on_krw,
                side,
                qty,
                decided,
                decided + self._latency_s(),
                view.premium_bps,
                exec_bps,
                deviation,
                reason,
                trade.planned_qty if leg is Leg.ENTRY else qty,
                None if predicted is None or predicted.filled_qty <= 0 else predicted.slippage_bps,
                0 if predicted is None else predicted.levels_used,
                child,
                levels[0][0] if levels else None,
                None if predicted is None else max(predicted.available_volume - predicted.filled_qty, 0.0),
                attempt,
                hedge_cost,
            )
        )

    # -- exits: until flat ---------------------------------------------------------------------------

    def _send_exit(self, trade: Trade, view: MarketView, deviation: float, exec_bps: float | None, reason: str) -> None:
        trade.move(Step.EXIT_SENT)
        trade.exit_reason = reason
        trade.exit_rounds = 1
        self._send_closing(trade, view, deviation, exec_bps, Leg.EXIT, reason)
        if trade.pending == 0:  # nothing could be sent (the balances): worked on later views
            self._exit_done(trade, view, None)

    def _work(self, trade: Trade, view: MarketView, deviation: float, exec_bps: float | None) -> None:
        """Send what an exit left again: as exit legs while ``exit_retries`` allows, then as hedge legs that take
        what the depth allows (each within the notional limit)."""
        if trade.phase is TradePhase.WORKING and trade.exit_rounds <= self.params.exit_retries:
            sent = self._send_closing(
                trade, view, deviation, exec_bps, Leg.EXIT, trade.exit_reason, trade.exit_rounds + 1
            )
            if sent:
                trade.exit_rounds += 1
                self.resent_legs += sent
                trade.move(Step.EXIT_RESENT)
            return
        sent = self._send_closing(trade, view, deviation, exec_bps, Leg.HEDGE, HedgeReason.UNFILLED_EXIT)
        if sent:
            trade.unwinds += sent
            self.unwind_legs += sent
            trade.move(Step.UNWIND_SENT)

    def _send_closing(
        self,
        trade: Trade,
        view: MarketView,
        deviation: float,
        exec_bps: float | None,
        leg: Leg,
        reason: str | None,
        attempt: int = 1,
    ) -> int:
        """Send, on each venue where the trade holds more than dust, the leg that leaves it flat there (a Binance
        BUY asks for more: its fee is taken from the BTC it buys); a hedge leg at most the notional limit. A leg
        the balances cannot pay for is not sent (refusal ``exit_budget``). The number of legs sent."""
        sent = 0
        for on_krw in (True, False):
            book = view.krw_leg if on_krw else view.usdt_leg
            assert book is not None and view.usdt_leg is not None
            order = trade.closing(on_krw, book.venue, self.execution.fees, self.execution.lots)
            if order is None:
                continue
            side, qty = order
            if leg is Leg.HEDGE:
                qty = min(qty, self.risk.max_notional_usdt / (view.usdt_leg.mid or math.inf))
            if self._shortfall(book, side, qty) is not None:
                self.refusals[Refusal.EXIT_BUDGET] += 1
                continue
            self._send(
                trade,
                leg,
                on_krw,
                side,
                qty,
                view,
                deviation,
                exec_bps,
                reason,
                attempt=attempt if leg is Leg.EXIT else 0,
            )
            sent += 1
        return sent

    def _flat(self, trade: Trade, view: MarketView) -> bool:
        assert view.krw_leg is not None and view.usdt_leg is not None
        return trade.is_flat(view.krw_leg.venue, view.usdt_leg.venue, self.execution.lots)

    def _exit_done(self, trade: Trade, view: MarketView, events: list[FillEvent] | None) -> None:
        """The legs of an exit round are done: flat, the trade is booked; otherwise it is worked on later views."""
        if self._flat(trade, view):
            self._finish(trade, view, events, Step.CLOSED)
        else:
            trade.move(Step.EXIT_SHORT)

    # -- execution ---------------------------------------------------------------------------------

    def _execute_due(
        self, now: float, view: MarketView, wall_now: str, strictly_before: bool = False
    ) -> list[FillEvent]:
        events: list[FillEvent] = []
        while True:  # a leg can send another one (a hedge) that is already due with zero latency
            due = [o for o in self.pending if (o.arrive_at < now if strictly_before else o.arrive_at <= now)]
            if not due:
                return events
            due.sort(key=lambda o: (o.arrive_at, o.trade_id, not o.on_krw))
            self.pending = [o for o in self.pending if o not in due]
            for order in due:
                events.append(self._fill(order, view, wall_now))
                trade = self.trades[order.trade_id]
                trade.pending -= 1
                if trade.pending == 0:
                    self._advance(trade, view, order, events)

    def _fill(self, order: Order, view: MarketView, wall_now: str) -> FillEvent:
        book = view.krw_leg if order.on_krw else view.usdt_leg
        assert book is not None and view.fx is not None and view.krw_leg is not None and view.usdt_leg is not None
        trade = self.trades[order.trade_id]
        shown = leg_levels(
            self.l2_source,
            book,
            {view.krw_leg.venue: view.krw_leg, view.usdt_leg.venue: view.usdt_leg},
            order.side == BUY,
            max(view.at, order.arrive_at),
            self._mock,
        )
        levels = self.memory.effective(book.venue, order.side, shown)
        best = shown[0][0] if shown else float("nan")
        limit = limit_price(best, order.side, self.params.max_slippage_bps)
        if not levels:
            fill = Fill(order.side, order.qty, 0.0, 0.0, limit, best, None, 0.0, 0)
        elif order.leg is Leg.HEDGE:
            fill = walk(levels, order.side, order.qty, limit)  # a hedge takes what the depth allows
        else:
            fill = self.fill_model.fill(levels, order.side, order.qty, limit, trade.zone)
        self.memory.record(book.venue, order.side, shown, fill)
        quote = Venue(book.venue).quote
        fee, fee_ccy = (
            (0.0, quote)
            if fill.filled_qty == 0
            else self.execution.fees.charge(book.venue, order.side, fill.filled_qty, fill.avg_price or 0.0)
        )
        if fill.filled_qty > 0:
            self.portfolio.apply(book.venue, order.side, fill.filled_qty, fill.avg_price or 0.0, quote, fee, fee_ccy)
        sign = 1 if order.side == BUY else -1
        btc = sign * fill.filled_qty - (fee if fee_ccy is Currency.BTC else 0.0)
        cash = -sign * fill.filled_qty * (fill.avg_price or 0.0) - (fee if fee_ccy == quote else 0.0)
        if order.on_krw:
            trade.krw_btc += btc
            trade.krw_cash += cash
            trade.krw_price = fill.avg_price or trade.krw_price
        else:
            trade.usdt_btc += btc
            trade.usdt_cash += cash
            trade.usdt_price = fill.avg_price or trade.usdt_price
        zone = trade.zone
        self.fills_by_side[order.side] += 1
        self.fills_by_zone[zone] += 1
        self.available_volume[order.side].add(fill.available_volume)
        self.fill_ratios[order.side].add(fill.fill_ratio)
        if fill.filled_qty > 0:
            self.slippages[order.side].add(fill.slippage_bps)
        if order.leg is not Leg.HEDGE:
            sides = self.zone_ratios.setdefault(zone, {BUY: RunningStats(), SELL: RunningStats()})
            sides[order.side].add(fill.fill_ratio)
        if order.leg is Leg.ENTRY:
            self.entry_filled_btc += fill.filled_qty
        assert view.premium_bps is not None
        event = FillEvent(
            t_s=round(max(view.at, order.arrive_at) - self.started_at, 6),
            ts_utc=wall_now,
            session_id=self.session_id,
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
            fee=fee,
            fee_ccy=fee_ccy,
            quote_ccy=quote,
            zone=zone.label,
            entry_bps=zone.entry_bps,
            tp_bps=zone.tp_bps,
            fill_model="simple" if order.leg is Leg.HEDGE else self.fill_model.name,
            l2_source=self.l2_source,
            decided_t_s=round(order.decided_at - self.started_at, 6),
            latency_ms=round((order.arrive_at - order.decided_at) * 1e3, 6),
            book_age_ms=round((max(view.at, order.arrive_at) - book.received_at) * 1e3, 3),
            fx_krw_per_usdt=view.fx.krw_per_usdt,
            fx_source=view.fx.source,
            fx_age_ms=round((view.at - view.fx.observed_at) * 1e3, 3),
            premium_bps=order.premium_bps,
            exec_premium_bps=order.exec_premium_bps,
            deviation_bps=order.deviation_bps,
            exit_reason=order.reason,
            qty_planned=order.qty_planned,
            predicted_slippage_bps=order.predicted_slippage_bps,
            levels_walked=order.levels_walked,
            predicted_depth_left_btc=order.depth_left,
            parent_id=order.trade_id,
            child=order.child,
            decision_price=order.decision_price,
            attempt=order.attempt,
            position_btc=trade.krw_btc if order.on_krw else trade.usdt_btc,
            hedge_cost_bps=order.hedge_cost_bps,
        )
        self.flows.add(event)
        return event

    def _advance(self, trade: Trade, view: MarketView, last: Order, events: list[FillEvent]) -> None:
        """All legs of a step are done: hedge or carry an imbalance, or see whether an exit left the trade flat."""
        if trade.phase in EXITING:
            self._exit_done(trade, view, events)
            return
        imbalance = trade.krw_btc + trade.usdt_btc
        on_krw = (trade.krw_btc > 0) == (imbalance > 0)  # unwind on the venue of the larger leg
        book = view.krw_leg if on_krw else view.usdt_leg
        assert book is not None
        price = trade.krw_price if on_krw else trade.usdt_price
        if (
            last.leg is Leg.ENTRY
            and self.execution.leg_risk is LegRisk.HEDGE
            and not self.execution.lots.is_dust(book.venue, imbalance, price)
        ):
            # the hedge follows what the legs of this child actually filled; an imbalance below the venue's
            # minimum order cannot be hedged: it is carried, and the exit, which flattens each venue, takes it
            side = SELL if imbalance > 0 else BUY
            trade.move(Step.HEDGE_SENT)
            self._send(
                trade,
                Leg.HEDGE,
                on_krw,
                side,
                self.execution.fees.order_for(book.venue, side, abs(imbalance)),
                view,
                last.deviation_bps,
                last.exec_premium_bps,
                HedgeReason.IMBALANCE,
                child=last.child,
                at=last.arrive_at,  # decided when the legs it follows filled, not at the view they met
            )
            return
        if trade.next_child_at is None:  # no child to come: the entry is done
            self._open(trade, view, events)

    def _open(self, trade: Trade, view: MarketView, events: list[FillEvent]) -> None:
        """The entry is done (every child sent and filled, or the parent stopped): hold what it got, or end a
        trade that holds nothing but dust."""
        if self._flat(trade, view):
            self._finish(trade, view, events, Step.NOTHING_FILLED)  # no position to manage
            return
        trade.imbalance_btc = trade.krw_btc + trade.usdt_btc  # carried (by choice, or what a hedge could not take)
        trade.move(Step.OPENED)

    def _finish(self, trade: Trade, view: MarketView, events: list[FillEvent] | None, step: Step) -> None:
        """Book a trade that is flat (on both venues, dust apart, which is counted per venue)."""
        assert view.krw_leg is not None and view.usdt_leg is not None
        if step is Step.CLOSED:
            self.exits += 1
            if trade.exit_rounds > 1 or trade.unwinds:
                self.trades_worked += 1
        trade.move(step)
        for venue, held in ((view.krw_leg.venue, trade.krw_btc), (view.usdt_leg.venue, trade.usdt_btc)):
            if held:
                self.dust_btc[venue] = self.dust_btc.get(venue, 0.0) + held
        usdt, krw = self._trade_pnl(trade, view)
        self.realized_pnl_usdt += usdt
        self.realized_pnl_krw += krw
        self.trade_pnls.add(usdt)
        if events:
            events[-1] = attrs.evolve(events[-1], trade_pnl_usdt=usdt, trade_pnl_krw=krw)
        del self.trades[trade.trade_id]

    def _trade_pnl(self, trade: Trade, view: MarketView) -> tuple[float, float]:
        assert view.krw_leg is not None and view.usdt_leg is not None and view.fx is not None
        fx = view.fx.krw_per_usdt
        usdt = (
            trade.usdt_cash
            + trade.krw_cash / fx
            + trade.krw_btc * (view.krw_leg.mid or 0.0) / fx
            + trade.usdt_btc * (view.usdt_leg.mid or 0.0)
        )
        return usdt, usdt * fx

    @property
    def carried_imbalance_btc(self) -> float:
        """The net BTC the open trades hold, both venues summed: what their legs do not match (carried by
        choice, below a minimum order, or left by an exit still being worked)."""
        return sum((t.krw_btc + t.usdt_btc for t in self.trades.values()), 0.0)

    def open_btc(self) -> dict[str, float]:
        """Per venue, the BTC the open trades hold there."""
        view = self.last_view
        if view is None or view.krw_leg is None or view.usdt_leg is None:
            return {}
        return {
            view.krw_leg.venue: sum((t.krw_btc for t in self.trades.values()), 0.0),
            view.usdt_leg.venue: sum((t.usdt_btc for t in self.trades.values()), 0.0),
        }

    def _sample_inventory(self, view: MarketView) -> None:
        t_s = view.at - self.started_at
        marks = marks_of(view) if self.inventory.due(t_s) else None
        if marks is not None:
            self.inventory.add(inventory_sample(round(t_s, 6), self.portfolio.initial, self.portfolio.balances, marks))

    def inventory_now(self) -> InventorySample | None:
        """The balances' change since the start, marked at the latest view; None before a whole view."""
        view = self.last_view
        marks = None if view is None else marks_of(view)
        if view is None or marks is None:
            return None
        return inventory_sample(
            round(view.at - self.started_at, 6), self.portfolio.initial, self.portfolio.balances, marks
        )

    def unrealized_pnl_usdt(self) -> float:
        """Open trades marked to mid at the latest view."""
        view = self.last_view
        if view is None or view.fx is None or view.krw_leg is None or view.usdt_leg is None:
            return 0.0
        return sum(self._trade_pnl(t, view)[0] for t in self.trades.values())

    # -- statistics --------------------------------------------------------------------------------

    def fill_spreads(self) -> tuple[Mapping[Side, Spread], Mapping[Side, Spread]]:
        """(fill ratio over every leg, slippage in bps over the legs that filled) per side, BUY first: the
        measures the report's "Fills per side" table reads from the fill events. Not in ``statistics()``,
        which the status line calls every second: a median sorts every value."""
        return (
            MappingProxyType({side: self.fill_ratios[side].spread() for side in (BUY, SELL)}),
            MappingProxyType({side: self.slippages[side].spread() for side in (BUY, SELL)}),
        )

    def statistics(self) -> TraderStatistics:
        """A frozen snapshot of everything the KPI file, the status line and the live view report."""
        return statistics_of(self)
