"""The legs in flight and how they meet the books: the execution half of the trader.

Orders have latency: a leg decided at ``t`` arrives at ``t + latency`` (``latency_ms``, plus a uniform draw
in ``± latency_jitter_ms`` from a seeded generator) and meets the book as it is then: the trader calls
``on_timer`` at the arrival time and the leg fills against the latest view, on the L2 source's levels
(``actors.core.l2source``), minus the liquidity our own earlier fills took (``LiquidityMemory``). An entry
or exit leg gets what the fill model gives; a hedge leg takes what the depth allows. Each fill's fee is
charged in the currency its venue charges (``Fees``).

``Execution`` owns the legs in flight (each trade counts its own: ``Trade.pending``), the liquidity memory and
the random streams of latency and of the mock book.
"""

from __future__ import annotations

import random

import attrs

from actors.core.book import BookView, Level
from actors.core.fills import Fees, Fill, FillModel, LiquidityMemory, Lots, limit_price, walk
from actors.core.l2source import MockBook, leg_levels
from actors.core.market import MarketView
from actors.core.portfolio import Portfolio
from actors.core.sizing import within_limit
from actors.core.trade import Order, Prediction, Trade
from actors.core.vocabulary import Currency, L2Source, Leg, LegRisk, Side, Venue, Zone


@attrs.frozen
class ExecutionParams:
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # each leg's latency is uniform in latency_ms ± this
    leg_risk: LegRisk = attrs.field(default=LegRisk.HEDGE, converter=LegRisk)
    fees: Fees = attrs.field(factory=Fees)
    lots: Lots = attrs.field(factory=Lots)  # each venue's minimum order: smaller remainders are dust


@attrs.frozen(kw_only=True)
class LegFill:
    """What one leg got when it met its book."""

    order: Order
    book: BookView  # the book it met (its venue and symbol)
    fill: Fill
    fee: float
    fee_ccy: Currency | str  # a coin's fee (a Binance BUY's) is in the pair's base coin: Currency.BTC for BTC
    at: float  # when it met the book: its arrival, or the view's time when that is later
    fill_model: str  # the model that filled it ("simple" for a hedge, which walks the depth)
    base: str = "BTC"  # the coin it traded: its pair's base

    # what the ledger reads of a fill (actors.core.ledger.FillFlows)
    @property
    def venue(self) -> Venue:
        return Venue(self.book.venue)

    @property
    def side(self) -> Side:
        return self.order.side

    @property
    def filled_qty(self) -> float:
        return self.fill.filled_qty

    @property
    def avg_price(self) -> float | None:
        return self.fill.avg_price

    @property
    def quote_ccy(self) -> Currency:
        return self.venue.quote

    @property
    def base_ccy(self) -> str:
        return self.base

    def moved(self) -> tuple[float, float]:
        """(coin, quote cash) it moved on its venue, each net of the fee paid in it: + received, - paid."""
        sign = 1 if self.order.side == Side.BUY else -1
        price = self.fill.avg_price or 0.0
        btc = sign * self.fill.filled_qty - (self.fee if self.fee_ccy == self.base else 0.0)
        cash = -sign * self.fill.filled_qty * price - (self.fee if self.fee_ccy == self.quote_ccy else 0.0)
        return btc, cash


@attrs.define
class Execution:
    params: ExecutionParams
    fill_model: FillModel
    l2_source: L2Source
    max_slippage_bps: float  # a leg's limit price: this far from the best price it meets
    seed: int  # the latency jitter's stream
    mock_seed: int  # the mock book's stream (l2_source = "mock")
    pending: list[Order] = attrs.field(factory=list)
    memory: LiquidityMemory = attrs.field(factory=LiquidityMemory)
    # balances a market's pairs share (MarketTrader): each leg in flight holds what it may spend of them
    shared: Portfolio | None = attrs.field(default=None, init=False)
    _rng: random.Random = attrs.field(init=False)
    _mock: MockBook | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._mock = MockBook(self.mock_seed) if self.l2_source is L2Source.MOCK else None

    def latency_s(self) -> float:
        """A new leg's latency (one draw of the jitter's stream when there is jitter)."""
        ex = self.params
        ms = ex.latency_ms + (
            self._rng.uniform(-ex.latency_jitter_ms, ex.latency_jitter_ms) if ex.latency_jitter_ms else 0.0
        )
        return max(ms, 0.0) / 1e3

    def reachable(self, view: MarketView, book: BookView, side: Side) -> tuple[Level, ...]:
        """The levels an order on ``book`` could take now, as the fill would see them (the L2 source's; the
        book's own with the mock source, whose levels are drawn at the fill), minus our own fills' liquidity,
        within the limit price."""
        if self.l2_source in (L2Source.MULTI, L2Source.MOCK):
            shown = book.asks if side == Side.BUY else book.bids
        else:
            krw, usdt = view.krw_leg, view.usdt_leg
            assert krw is not None and usdt is not None
            others = {krw.venue: krw, usdt.venue: usdt}
            shown = leg_levels(self.l2_source, book, others, side == Side.BUY, view.at, None)
        levels = self.memory.effective(book.venue, side, shown)
        if not levels:
            return ()
        return within_limit(levels, side, limit_price(levels[0][0], side, self.max_slippage_bps))

    def predict(self, view: MarketView, book: BookView, side: Side, qty: float) -> Prediction:
        """What the walk of ``book`` as it is at the decision predicts for a leg of ``qty``."""
        levels = self.reachable(view, book, side)
        predicted = walk(levels, side, qty, levels[-1][0]) if levels else None
        if predicted is None:
            return Prediction()
        return Prediction(
            slippage_bps=None if predicted.filled_qty <= 0 else predicted.slippage_bps,
            levels_walked=predicted.levels_used,
            decision_price=levels[0][0],
            depth_left=max(predicted.available_volume - predicted.filled_qty, 0.0),
        )

    def after_our_fills(self, view: MarketView) -> MarketView:
        """``view`` with both legs' books less the liquidity our own earlier fills took."""
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None
        effective = self.memory.effective
        return attrs.evolve(
            view,
            krw_leg=attrs.evolve(
                krw, bids=effective(krw.venue, Side.SELL, krw.bids), asks=effective(krw.venue, Side.BUY, krw.asks)
            ),
            usdt_leg=attrs.evolve(
                usdt, bids=effective(usdt.venue, Side.SELL, usdt.bids), asks=effective(usdt.venue, Side.BUY, usdt.asks)
            ),
        )

    def send(
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
        """Send one leg of ``trade``, decided at ``at`` (default: the view's time; later when the leg is decided on
        a timer, after the view) on the view's premium, ``exec_bps`` and ``deviation``; the walk of the book it
        is decided on predicts its slippage, and it arrives after its latency."""
        decided = view.at if at is None else max(at, view.at)
        assert view.premium_bps is not None
        book = view.krw_leg if on_krw else view.usdt_leg
        assert book is not None
        predicted = self.predict(view, book, side, qty)
        trade.pending += 1
        order = Order(
            trade_id=trade.trade_id,
            leg=leg,
            on_krw=on_krw,
            side=side,
            qty=qty,
            decided_at=decided,
            arrive_at=decided + self.latency_s(),
            premium_bps=view.premium_bps,
            exec_premium_bps=exec_bps,
            deviation_bps=deviation,
            reason=reason,
            qty_planned=trade.planned_qty if leg is Leg.ENTRY else qty,
            predicted=predicted,
            child=child,
            attempt=attempt,
            hedge_cost_bps=hedge_cost,
            held=None if self.shared is None else self._hold(book, side, qty, view.pair.base),
        )
        self.pending.append(order)

    def _hold(self, book: BookView, side: Side, qty: float, base: str) -> tuple[str, str, float] | None:
        """Hold on the shared balances what a leg of ``qty`` may spend: a BUY its quote at the limit price with
        its fee, a SELL the coin; released when the leg fills (``fill``)."""
        assert self.shared is not None
        if side == Side.SELL:
            held = (str(book.venue), base, qty)
        elif book.asks:
            worst = book.asks[0][0] * (1 + self.max_slippage_bps / 1e4)
            fee = 1 + self.params.fees.rate_bps(book.venue) / 1e4
            held = (str(book.venue), str(Venue(book.venue).quote), qty * worst * fee)
        else:
            return None
        self.shared.hold(*held)
        return held

    def due_at(self) -> float | None:
        """The earliest arrival of a leg in flight."""
        return min((o.arrive_at for o in self.pending), default=None)

    def take_due(self, now: float, strictly_before: bool = False) -> list[Order]:
        """The legs that have arrived by ``now`` (before it: ``strictly_before``), in the order they meet their
        books, no longer in flight."""
        due = [o for o in self.pending if (o.arrive_at < now if strictly_before else o.arrive_at <= now)]
        due.sort(key=lambda o: (o.arrive_at, o.trade_id, not o.on_krw))
        self.pending = [o for o in self.pending if o not in due]
        return due

    def fill(self, order: Order, view: MarketView, zone: Zone) -> LegFill:
        """Fill ``order`` against its book in ``view`` (the L2 source's levels, minus what earlier fills took)
        and remember what it took."""
        book = view.krw_leg if order.on_krw else view.usdt_leg
        assert book is not None and view.krw_leg is not None and view.usdt_leg is not None
        if self.shared is not None and order.held is not None:
            venue, asset, amount = order.held
            self.shared.hold(venue, asset, -amount)
        at = max(view.at, order.arrive_at)
        others = {view.krw_leg.venue: view.krw_leg, view.usdt_leg.venue: view.usdt_leg}
        shown = leg_levels(self.l2_source, book, others, order.side == Side.BUY, at, self._mock)
        levels = self.memory.effective(book.venue, order.side, shown)
        best = shown[0][0] if shown else float("nan")
        limit = limit_price(best, order.side, self.max_slippage_bps)
        if not levels:
            fill = Fill(order.side, order.qty, 0.0, 0.0, limit, best, None, 0.0, 0)
        elif order.leg is Leg.HEDGE:
            fill = walk(levels, order.side, order.qty, limit)  # a hedge takes what the depth allows
        else:
            fill = self.fill_model.fill(levels, order.side, order.qty, limit, zone)
        self.memory.record(book.venue, order.side, shown, fill)
        fee, charged = (
            (0.0, Venue(book.venue).quote)
            if fill.filled_qty == 0
            else self.params.fees.charge(book.venue, order.side, fill.filled_qty, fill.avg_price or 0.0)
        )
        base = view.pair.base
        # Fees says BTC for the coin a fill trades: the pair's base (BTC itself for the one-pair session)
        fee_ccy: Currency | str = base if charged is Currency.BTC and base != Currency.BTC else charged
        model = "simple" if order.leg is Leg.HEDGE else self.fill_model.name
        return LegFill(order=order, book=book, fill=fill, fee=fee, fee_ccy=fee_ccy, at=at, fill_model=model, base=base)
