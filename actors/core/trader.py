"""The executor's decisions: market views -> entries, split children, exits worked until flat -> fill events.

Pure and deterministic: the same market views (and seeds) give the same fill events; the executor shell keeps
the one ``Trader`` outside its restart loop. The trader decides and holds the open trades; its parts own the
rest: ``Pricing`` (actors.core.pricing: a size's executable premiums, net of fees, drift and hedge cost),
``DepthSizer`` (actors.core.sizing: how large an entry), ``OrderChecks`` (actors.core.risk: what the books,
limits and balances allow), ``Execution`` (actors.core.execution: the legs in flight, their latency, how they
meet the books) and ``Accounts`` (actors.core.accounting: balances, PnL, everything counted, refusals too).

Leg risk: when the two entry legs fill different quantities the trade is imbalanced; ``hedge`` trades the
difference back on the venue of the larger leg (a third fill event, leg "hedge"), ``carry`` keeps it
(reported, marked to market). With ``hedge``, an entry's executable premium is net of the expected cost of
that hedge (``strategy.hedge_cost_bps``).

Flat: a trade is done only when what it holds on each venue is dust, below the venue's minimum order
(``Lots``). Exit legs ask for exactly what is held (a Binance BUY for more, its BTC fee taken from what it
buys); what they leave unfilled is re-sent as exit legs on later views (phase ``working``, at most
``strategy.exit_retries`` times), then hedged on the depth (``unwinding``), each leg within the risk limits
(its notional, the balances), until flat. Every move of a trade is in ``actors.core.trade.TRANSITIONS``.
"""

from __future__ import annotations

import math
from typing import Mapping

import attrs

from actors.core.accounting import Accounts, held_btc, marked_pnl_usdt
from actors.core.book import BookView
from actors.core.execution import Execution, ExecutionParams
from actors.core.fills import FillModel, SimpleFillModel
from actors.core.kpi import Spread
from actors.core.ledger import InventorySample
from actors.core.market import MarketView
from actors.core.portfolio import Portfolio
from actors.core.pricing import EntryGate, Pricing, no_entry, skimmed
from actors.core.refusals import Refusal
from actors.core.risk import OrderChecks, RiskLimits
from actors.core.sizing import DepthSizer, NoDrift, SlippageDrift
from actors.core.strategy import Baseline, StrategyParams, entry_signal, exit_signal, net_of
from actors.core.trade import EXITING, Order, Step, Trade
from actors.core.trader_outputs import FillEvent, TraderStatistics, fill_event, statistics_of
from actors.core.vocabulary import Direction, HedgeReason, L2Source, Leg, LegRisk, Side, Sizing, TradePhase


@attrs.define
class Trader:
    params: StrategyParams
    session_id: str
    started_at: float
    portfolio: Portfolio  # the balances at the start: its accounts own them from then on
    fill_model: FillModel = attrs.field(factory=SimpleFillModel)
    execution: ExecutionParams = attrs.field(factory=ExecutionParams)
    risk: RiskLimits = attrs.field(factory=RiskLimits)
    seed: int = 0  # the latency jitter's random stream
    l2_source: L2Source = attrs.field(default=L2Source.MULTI, converter=L2Source)
    drift: SlippageDrift = attrs.field(factory=NoDrift)  # expected slippage beyond the walk's prediction
    mock_seed: int = 0  # l2_source = "mock": the synthetic book's random stream
    # a market's caps across pairs (MarketTrader), asked before an entry or a child
    gate: EntryGate | None = attrs.field(default=None, eq=False, repr=False)
    # a view no entry can come of is refused before the books are walked (``pricing.skimmed``): a session's
    # traders do (``wiring.trader``, a market's pairs), with the full decision's outcome (tests/actors/test_skim.py)
    skim: bool = False
    baseline: Baseline = attrs.field(init=False)
    trades: dict[int, Trade] = attrs.field(factory=dict)  # open: held, or with legs in flight
    next_trade_id: int = 1
    risk_stopped: str | None = None
    last_view: MarketView | None = None
    accounts: Accounts = attrs.field(init=False)
    legs: Execution = attrs.field(init=False)
    pricing: Pricing = attrs.field(init=False)
    sizer: DepthSizer = attrs.field(init=False)
    checks: OrderChecks = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        p, ex = self.params, self.execution
        self.baseline = Baseline(p.baseline_halflife_s)
        self.accounts = Accounts(self.portfolio)
        self.legs = Execution(ex, self.fill_model, self.l2_source, p.max_slippage_bps, self.seed, self.mock_seed)
        self.pricing = Pricing(ex.fees, ex.leg_risk, self.fill_model, self.drift)
        self.sizer = DepthSizer(p, ex.fees, self.drift)
        self.checks = OrderChecks(self.risk, ex.fees, p.max_slippage_bps, p.max_book_age_s)

    def stop_entries(self, reason: str) -> None:
        """No new trades from now on (exits and legs in flight go on); ``risk_stopped`` says why."""
        if self.risk_stopped is None:
            self.risk_stopped = reason

    # -- clock and views ---------------------------------------------------------------------------

    def due_at(self) -> float | None:
        """The next time something is due: a leg's arrival, or the next child of a split trade (once the
        legs of the one before are done)."""
        times = [t.next_child_at for t in self.trades.values() if t.next_child_at is not None and not t.pending]
        arrival = self.legs.due_at()
        return min(times if arrival is None else [arrival, *times], default=None)

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
        self.accounts.sample_inventory(view, self.started_at)
        if view.premium_bps is not None:
            self._children_due(view.at, view, events)
            self._decide(view)
        events += self._execute_due(view.at, view, wall_now)
        return events

    # -- decisions ---------------------------------------------------------------------------------

    def _decide(self, view: MarketView) -> None:
        """Exits of the trades held, then (none held) an entry: on the premiums of the signal's size."""
        assert view.premium_bps is not None
        if not abs(view.premium_bps) <= self.risk.max_premium_bps:
            # bad data, not an opportunity: no order on it, and the baseline does not learn from it
            self.accounts.refuse(Refusal.PREMIUM_BAND)
            return
        baseline = self.baseline.update(view.premium_bps, view.at)
        deviation = view.premium_bps - baseline
        if self.skim and not self.trades and (skip := skimmed(self, view, deviation)) is not None:
            self.accounts.refuse(skip)
            return
        sell_krw, buy_krw = self.pricing.premiums(view, self.params.signal_qty())
        for trade in list(self.trades.values()):
            self._manage(trade, view, deviation, sell_krw, buy_krw)
        if not self.trades:  # one trade at a time
            self._enter(view, baseline, deviation, sell_krw, buy_krw)

    def _manage(
        self, trade: Trade, view: MarketView, deviation: float, sell_krw: float | None, buy_krw: float | None
    ) -> None:
        """A held trade: send its exit when the signal says so; work what an exit left (on the executable premium
        of the direction that closes it)."""
        closing = buy_krw if trade.direction is Direction.SELL_KRW else sell_krw
        if trade.phase in (TradePhase.WORKING, TradePhase.UNWINDING):
            if not trade.pending and self._tradeable(view):
                self._work(trade, view, deviation, closing)
            return
        if trade.phase is not TradePhase.OPEN:
            return
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

    def _enter(
        self, view: MarketView, baseline: float, deviation: float, sell_krw: float | None, buy_krw: float | None
    ) -> None:
        """Open a trade when the premium net of the expected hedge cost clears the next zone's threshold and the
        books, the size, the limits and the balances allow it; otherwise count why not."""
        first = self.baseline.first_at
        if first is None or view.at - first < self.params.warmup_s:
            self.accounts.refuse(Refusal.WARMUP)
            return
        zone = self.params.zone(self.next_trade_id - 1)
        costs = self.pricing.hedge_costs(view, zone, self.params.signal_qty())
        signal = entry_signal(baseline, *net_of(sell_krw, buy_krw, costs), zone.entry_bps)
        if signal is None:
            self.accounts.refuse(no_entry(baseline, sell_krw, buy_krw, zone))
            return
        if not self._tradeable(view):
            return
        direction, cost = signal.direction, costs[signal.direction]
        sells = direction is Direction.SELL_KRW
        threshold = baseline + zone.entry_bps + cost if sells else baseline - zone.entry_bps - cost
        qty = self._size(view, direction, threshold)
        if qty is None or not self._within_limits(view, direction, qty):
            return
        if self.params.sizing is Sizing.DEPTH:  # the trade's premium is the one at its size
            sell_krw, buy_krw = self.pricing.premiums(view, qty)
            costs = self.pricing.hedge_costs(view, zone, qty)
            cost = costs[direction]
        exec_bps = net_of(sell_krw, buy_krw, costs)[0 if sells else 1]
        assert exec_bps is not None
        slices = self.params.slices
        trade = Trade(
            trade_id=self.next_trade_id,
            direction=direction,
            zone=zone,
            opened_at=view.at,
            entry_exec_bps=exec_bps,
            planned_qty=qty,
            child_qty=qty / slices,
            children=slices,
            hedge_cost_bps=cost,
        )
        self.next_trade_id += 1
        self.trades[trade.trade_id] = trade
        self.accounts.opened(trade)
        self._send_child(trade, view, deviation, exec_bps)

    def _size(self, view: MarketView, direction: Direction, threshold_bps: float) -> float | None:
        """The trade's size: order_qty_btc, or with depth sizing the largest size up to max_order_qty_btc that
        clears ``threshold_bps`` with both books walked, capped by the participation share, balances and risk
        limits; None (counted as a refusal) when that is below min_order_qty_btc."""
        p = self.params
        if p.sizing is Sizing.FIXED:
            return p.order_qty_btc
        assert view.krw_leg is not None and view.usdt_leg is not None
        reachable = (
            self.legs.reachable(view, view.krw_leg, direction.krw_side),
            self.legs.reachable(view, view.usdt_leg, direction.usdt_side),
        )
        room = self.checks.room(self.accounts.portfolio, view, direction)
        qty = self.sizer.size(view, direction, threshold_bps, reachable, room)
        if qty < p.min_order_qty_btc:
            self.accounts.refuse(Refusal.SIZE_BELOW_MIN)
            return None
        return qty

    def _tradeable(self, view: MarketView) -> bool:
        """Whether orders may be sent on this view at all (entries and exits alike): both books present,
        fresh, uncrossed and in price order (the premium's sanity band is checked before any decision)."""
        problem = self.checks.books(view)
        if problem is not None:
            self.accounts.refuse(problem)
        return problem is None

    def _within_limits(self, view: MarketView, direction: Direction, qty: float) -> bool:
        """Whether an entry (or a child) of ``qty`` may be sent: no risk stop, the loss limit not reached (which
        stops new entries for good), the notional, positions and balances allowing it."""
        if self.risk_stopped is not None:
            self.accounts.refuse(Refusal.RISK_STOPPED)
            return False
        pnl = self.accounts.realized_pnl_usdt + self.unrealized_pnl_usdt()
        if pnl <= -self.risk.max_loss_usdt:
            self.risk_stopped = f"max_loss: PnL {pnl:.2f} USDT reached -{self.risk.max_loss_usdt:g}; no new entries"
            self.accounts.refuse(Refusal.RISK_STOPPED)
            return False
        refusal = None if self.gate is None else self.gate(view, qty)
        refusal = refusal or self.checks.refusal(self.accounts.portfolio, view, direction, qty)
        if refusal is not None:
            self.accounts.refuse(refusal)
            return False
        return True

    # -- split entries -----------------------------------------------------------------------------

    def _send_child(
        self, trade: Trade, view: MarketView, deviation: float, exec_bps: float | None, at: float | None = None
    ) -> None:
        """Send the trade's next child order: its two entry legs (the last child takes what is left)."""
        trade.move(Step.CHILD_SENT)
        trade.children_sent += 1
        self.accounts.child_sent()
        last = trade.children_sent == trade.children
        qty = trade.planned_qty - trade.child_qty * (trade.children - 1) if last else trade.child_qty
        decided = view.at if at is None else max(at, view.at)
        trade.next_child_at = None if last else decided + self.params.slice_interval_ms / 1e3
        for on_krw, side in ((True, trade.direction.krw_side), (False, trade.direction.usdt_side)):
            self.legs.send(
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
                self.accounts.parent_stopped()
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
        sell_krw, buy_krw = self.pricing.premiums(self.legs.after_our_fills(view), trade.child_qty)
        entry = trade.zone.entry_bps
        sell_krw, buy_krw = net_of(sell_krw, buy_krw, self.pricing.hedge_costs(view, trade.zone, trade.child_qty))
        if trade.direction is Direction.SELL_KRW:
            return sell_krw if sell_krw is not None and sell_krw - baseline >= entry else None
        return buy_krw if buy_krw is not None and baseline - buy_krw >= entry else None

    # -- legs --------------------------------------------------------------------------------------

    def _execute_due(
        self, now: float, view: MarketView, wall_now: str, strictly_before: bool = False
    ) -> list[FillEvent]:
        events: list[FillEvent] = []
        while True:  # a leg can send another one (a hedge) that is already due with zero latency
            due = self.legs.take_due(now, strictly_before)
            if not due:
                return events
            for order in due:
                trade = self.trades[order.trade_id]
                leg = self.legs.fill(order, view, trade.zone)
                self.accounts.record(leg, trade)
                events.append(
                    fill_event(
                        leg,
                        view,
                        trade,
                        session_id=self.session_id,
                        started_at=self.started_at,
                        wall_now=wall_now,
                        l2_source=self.l2_source,
                    )
                )
                trade.pending -= 1
                if trade.pending == 0:
                    self._advance(trade, view, order, events)

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
            side = Side.SELL if imbalance > 0 else Side.BUY
            trade.move(Step.HEDGE_SENT)
            self.legs.send(
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

    # -- exits: until flat -------------------------------------------------------------------------

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
                self.accounts.exit_resent(sent)
                trade.move(Step.EXIT_RESENT)
            return
        sent = self._send_closing(trade, view, deviation, exec_bps, Leg.HEDGE, HedgeReason.UNFILLED_EXIT)
        if sent:
            trade.unwinds += sent
            self.accounts.unwind_sent(sent)
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
            book: BookView | None = view.krw_leg if on_krw else view.usdt_leg
            assert book is not None and view.usdt_leg is not None
            order = trade.closing(on_krw, book.venue, self.execution.fees, self.execution.lots)
            if order is None:
                continue
            side, qty = order
            if leg is Leg.HEDGE:
                qty = min(qty, self.risk.max_notional_usdt / (view.usdt_leg.mid or math.inf))
            if self.checks.shortfall(self.accounts.portfolio, book, side, qty, view.pair.base) is not None:
                self.accounts.refuse(Refusal.EXIT_BUDGET)
                continue
            exit_round = attempt if leg is Leg.EXIT else 0
            self.legs.send(trade, leg, on_krw, side, qty, view, deviation, exec_bps, reason, attempt=exit_round)
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

    def _finish(self, trade: Trade, view: MarketView, events: list[FillEvent] | None, step: Step) -> None:
        """Book a trade that is flat (on both venues, dust apart, which is counted per venue); its last fill event
        carries its PnL."""
        trade.move(step)
        usdt, krw = self.accounts.book(trade, view, closed=step is Step.CLOSED)
        if events:
            events[-1] = attrs.evolve(events[-1], trade_pnl_usdt=usdt, trade_pnl_krw=krw)
        del self.trades[trade.trade_id]

    # -- what it holds, and its statistics ---------------------------------------------------------

    @property
    def carried_imbalance_btc(self) -> float:
        """The net BTC the open trades hold, both venues summed: what their legs do not match (carried by
        choice, below a minimum order, or left by an exit still being worked)."""
        return sum((t.krw_btc + t.usdt_btc for t in self.trades.values()), 0.0)

    def open_btc(self) -> dict[str, float]:
        """Per venue, the BTC the open trades hold there."""
        return held_btc(self.trades.values(), self.last_view)

    def unrealized_pnl_usdt(self) -> float:
        """Open trades marked to mid at the latest view."""
        return marked_pnl_usdt(self.trades.values(), self.last_view)

    def inventory_now(self) -> InventorySample | None:
        """The balances' change since the start, marked at the latest view; None before a whole view."""
        return self.accounts.inventory_now(self.last_view, self.started_at)

    def fill_spreads(self) -> tuple[Mapping[Side, Spread], Mapping[Side, Spread]]:
        """(fill ratio over every leg, slippage in bps over the legs that filled) per side, BUY first: the
        measures the report's "Fills per side" table reads from the fill events. Not in ``statistics()``,
        which the status line calls every second: a median sorts every value."""
        return self.accounts.fill_spreads()

    def statistics(self) -> TraderStatistics:
        """A frozen snapshot of everything the KPI file, the status line and the live view report."""
        return statistics_of(self)
