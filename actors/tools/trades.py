"""Trades rebuilt from a session's fill events (docs/file-formats.md), the session's totals over them, the
drawdown of an equity curve, and ``trades_<id>.csv`` (one row per trade; the report writes it).

Every leg of a trade shares its ``trade_id``. A trade is: its direction (which venue bought on entry),
zone, the BTC it held after its entry and hedge legs, the executable premium at entry and at exit, its
fees in USDT (KRW at each leg's FX rate, BTC at each leg's price), its slippage (weighted by the filled
quantity), how it ended and its PnL (from the leg that finished it: ``trade_pnl_usdt``/``trade_pnl_krw``),
how its exit was worked (exit legs re-sent, BTC hedged after them) and what its fills left on each venue
(``actors.core.ledger.left_by_trade``: dust once it is closed, its position while open).
Reading only, no files but the CSV written; the arithmetic is the reader's, not the trader's.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import attrs
import msgspec

from actors.core.ledger import LedgerError, Left, left_by_trade
from actors.core.vocabulary import Direction, HedgeReason, Leg, Side, Venue
from actors.records.files import replacing

# how a trade ended, besides an exit leg's own reason (take_profit, max_hold)
OPEN_AT_END = "open at end"  # no leg finished it and no exit was sent: still held when the session stopped
EXITING_AT_END = "exiting at end"  # exit legs sent, but not flat when the session stopped (closing, working)
NOTHING_FILLED = "nothing filled"  # its entry legs filled nothing: no position
FLAT_AFTER_HEDGE = "flat after hedge"  # one entry leg filled, the hedge traded it back: no position

DIRECTION_WORDS = {
    Direction.SELL_KRW: "buy Binance / sell Upbit",
    Direction.BUY_KRW: "buy Upbit / sell Binance",
}


class FillLine(msgspec.Struct):
    """The fields of a fill-event line the report and the trades read. Fields a line may lack (files from
    tests, older files) have defaults; a line without ``trade_id`` counts in the distributions only."""

    t_s: float
    leg: Leg
    side: Side
    fill_ratio: float
    available_volume: float
    filled_qty: float
    slippage_bps: float
    decided_t_s: float
    premium_bps: float
    trade_pnl_usdt: float | None = None
    trade_pnl_krw: float | None = None
    trade_id: int | None = None
    venue: Venue | None = None
    ts_utc: str = ""
    order_qty: float = 0.0
    avg_price: float | None = None
    best_price: float | None = None
    fee: float = 0.0
    fee_ccy: str = ""
    quote_ccy: str = ""
    zone: str = ""
    fx_krw_per_usdt: float | None = None
    exec_premium_bps: float | None = None
    exit_reason: str | None = None
    predicted_slippage_bps: float | None = None  # absent before depth-aware sizing (docs/slippage.md)
    decision_price: float | None = None
    attempt: int = 0  # exit legs: the exit round (absent before exits were worked until flat)
    position_btc: float | None = None  # the trade's BTC on the venue after the leg
    hedge_cost_bps: float | None = None  # entry legs: the expected hedge cost in their premium
    base_ccy: str = "BTC"  # the coin traded (a market of pairs); absent from a BTC line

    def usdt(self, amount: float, ccy: str) -> float | None:
        """``amount`` of ``ccy`` in USDT at this leg's rates (KRW at its FX rate, BTC at its price), or None
        when the line lacks the rate."""
        if ccy == "USDT":
            return amount
        if ccy == "KRW":
            return amount / self.fx_krw_per_usdt if self.fx_krw_per_usdt else None
        price = self.avg_price or self.best_price
        if ccy == self.base_ccy and price and self.quote_ccy in ("USDT", "KRW"):
            return self.usdt(amount * price, self.quote_ccy)
        return None

    @property
    def fee_usdt(self) -> float:
        return (self.usdt(self.fee, self.fee_ccy) or 0.0) if self.fee else 0.0

    @property
    def notional_usdt(self) -> float:
        """What the leg bought or sold, in USDT (0 when nothing filled)."""
        if not self.filled_qty or self.avg_price is None:
            return 0.0
        return self.usdt(self.filled_qty * self.avg_price, self.quote_ccy) or 0.0


@attrs.frozen
class Trade:
    """One trade, from its legs (the module's docstring says how each figure is made)."""

    trade_id: int
    direction: Direction | None  # None when no entry leg of it is in the file
    zone: str
    opened_t_s: float  # the first entry or hedge leg meeting the book (session seconds)
    opened_utc: str
    closed_t_s: float | None  # the last leg, once a leg finished it
    closed_utc: str | None
    order_btc: float  # asked per entry leg
    size_btc: float  # held on each venue after entry and hedges (the smaller venue's: the matched position)
    entry_premium_bps: float | None  # executable premium of the direction traded, at the entry decision
    exit_premium_bps: float | None
    fees_usdt: float
    slippage_bps: float | None  # over the legs that filled, weighted by filled quantity
    exit_reason: str  # take_profit, max_hold, ... or OPEN_AT_END, EXITING_AT_END, NOTHING_FILLED, FLAT_AFTER_HEDGE
    pnl_usdt: float | None  # after fees; None while open
    pnl_krw: float | None
    notional_usdt: float  # filled, every leg
    legs: int
    hedge_cost_bps: float | None = None  # the expected hedge cost its entry premium was net of
    exit_resends: int = 0  # exit legs sent again for what an exit left unfilled
    unwind_btc: float = 0.0  # BTC hedged on the depth after the re-sends
    left_upbit_btc: float = 0.0  # what its fills left on Upbit: dust once closed, its position while open
    left_binance_btc: float = 0.0

    @property
    def closed(self) -> bool:
        """Held a position and closed it (a trade that never held one is finished, not closed)."""
        return self.pnl_usdt is not None and self.exit_reason not in (NOTHING_FILLED, FLAT_AFTER_HEDGE)

    @property
    def direction_words(self) -> str:
        return "-" if self.direction is None else DIRECTION_WORDS[self.direction]


def _direction(entries: Sequence[FillLine]) -> Direction | None:
    for e in entries:
        if e.venue is Venue.UPBIT:
            return Direction.SELL_KRW if e.side is Side.SELL else Direction.BUY_KRW
        if e.venue is Venue.BINANCE:
            return Direction.SELL_KRW if e.side is Side.BUY else Direction.BUY_KRW
    return None


def _unwind(e: FillLine) -> bool:
    """A hedge of what an exit left, not of the entry's imbalance."""
    return e.leg is Leg.HEDGE and e.exit_reason == HedgeReason.UNFILLED_EXIT


def _size_btc(legs: Sequence[FillLine]) -> float:
    held: dict[Venue | None, float] = {}
    for e in legs:
        if e.leg is not Leg.EXIT and not _unwind(e):
            held[e.venue] = held.get(e.venue, 0.0) + (e.filled_qty if e.side is Side.BUY else -e.filled_qty)
    return min((abs(v) for v in held.values()), default=0.0)


def _left(trade_id: int, legs: Sequence[FillLine]) -> dict[str, Left]:
    """What the legs left on each venue; nothing for lines that lack what the ledger needs (a venue, a price, a
    quote currency: lines from before those fields, or written by hand)."""
    try:
        return left_by_trade(legs).get(trade_id, {})
    except LedgerError:
        return {}


def _trade(trade_id: int, legs: Sequence[FillLine]) -> Trade:
    legs = sorted(legs, key=lambda e: e.t_s)
    entries = [e for e in legs if e.leg is Leg.ENTRY]
    exits = [e for e in legs if e.leg is Leg.EXIT]
    opening = [e for e in legs if e.leg is not Leg.EXIT and not _unwind(e)] or legs
    finished = next((e for e in legs if e.trade_pnl_usdt is not None), None)
    if finished is None:
        reason = EXITING_AT_END if exits else OPEN_AT_END
    elif exits:
        reason = next((e.exit_reason for e in exits if e.exit_reason), "closed")
    else:
        reason = NOTHING_FILLED if not any(e.filled_qty for e in entries) else FLAT_AFTER_HEDGE
    filled = [e for e in legs if e.filled_qty > 0]
    filled_qty = sum(e.filled_qty for e in filled)
    last = legs[-1]
    left = _left(trade_id, legs)
    return Trade(
        trade_id=trade_id,
        direction=_direction(entries),
        zone=legs[0].zone,
        opened_t_s=opening[0].t_s,
        opened_utc=opening[0].ts_utc,
        closed_t_s=None if finished is None else last.t_s,
        closed_utc=None if finished is None else last.ts_utc,
        order_btc=max((e.order_qty for e in entries), default=0.0),
        size_btc=_size_btc(legs),
        entry_premium_bps=next((e.exec_premium_bps for e in entries if e.exec_premium_bps is not None), None),
        exit_premium_bps=next((e.exec_premium_bps for e in exits if e.exec_premium_bps is not None), None),
        fees_usdt=sum(e.fee_usdt for e in legs),
        slippage_bps=sum(e.slippage_bps * e.filled_qty for e in filled) / filled_qty if filled_qty else None,
        exit_reason=reason,
        pnl_usdt=None if finished is None else finished.trade_pnl_usdt,
        pnl_krw=None if finished is None else finished.trade_pnl_krw,
        notional_usdt=sum(e.notional_usdt for e in legs),
        legs=len(legs),
        hedge_cost_bps=next((e.hedge_cost_bps for e in entries if e.hedge_cost_bps is not None), None),
        exit_resends=sum(e.attempt > 1 for e in exits),
        unwind_btc=sum(e.filled_qty for e in legs if _unwind(e)),
        left_upbit_btc=left[Venue.UPBIT].btc if Venue.UPBIT in left else 0.0,
        left_binance_btc=left[Venue.BINANCE].btc if Venue.BINANCE in left else 0.0,
    )


def rebuild_trades(events: Iterable[FillLine]) -> tuple[Trade, ...]:
    """The trades of these fill events, by trade id; lines without one are left out."""
    legs: dict[int, list[FillLine]] = {}
    for e in events:
        if e.trade_id is not None:
            legs.setdefault(e.trade_id, []).append(e)
    return tuple(_trade(trade_id, legs[trade_id]) for trade_id in sorted(legs))


# -- totals ----------------------------------------------------------------------------------------


@attrs.frozen
class Totals:
    """The session's trades in a few figures (PnL after fees, in USDT)."""

    trades: int
    closed: int
    open: int  # still open (or closing) at the end
    no_position: int  # nothing filled, or flat after the hedge
    wins: int  # closed with PnL above 0
    average_usdt: float | None  # over closed trades
    best: Trade | None
    worst: Trade | None
    realized_usdt: float  # every finished trade's PnL
    fees_usdt: float
    turnover_usdt: float  # filled notional, every leg

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed if self.closed else None


def totals(trades: Sequence[Trade]) -> Totals:
    closed = [t for t in trades if t.closed]

    def pnl(t: Trade) -> float:
        return t.pnl_usdt or 0.0

    return Totals(
        trades=len(trades),
        closed=len(closed),
        open=sum(t.pnl_usdt is None for t in trades),
        no_position=sum(t.pnl_usdt is not None and not t.closed for t in trades),
        wins=sum(round(pnl(t), 10) > 0 for t in closed),  # floating-point noise is no win
        average_usdt=sum(map(pnl, closed)) / len(closed) if closed else None,
        best=max(closed, key=pnl, default=None),
        worst=min(closed, key=pnl, default=None),
        realized_usdt=sum(map(pnl, trades)),
        fees_usdt=sum(t.fees_usdt for t in trades),
        turnover_usdt=sum(t.notional_usdt for t in trades),
    )


def realized_curve(trades: Sequence[Trade]) -> list[tuple[float, float]]:
    """Cumulative realized PnL (USDT) after each finished trade, from (0, 0): a step curve's corners."""
    curve, total = [(0.0, 0.0)], 0.0
    for t in sorted((t for t in trades if t.pnl_usdt is not None), key=lambda t: t.closed_t_s or 0.0):
        total += t.pnl_usdt or 0.0
        curve.append((t.closed_t_s or 0.0, total))
    return curve


@attrs.frozen
class Drawdown:
    """The largest fall of an equity curve from a running peak (USDT, session seconds)."""

    depth_usdt: float  # 0 when the curve never fell
    peak_t_s: float
    peak_usdt: float
    trough_t_s: float
    trough_usdt: float


def max_drawdown(curve: Sequence[tuple[float, float]]) -> Drawdown | None:
    """The largest fall of ``(t_s, equity)`` points from the highest point before it; None without points."""
    if not curve:
        return None
    peak = worst = Drawdown(0.0, curve[0][0], curve[0][1], curve[0][0], curve[0][1])
    for t, value in curve:
        if value > peak.peak_usdt:
            peak = Drawdown(0.0, t, value, t, value)
        depth = peak.peak_usdt - value
        if depth > worst.depth_usdt:
            worst = Drawdown(depth, peak.peak_t_s, peak.peak_usdt, t, value)
    return worst


# -- trades_<id>.csv -------------------------------------------------------------------------------

CSV_COLUMNS = (
    "trade_id",
    "opened_t_s",
    "opened_utc",
    "closed_t_s",
    "closed_utc",
    "direction",
    "zone",
    "order_btc",
    "size_btc",
    "entry_exec_premium_bps",
    "exit_exec_premium_bps",
    "fees_usdt",
    "slippage_bps",
    "exit_reason",
    "pnl_usdt",
    "pnl_krw",
    "notional_usdt",
    "legs",
    "hedge_cost_bps",
    "exit_resends",
    "unwind_btc",
    "left_upbit_btc",
    "left_binance_btc",
)


def _cell(x: object) -> object:
    if x is None:
        return ""
    if isinstance(x, float):
        return round(x, 10) + 0.0  # floating-point noise reads 0; + 0.0 turns -0.0 into 0.0
    return x


def write_trades_csv(path: Path, trades: Sequence[Trade]) -> Path:
    """``trades_<id>.csv``: a header row (``CSV_COLUMNS``), then one row per trade in trade-id order. Written
    whole or not at all (``replacing``: on a full disk no file is left cut short); DataWriteError otherwise."""
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(CSV_COLUMNS)
    for t in trades:
        row = (
            t.trade_id,
            t.opened_t_s,
            t.opened_utc,
            t.closed_t_s,
            t.closed_utc,
            t.direction_words,
            t.zone,
            t.order_btc,
            t.size_btc,
            t.entry_premium_bps,
            t.exit_premium_bps,
            t.fees_usdt,
            t.slippage_bps,
            t.exit_reason,
            t.pnl_usdt,
            t.pnl_krw,
            t.notional_usdt,
            t.legs,
            t.hedge_cost_bps,
            t.exit_resends,
            t.unwind_btc,
            t.left_upbit_btc,
            t.left_binance_btc,
        )
        out.writerow([_cell(x) for x in row])
    with replacing(path) as f:
        f.write(text.getvalue().encode("utf-8"))
    return path


def clock_time(ts_utc: str | None) -> str:
    """``HH:MM:SS`` of an ISO 8601 time, or "" when it is not one."""
    try:
        return datetime.fromisoformat(ts_utc or "").strftime("%H:%M:%S")
    except ValueError:
        return ""
