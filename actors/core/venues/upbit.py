"""Upbit public quotation WebSocket codec.

Pure. Reference: ../shared/design/PROTOCOLS.md §1. Frames arrive as BINARY websocket frames of
UTF-8 JSON; both DEFAULT and SIMPLE key spellings are accepted, as are the JSON_LIST/SIMPLE_LIST
array wrappers. Every orderbook frame is a complete top-N book: the client replaces its book.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal, Sequence, TypeVar, Union

import attrs
import msgspec

from actors.core.book import Level, check_level
from actors.core.venues import FrameError
from actors.core.vocabulary import Venue

VENUE = Venue.UPBIT
_MICROSECONDS_AFTER = 10**14  # ms epoch stamps are ~1.8e12; µs ones (seen in 2023) are ~1.7e15


@attrs.frozen
class Orderbook:
    code: str
    timestamp_ms: int
    snapshot: bool  # stream_type SNAPSHOT (first frame per code) vs REALTIME
    bids: tuple[Level, ...]  # descending, zero-padded slots dropped
    asks: tuple[Level, ...]  # ascending
    level: float | None = None
    padded_levels: int = 0  # zero-padded slots dropped from this frame


@attrs.frozen
class Trade:
    code: str
    timestamp_ms: int
    price: float
    volume: float
    ask_bid: str
    sequential_id: int | None


@attrs.frozen
class Status:
    status: str


@attrs.frozen
class ErrorFrame:
    name: str
    message: str


Event = Union[Orderbook, Trade, Status, ErrorFrame]


class _Unit(msgspec.Struct):
    ask_price: float | None = None
    bid_price: float | None = None
    ask_size: float | None = None
    bid_size: float | None = None
    ap: float | None = None
    bp: float | None = None
    as_: float | None = msgspec.field(default=None, name="as")
    bs: float | None = None


class _Error(msgspec.Struct):
    name: str | int = ""
    message: str = ""


class _Frame(msgspec.Struct):
    type: str | None = None
    ty: str | None = None
    code: str | None = None
    cd: str | None = None
    timestamp: int | None = None
    tms: int | None = None
    stream_type: str | None = None
    st: str | None = None
    orderbook_units: list[_Unit] | None = None
    obu: list[_Unit] | None = None
    level: float | None = None
    lv: float | None = None
    trade_price: float | None = None
    tp: float | None = None
    trade_volume: float | None = None
    tv: float | None = None
    ask_bid: str | None = None
    ab: str | None = None
    sequential_id: int | None = None
    sid: int | None = None
    status: str | None = None
    error: _Error | None = None


_decoder = msgspec.json.Decoder(_Frame)
_list_decoder = msgspec.json.Decoder(list[_Frame])


# The hot path: a DEFAULT-format order book (what the feed subscribes to), decoded by one typed
# decoder whose constraints reject NaN, infinities and negatives in C. Zero slots are padding.
# Anything this decoder refuses goes through the general path, which names the problem.
_Number = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]


class _BookUnit(msgspec.Struct):
    ask_price: _Number
    bid_price: _Number
    ask_size: _Number
    bid_size: _Number


class _Book(msgspec.Struct):
    type: Literal["orderbook"]
    code: str
    timestamp: int
    orderbook_units: list[_BookUnit]
    stream_type: str | None = None
    level: float | None = None


_book_decoder = msgspec.json.Decoder(_Book)


def _fast_book(frame: bytes | str) -> Orderbook | None:
    try:
        f = _book_decoder.decode(frame)
    except msgspec.DecodeError:
        return None
    units = f.orderbook_units
    asks = tuple([(u.ask_price, u.ask_size) for u in units if u.ask_price and u.ask_size])
    bids = tuple([(u.bid_price, u.bid_size) for u in units if u.bid_price and u.bid_size])
    if (bids and asks and bids[0][0] >= asks[0][0]) or _disorder(asks, ask=True) or _disorder(bids, ask=False):
        return None  # crossed or out of order: the general path raises, naming it
    return Orderbook(
        f.code,
        _millis(f.timestamp),
        f.stream_type == "SNAPSHOT",
        bids,
        asks,
        f.level,
        2 * len(units) - len(asks) - len(bids),
    )


def _disorder(levels: tuple[Level, ...], ask: bool) -> int | None:
    """The index of the first level not strictly worse than the one before it (asks ascending, bids
    descending), or None when the side is in order. A unit placed out of order (a bid above the best
    ask at the end of the list, say) would be walked by a fill as if it were deeper."""
    for i in range(1, len(levels)):
        if (levels[i][0] <= levels[i - 1][0]) if ask else (levels[i][0] >= levels[i - 1][0]):
            return i
    return None


_T = TypeVar("_T")


def _first(a: _T | None, b: _T | None) -> _T | None:
    return a if a is not None else b


def _millis(ts: int | None) -> int:
    if ts is None:
        raise FrameError("missing timestamp")
    return ts // 1000 if ts >= _MICROSECONDS_AFTER else ts


def _side(units: list[_Unit], ask: bool) -> tuple[tuple[Level, ...], int]:
    levels, padded = [], 0
    for u in units:
        price = _first(u.ask_price, u.ap) if ask else _first(u.bid_price, u.bp)
        size = _first(u.ask_size, u.as_) if ask else _first(u.bid_size, u.bs)
        if price is None or size is None:
            raise FrameError("orderbook unit without price or size")
        if price == 0 or size == 0:
            padded += 1  # thin books are padded with zero slots: not real levels
            continue
        try:
            check_level(price, size, allow_zero_size=False)
        except ValueError as exc:
            raise FrameError(f"bad {'ask' if ask else 'bid'} level: {exc}") from None
        levels.append((price, size))
    return tuple(levels), padded


def _event(f: _Frame) -> Event:
    if f.error is not None:
        return ErrorFrame(str(f.error.name), f.error.message)
    if f.status is not None:
        return Status(f.status)
    kind = _first(f.type, f.ty)
    code = _first(f.code, f.cd)
    if kind == "orderbook":
        units = _first(f.orderbook_units, f.obu)
        if code is None or units is None:
            raise FrameError("orderbook frame without code or units")
        asks, pad_a = _side(units, ask=True)
        bids, pad_b = _side(units, ask=False)
        if bids and asks and bids[0][0] >= asks[0][0]:
            raise FrameError(f"crossed book: best bid {bids[0][0]} >= best ask {asks[0][0]}")
        for levels, ask in ((asks, True), (bids, False)):
            i = _disorder(levels, ask)
            if i is not None:
                raise FrameError(
                    f"{'asks' if ask else 'bids'} out of order: level {i + 1} at {levels[i][0]:g} "
                    f"after {levels[i - 1][0]:g} ({'ascending' if ask else 'descending'} expected)"
                )
        return Orderbook(
            code,
            _millis(_first(f.timestamp, f.tms)),
            _first(f.stream_type, f.st) == "SNAPSHOT",
            bids,
            asks,
            _first(f.level, f.lv),
            pad_a + pad_b,
        )
    if kind == "trade":
        price, volume = _first(f.trade_price, f.tp), _first(f.trade_volume, f.tv)
        if code is None or price is None or volume is None:
            raise FrameError("trade frame without code, price or volume")
        return Trade(
            code,
            _millis(_first(f.timestamp, f.tms)),
            price,
            volume,
            _first(f.ask_bid, f.ab) or "",
            _first(f.sequential_id, f.sid),
        )
    if kind is None:
        raise FrameError("not an Upbit server message (no type, status or error field)")
    raise FrameError(f"unsupported Upbit message type {kind!r}")


def written_book(
    code: str, timestamp_ms: int, bids: Sequence[Level], asks: Sequence[Level], units: int
) -> Orderbook | None:
    """The event ``decode`` makes of a DEFAULT-format REALTIME order book of ``units`` slots written from these
    levels (as the simulated exchange writes one: ``actors.sim.upbit_server.orderbook_frame``), without the
    frame: a price as written (Java's spelling keeps every digit), a size at the frame's 8 decimals (what
    ``f"{size:.8f}"`` parses back to), the empty slots as padding. None where ``decode`` would leave its fast
    path (a crossed or disordered book): write the frame and decode it then."""
    asks, bids = _written(asks, units), _written(bids, units)
    if (bids and asks and bids[0][0] >= asks[0][0]) or _disorder(asks, ask=True) or _disorder(bids, ask=False):
        return None
    return Orderbook(code, _millis(timestamp_ms), False, bids, asks, 0.0, 2 * units - len(asks) - len(bids))


_EXACT_BELOW = 2.0**51  # |size| * 1e8 under this: the float product is within 1/8 of the exact one


def _written(levels: Sequence[Level], units: int) -> tuple[Level, ...]:
    """The levels of a side as a frame of ``units`` slots carries them: sizes at 8 decimals, empty ones dropped.

    A size at 8 decimals is ``round(size, 8)`` (== the float of f"{size:.8f}": both correctly rounded), which is
    ``k / 1e8`` for ``k`` the nearest integer to the exact ``size * 10**8`` (a correctly rounded division). Where
    the float product is within a quarter of an integer ``k`` (every size the model makes: whole lots of 1e-8)
    and under 2**51 (then within 1/8 of the exact product), the exact product is within 3/8 of ``k``: ``k`` is
    the nearest integer, no tie, and the division is cheaper than the decimal conversion ``round`` makes."""
    out = []
    for price, size in levels[:units]:
        scaled = size * 1e8
        if -_EXACT_BELOW < scaled < _EXACT_BELOW and -0.25 < scaled - (k := round(scaled)) < 0.25:
            size = k / 1e8
        else:
            size = round(size, 8)
        if price and size:
            out.append((price, size))
    return tuple(out)


def decode(frame: bytes | str) -> list[Event]:
    """Decode one frame into events (a LIST-format frame may carry several)."""
    book = _fast_book(frame)
    if book is not None:
        return [book]
    try:
        stripped = frame.lstrip()
        if stripped[:1] in (b"[", "["):
            return [_event(f) for f in _list_decoder.decode(frame)]
        return [_event(_decoder.decode(frame))]
    except msgspec.DecodeError as exc:
        raise FrameError(f"not an Upbit frame: {exc}") from None


def subscribe_request(ticket: str, codes: tuple[str, ...], *, fmt: str = "DEFAULT") -> str:
    """The subscription frame (a JSON array sent as text). Codes must be upper case on the wire."""
    return json.dumps(
        [{"ticket": ticket}, {"type": "orderbook", "codes": list(codes)}, {"format": fmt}], separators=(",", ":")
    )


PING = "PING"  # text keep-alive: the server answers {"status":"UP"} every 10 s
