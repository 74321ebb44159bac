"""A trade as the trader keeps it: its phases and the only legal moves between them (``TRANSITIONS``, as
h11 keeps its connection states), what it holds on each venue (``Trade``), and the legs in flight
(``Order``: decided at one time, arriving after its latency).

A trade is done only when it is flat on both venues: what an exit leaves unfilled is re-sent as exit legs
on later views (``WORKING``, at most ``strategy.exit_retries`` times), then hedged on the depth
(``UNWINDING``) until nothing is left but dust, a remainder below the venue's minimum order (``Lots``),
which the trader reports."""

from __future__ import annotations

import enum

import attrs

from actors.core.fills import Fees, Lots
from actors.core.vocabulary import Direction, Leg, Side, TradePhase, Venue, Zone


class Step(enum.Enum):
    """What happened to a trade; ``TRANSITIONS`` says which phase it leads to."""

    HEDGE_SENT = enum.auto()  # entry legs filled unevenly: the difference is traded back
    CHILD_SENT = enum.auto()  # the next child order of a split entry
    OPENED = enum.auto()  # entry legs (and hedge) done: holding a position
    NOTHING_FILLED = enum.auto()  # entry legs filled nothing: no position, the trade ends
    EXIT_SENT = enum.auto()  # take-profit or max hold: exit legs in flight
    EXIT_SHORT = enum.auto()  # exit (or re-sent, or unwind) legs done, BTC left on a venue: to be worked
    EXIT_RESENT = enum.auto()  # what is left is sent again as exit legs (a later view)
    UNWIND_SENT = enum.auto()  # re-sends used up: what is left is hedged on the depth (a later view)
    CLOSED = enum.auto()  # legs done and flat on both venues: the trade's PnL is booked


# Every legal move of a trade, in one place (as h11 keeps its connection states); anything else is a bug.
TRANSITIONS: dict[tuple[TradePhase, Step], TradePhase] = {
    (TradePhase.OPENING, Step.HEDGE_SENT): TradePhase.OPENING,
    (TradePhase.OPENING, Step.CHILD_SENT): TradePhase.OPENING,
    (TradePhase.OPENING, Step.OPENED): TradePhase.OPEN,
    (TradePhase.OPENING, Step.NOTHING_FILLED): TradePhase.DONE,
    (TradePhase.OPEN, Step.EXIT_SENT): TradePhase.CLOSING,
    (TradePhase.CLOSING, Step.CLOSED): TradePhase.DONE,
    (TradePhase.CLOSING, Step.EXIT_SHORT): TradePhase.WORKING,
    (TradePhase.WORKING, Step.EXIT_RESENT): TradePhase.WORKING,
    (TradePhase.WORKING, Step.EXIT_SHORT): TradePhase.WORKING,
    (TradePhase.WORKING, Step.CLOSED): TradePhase.DONE,
    (TradePhase.WORKING, Step.UNWIND_SENT): TradePhase.UNWINDING,
    (TradePhase.UNWINDING, Step.UNWIND_SENT): TradePhase.UNWINDING,
    (TradePhase.UNWINDING, Step.EXIT_SHORT): TradePhase.UNWINDING,
    (TradePhase.UNWINDING, Step.CLOSED): TradePhase.DONE,
}

# the phases in which a trade is on its way out: exit, re-sent exit or unwind legs in flight, or waiting to send
EXITING = frozenset({TradePhase.CLOSING, TradePhase.WORKING, TradePhase.UNWINDING})


@attrs.define
class Trade:
    trade_id: int
    direction: Direction
    zone: Zone
    opened_at: float
    entry_exec_bps: float
    phase: TradePhase = TradePhase.OPENING
    pending: int = 0
    krw_btc: float = 0.0  # BTC bought (+) or sold (-) on the KRW venue, net of BTC fees
    usdt_btc: float = 0.0
    krw_cash: float = 0.0  # KRW received (+) or paid (-), net of KRW fees
    usdt_cash: float = 0.0
    imbalance_btc: float = 0.0
    planned_qty: float = 0.0  # the parent's size
    child_qty: float = 0.0  # each child order's size
    children: int = 1  # child orders planned
    children_sent: int = 0
    next_child_at: float | None = None  # when the next child is due (None: no more children)
    krw_price: float = 0.0  # the price of its latest fill on the KRW venue (KRW per BTC); 0 before one
    usdt_price: float = 0.0  # on the USDT venue (USDT per BTC)
    exit_reason: str | None = None  # take_profit or max_hold, once the exit is decided
    exit_rounds: int = 0  # rounds of exit legs sent: the first exit, then each re-send
    unwinds: int = 0  # hedge legs sent for what the exit rounds left
    hedge_cost_bps: float = 0.0  # the expected hedge cost taken off its entry premium

    def move(self, step: Step) -> TradePhase:
        """Take ``step``; the new phase. A step the table does not allow from this phase is a bug."""
        self.phase = TRANSITIONS[(self.phase, step)]
        return self.phase

    def take(self, on_krw: bool, btc: float, cash: float, price: float | None) -> None:
        """A fill on the KRW venue (``on_krw``) or the USDT venue moved ``btc`` and ``cash`` (net of fees) at
        ``price`` (None: nothing filled, the latest price stays)."""
        if on_krw:
            self.krw_btc += btc
            self.krw_cash += cash
            self.krw_price = price or self.krw_price
        else:
            self.usdt_btc += btc
            self.usdt_cash += cash
            self.usdt_price = price or self.usdt_price

    def held(self, on_krw: bool) -> float:
        """BTC it holds on the KRW venue (``on_krw``) or the USDT venue, net of BTC fees."""
        return self.krw_btc if on_krw else self.usdt_btc

    def is_dust(self, on_krw: bool, venue: Venue, lots: Lots) -> bool:
        """Whether what it holds on that venue is below the venue's minimum order (at its latest fill's price)."""
        return lots.is_dust(venue, self.held(on_krw), self.krw_price if on_krw else self.usdt_price)

    def is_flat(self, krw_venue: Venue, usdt_venue: Venue, lots: Lots) -> bool:
        """Flat: nothing but dust on either venue."""
        return self.is_dust(True, krw_venue, lots) and self.is_dust(False, usdt_venue, lots)

    def closing(self, on_krw: bool, venue: Venue, fees: Fees, lots: Lots) -> tuple[Side, float] | None:
        """The order that leaves it flat on that venue (a Binance BUY asks for more: its fee is taken from the
        BTC it buys); None when what it holds there is dust."""
        if self.is_dust(on_krw, venue, lots):
            return None
        held = self.held(on_krw)
        side = Side.SELL if held > 0 else Side.BUY
        return side, fees.order_for(venue, side, abs(held))


@attrs.frozen(kw_only=True)
class Prediction:
    """What the walk of a leg's book at its decision predicted (nothing when that side was empty)."""

    slippage_bps: float | None = None  # None when the walk filled nothing
    levels_walked: int = 0
    decision_price: float | None = None  # the best price the leg was decided on
    depth_left: float | None = None  # depth within the limit the walk left on the book


@attrs.frozen(kw_only=True)
class Order:
    """One leg in flight: decided at ``decided_at``, meeting its book at ``arrive_at``."""

    trade_id: int
    leg: Leg
    on_krw: bool  # on the KRW venue's book, or the USDT venue's
    side: Side
    qty: float
    decided_at: float
    arrive_at: float
    premium_bps: float  # the mid premium of the view it was decided on
    exec_premium_bps: float | None
    deviation_bps: float
    reason: str | None = None  # an exit's or a hedge's reason
    qty_planned: float = 0.0  # entry legs: the trade's planned size; other legs their own size
    predicted: Prediction = Prediction()
    child: int = 0
    attempt: int = 0  # exit legs: the exit round (1 the first, 2... the re-sends); other legs 0
    hedge_cost_bps: float | None = None  # entry legs: the expected hedge cost taken off their premium
    held: tuple[str, str, float] | None = None  # (venue, asset, amount) it holds of a market's shared balances
