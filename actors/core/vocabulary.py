"""The domain's words as types: sides, venues and their currencies, legs, directions, trade phases, hedge
reasons, how trades are sized, where the depth comes from, zones, restart causes.

Each is a ``StrEnum``: it compares equal to its wire spelling ("BUY", "upbit", "entry") and encodes as
that string in JSON, so files and KPIs read as before, while the code names members and a typo is an
``AttributeError`` instead of a silent mismatch. A ``Zone`` is a value with a ``label`` ("10/12"),
formatted once and never parsed back.
"""

from __future__ import annotations

import enum

import attrs


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Currency(enum.StrEnum):
    BTC = "BTC"
    KRW = "KRW"
    USDT = "USDT"


class Venue(enum.StrEnum):
    UPBIT = "upbit"  # the KRW venue
    BINANCE = "binance"  # the USDT venue

    @property
    def quote(self) -> Currency:
        """The currency its BTC market is quoted in (and its cash balance held in)."""
        return Currency.KRW if self is Venue.UPBIT else Currency.USDT


class Leg(enum.StrEnum):
    ENTRY = "entry"
    HEDGE = "hedge"  # trades a leg imbalance back
    EXIT = "exit"


class Direction(enum.StrEnum):
    """Which way a trade goes: sell on the KRW venue (it is rich) and buy on the USDT venue, or the reverse."""

    SELL_KRW = "sell_krw"
    BUY_KRW = "buy_krw"

    @property
    def krw_side(self) -> Side:
        return Side.SELL if self is Direction.SELL_KRW else Side.BUY

    @property
    def usdt_side(self) -> Side:
        return self.krw_side.opposite


class TradePhase(enum.StrEnum):
    OPENING = "opening"  # entry legs (and a hedge) in flight
    OPEN = "open"  # holding; waiting for take-profit or max hold
    CLOSING = "closing"  # exit legs in flight
    WORKING = "working"  # the exit left BTC unfilled: the rest is re-sent as exit legs on later views
    UNWINDING = "unwinding"  # re-sends used up: the rest is hedged on the depth, on later views, until flat
    DONE = "done"  # flat on both venues (but dust below their minimum order) and booked; or nothing filled


class HedgeReason(enum.StrEnum):
    """Why a hedge leg was sent (its ``exit_reason`` in the fill events)."""

    IMBALANCE = "imbalance"  # the entry legs filled unevenly
    UNFILLED_EXIT = "unfilled_exit"  # the exit and its re-sends left BTC unfilled


class Sizing(enum.StrEnum):
    """How an entry's size is chosen (``strategy.sizing``)."""

    FIXED = "fixed"  # every trade is order_qty_btc
    DEPTH = "depth"  # the largest size up to max_order_qty_btc whose walked premium still clears (actors.core.sizing)


class L2Source(enum.StrEnum):
    """Where the depth a leg is sized and filled against comes from (``strategy.l2_source``, actors.core.l2source)."""

    MULTI = "multi"  # each leg its own venue's book
    UPBIT = Venue.UPBIT.value  # both legs Upbit's depth, placed at each leg's own best price
    BINANCE = Venue.BINANCE.value  # both legs Binance's depth, likewise
    MOCK = "mock"  # a seeded synthetic book, drawn at each fill

    @property
    def venue(self) -> Venue | None:
        """The one venue whose depth both legs take (``upbit``, ``binance``); None for ``multi`` and ``mock``."""
        return Venue(self.value) if self in (L2Source.UPBIT, L2Source.BINANCE) else None


class LegRisk(enum.StrEnum):
    HEDGE = "hedge"  # trade an imbalance of the entry legs back
    CARRY = "carry"  # keep it, marked to market


@attrs.frozen(order=True)
class Zone:
    """An entry threshold and a take-profit, in bps of premium deviation."""

    entry_bps: float
    tp_bps: float

    @property
    def label(self) -> str:
        return f"{self.entry_bps:g}/{self.tp_bps:g}"


class RestartCause(enum.StrEnum):
    """Why a feed's connection ended (docs/kpis.md, reconnect causes)."""

    CLOSED = "closed"  # a close frame
    DROPPED = "dropped"  # the connection lost without a close frame (1006)
    STALE = "stale"  # no market data for stale_after_s
    SCHEDULED = "scheduled"  # serverShutdown, or the exchange's planned 24 h cut
    CRASH = "crash"  # our code failed, or chaos killed it
    ERROR = "error"  # an error frame, or too many bad frames
    CONNECT = "connect"  # could not connect (or no handshake in time)
    SNAPSHOT = "snapshot"  # the REST snapshot failed
    OVERFLOW = "overflow"  # past a byte budget: a message over max_message_bytes, diff buffers overflowing
    RATE_LIMITED = "rate_limited"  # Binance REST answered 429: past the weight limit (Retry-After honoured)
    BANNED = "banned"  # Binance REST answered 418: the IP is banned until Retry-After


class FeedFailure(Exception):
    """The one base of every failure that ends a feed's connection and makes its supervisor reconnect.

    ``cause`` (a ``RestartCause``) labels it in the KPI file; supervision reads it as ``restart_cause``.
    A subclass sets ``cause`` as a class attribute, or an instance passes one. ``max_attempts``, when set,
    is how many attempts in a row this failure is worth (supervision gives up after them)."""

    cause: RestartCause = RestartCause.ERROR
    max_attempts: int | None = None

    def __init__(self, message: str = "", cause: RestartCause | None = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause

    @property
    def restart_cause(self) -> RestartCause:
        return self.cause
