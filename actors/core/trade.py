"""A trade as the trader keeps it: its phases and the only legal moves between them (``TRANSITIONS``, as
h11 keeps its connection states), what it holds on each venue (``Trade``), and the legs in flight
(``Order``: decided at one time, arriving after its latency)."""

from __future__ import annotations

import enum

import attrs

from actors.core.vocabulary import Direction, Leg, Side, TradePhase, Zone


class Step(enum.Enum):
    """What happened to a trade; ``TRANSITIONS`` says which phase it leads to."""

    HEDGE_SENT = enum.auto()  # entry legs filled unevenly: the difference is traded back
    CHILD_SENT = enum.auto()  # the next child order of a split entry
    OPENED = enum.auto()  # entry legs (and hedge) done: holding a position
    NOTHING_FILLED = enum.auto()  # entry legs filled nothing: no position, the trade ends
    EXIT_SENT = enum.auto()  # take-profit or max hold: exit legs in flight
    CLOSED = enum.auto()  # exit legs done: the trade's PnL is booked


# Every legal move of a trade, in one place (as h11 keeps its connection states); anything else is a bug.
TRANSITIONS: dict[tuple[TradePhase, Step], TradePhase] = {
    (TradePhase.OPENING, Step.HEDGE_SENT): TradePhase.OPENING,
    (TradePhase.OPENING, Step.CHILD_SENT): TradePhase.OPENING,
    (TradePhase.OPENING, Step.OPENED): TradePhase.OPEN,
    (TradePhase.OPENING, Step.NOTHING_FILLED): TradePhase.DONE,
    (TradePhase.OPEN, Step.EXIT_SENT): TradePhase.CLOSING,
    (TradePhase.CLOSING, Step.CLOSED): TradePhase.DONE,
}


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

    def move(self, step: Step) -> TradePhase:
        """Take ``step``; the new phase. A step the table does not allow from this phase is a bug."""
        self.phase = TRANSITIONS[(self.phase, step)]
        return self.phase


@attrs.frozen
class Order:
    trade_id: int
    leg: Leg
    on_krw: bool
    side: Side
    qty: float
    decided_at: float
    arrive_at: float
    premium_bps: float
    exec_premium_bps: float | None
    deviation_bps: float
    reason: str | None = None
    qty_planned: float = 0.0
    predicted_slippage_bps: float | None = None
    levels_walked: int = 0
    child: int = 0
    decision_price: float | None = None
    depth_left: float | None = None
