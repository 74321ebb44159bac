"""Binance Spot market-data wire codec and the local order-book sync procedure.

Pure: parses frames that a shell received and decides what to do with them; no sockets, no clock.
Reference: ../shared/design/PROTOCOLS.md §2 (combined streams, diff depth, REST depth snapshot,
the documented "maintain a local order book" procedure and its real-data boundary case).
"""

from __future__ import annotations

import enum
import math
import sys
from typing import Annotated, Literal, Sequence, TypeVar, Union

import attrs
import msgspec

from actors.core.book import DiffBook, Level, check_level
from actors.core.budget import ByteBudget, in_words, levels_bytes
from actors.core.venues import FrameError
from actors.core.vocabulary import Venue

VENUE = Venue.BINANCE


# -- decoded events -------------------------------------------------------------------------------


@attrs.frozen
class DepthDiff:
    symbol: str
    first_id: int  # U
    final_id: int  # u
    event_ms: int  # E
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@attrs.frozen
class DepthSnapshot:
    """REST /api/v3/depth body, or a partial-depth stream payload (same shape)."""

    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    stream: str | None = None


@attrs.frozen
class BookTicker:
    symbol: str
    update_id: int
    bid: Level
    ask: Level


@attrs.frozen
class Trade:
    symbol: str
    event_ms: int
    trade_ms: int
    price: float
    qty: float
    buyer_is_maker: bool
    kind: str  # "trade" or "aggTrade"


@attrs.frozen
class ServerShutdown:
    event_ms: int


@attrs.frozen
class ControlReply:
    request_id: int | str | None
    result: object


@attrs.frozen
class ErrorReply:
    request_id: int | str | None
    code: int
    msg: str


Event = Union[DepthDiff, DepthSnapshot, BookTicker, Trade, ServerShutdown, ControlReply, ErrorReply]


class _Error(msgspec.Struct):
    code: int
    msg: str


class _Frame(msgspec.Struct):
    """Every field any Binance market-data frame may carry; absent ones stay None."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    e: str | None = None
    E: int | None = None
    s: str | None = None
    U: int | None = None
    u: int | None = None
    b: str | list[tuple[str, str]] | None = None
    a: str | list[tuple[str, str]] | int | None = None  # aggTrade uses "a" for its id
    B: str | None = None
    A: str | None = None
    p: str | None = None
    q: str | None = None
    T: int | None = None
    m: bool | None = None
    lastUpdateId: int | None = None
    bids: list[tuple[str, str]] | None = None
    asks: list[tuple[str, str]] | None = None
    result: object = msgspec.UNSET
    id: int | str | None = None
    error: _Error | None = None


_decoder = msgspec.json.Decoder(_Frame)


# The hot path: a combined-stream depth diff, the one frame a feed sees ten times a second, decoded
# straight to checked floats by msgspec (lax mode parses the decimal strings, the constraints reject
# NaN, infinities and negatives). Anything this decoder refuses goes through ``decode``'s general
# path, which names the problem.
_Price = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]
_Size = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]


class _DiffData(msgspec.Struct):
    e: Literal["depthUpdate"]
    E: int
    s: str
    U: int
    u: int
    b: tuple[tuple[_Price, _Size], ...]
    a: tuple[tuple[_Price, _Size], ...]


class _CombinedDiff(msgspec.Struct):
    stream: str
    data: _DiffData


_diff_decoder = msgspec.json.Decoder(_CombinedDiff, strict=False)


def _levels(pairs: list[tuple[str, str]], *, allow_zero_size: bool) -> tuple[Level, ...]:
    """Decimal-string pairs to floats, each checked (the hot path: one pass, no call per level)."""
    try:
        levels = tuple([(float(p), float(q)) for p, q in pairs])
    except ValueError:
        return _levels_explained(pairs, allow_zero_size)
    low = 0.0 if allow_zero_size else math.ulp(0.0)
    for price, size in levels:
        if not (0.0 < price < math.inf and low <= size < math.inf):  # NaN fails every comparison
            return _levels_explained(pairs, allow_zero_size)
    return levels


def _levels_explained(pairs: list[tuple[str, str]], allow_zero_size: bool) -> tuple[Level, ...]:
    """The slow path: the first bad level, named in a FrameError."""
    out = []
    for p, q in pairs:
        try:
            price, size = float(p), float(q)
        except ValueError:
            raise FrameError(f"level [{p!r}, {q!r}] is not a pair of decimal strings") from None
        try:
            check_level(price, size, allow_zero_size=allow_zero_size)
        except ValueError as exc:
            raise FrameError(f"bad level [{p}, {q}]: {exc}") from None
        out.append((price, size))
    return tuple(out)


_T = TypeVar("_T")


def _require(value: _T | None, what: str) -> _T:
    if value is None:
        raise FrameError(f"missing field {what}")
    return value


def written_diff(
    symbol: str, event_ms: int, first_id: int, final_id: int, bids: Sequence[Level], asks: Sequence[Level]
) -> DepthDiff | None:
    """The event ``decode`` makes of a depthUpdate written from these levels as the simulated exchange writes
    one (``actors.sim.binance_server.diff_payload``: prices and sizes at 8 decimals), without the frame. None
    where ``decode`` would leave its fast path (a price that rounds to 0, ids out of order): write the frame."""
    bids, asks = _at_8_decimals(bids), _at_8_decimals(asks)
    if final_id < first_id or any(p <= 0.0 for p, _ in bids) or any(p <= 0.0 for p, _ in asks):
        return None
    return DepthDiff(symbol, first_id, final_id, event_ms, bids, asks)


def _at_8_decimals(levels: Sequence[Level]) -> tuple[Level, ...]:
    return tuple([(round(p, 8), round(q, 8)) for p, q in levels])  # == float(f"{x:.8f}"): both correctly rounded


def decode(frame: bytes | str) -> Event:
    """Decode one Binance frame (raw or combined-stream envelope, or a REST depth body)."""
    try:
        d = _diff_decoder.decode(frame).data
    except msgspec.DecodeError:
        pass  # not a well-formed combined diff: the general path below decodes it or says what is wrong
    else:
        if d.u >= d.U:
            return DepthDiff(d.s, d.U, d.u, d.E, d.b, d.a)
    try:
        f = _decoder.decode(frame)
        stream = f.stream
        if stream is not None and len(f.data):
            f = _decoder.decode(f.data)
    except msgspec.DecodeError as exc:
        raise FrameError(f"not a Binance frame: {exc}") from None
    if f.error is not None:
        return ErrorReply(f.id, f.error.code, f.error.msg)
    if f.result is not msgspec.UNSET:
        return ControlReply(f.id, f.result)
    if f.e == "depthUpdate":
        if not isinstance(f.b, list) or not isinstance(f.a, list):
            raise FrameError("depthUpdate without b/a level lists")
        first, final = _require(f.U, "U"), _require(f.u, "u")
        if final < first:
            raise FrameError(f"depthUpdate with u {final} < U {first}")
        return DepthDiff(
            str(_require(f.s, "s")),
            first,
            final,
            int(_require(f.E, "E")),
            _levels(f.b, allow_zero_size=True),
            _levels(f.a, allow_zero_size=True),
        )
    if f.lastUpdateId is not None:
        if f.bids is None or f.asks is None:
            raise FrameError("depth snapshot without bids/asks")
        return DepthSnapshot(
            f.lastUpdateId, _levels(f.bids, allow_zero_size=False), _levels(f.asks, allow_zero_size=False), stream
        )
    if f.e in ("trade", "aggTrade"):
        price_qty = _levels([(str(_require(f.p, "p")), str(_require(f.q, "q")))], allow_zero_size=False)[0]
        return Trade(
            str(_require(f.s, "s")),
            int(_require(f.E, "E")),
            int(_require(f.T, "T")),
            price_qty[0],
            price_qty[1],
            bool(f.m),
            f.e,
        )
    if f.e == "serverShutdown":
        return ServerShutdown(int(_require(f.E, "E")))
    if f.e is None and f.u is not None and isinstance(f.b, str) and isinstance(f.a, str):
        bid = _levels([(f.b, str(_require(f.B, "B")))], allow_zero_size=True)[0]
        ask = _levels([(f.a, str(_require(f.A, "A")))], allow_zero_size=True)[0]
        return BookTicker(str(_require(f.s, "s")), f.u, bid, ask)
    if f.e is None and stream is None:
        raise FrameError("not a Binance server message (no event type, result, error or book)")
    raise FrameError(f"unsupported Binance message type {f.e or stream!r}")


def decode_snapshot(body: bytes | str) -> DepthSnapshot:
    event = decode(body)
    if isinstance(event, ErrorReply):
        raise FrameError(f"REST error {event.code}: {event.msg}")
    if not isinstance(event, DepthSnapshot):
        raise FrameError(f"expected a depth snapshot, got {type(event).__name__}")
    return event


def stream_names(symbol: str, streams: tuple[str, ...]) -> tuple[str, ...]:
    """Stream names are lower case on the wire: ("depth@100ms",) -> ("btcusdt@depth@100ms",)."""
    return tuple(f"{symbol.lower()}@{s}" for s in streams)


def combined_path(names: tuple[str, ...]) -> str:
    return "/stream?streams=" + "/".join(names)


def depth_query(symbol: str, limit: int) -> str:
    return f"/api/v3/depth?symbol={symbol.upper()}&limit={limit}"


# -- the documented sync procedure ------------------------------------------------------------------


class SyncState(enum.Enum):
    WAITING_FIRST_EVENT = "waiting_first_event"  # nothing buffered yet: no snapshot to ask for
    NEEDS_SNAPSHOT = "needs_snapshot"  # buffering; the shell should fetch a snapshot
    SYNCED = "synced"


class Outcome(enum.Enum):
    BUFFERED = "buffered"
    APPLIED = "applied"
    IGNORED = "ignored"  # an old event (u <= local id)
    GAP = "gap"  # U > local id + 1: book discarded, resync needed
    STUCK = "stuck"  # max_ignored diffs in a row older than the book: discarded, resync needed
    REFETCH = "refetch"  # snapshot older than the first buffered event: fetch again
    SYNCED = "synced"  # snapshot accepted and buffer replayed
    OVERFLOW = "overflow"  # the diffs buffered for a snapshot outgrew their byte budget: discarded, start over


DIFF_BUFFER_BYTES = 32 * 1024 * 1024  # a book's pre-snapshot buffer; real diffs average ~36 levels (~4 KB)


@attrs.define
class BookSync:
    """Keeps a DiffBook in sync with a diff stream and REST snapshots, as Binance documents it.

    1. buffer diffs, noting the first U; 2. fetch a snapshot; 3. if its lastUpdateId < first U,
    fetch again; 4. drop buffered events with u <= lastUpdateId; 5. set the book to the snapshot;
    6. apply the rest with the update rule: u <= id ignore, U > id + 1 gap (discard, start over),
    else apply and set id = u. The first event after the snapshot may start at lastUpdateId + 1
    (real captures do), which the update rule accepts.

    Beyond the documented procedure, three rules for servers that do not keep it:
    - a book is ``trusted`` only once a diff has been applied on top of its snapshot: a snapshot is
      one REST answer, the stream is what proves it current;
    - ``max_ignored`` diffs in a row that are all older than the book (a snapshot whose lastUpdateId
      is ahead of everything the stream sends, or a stream that replays old events) mean the book
      has stopped advancing while the market moves: STUCK, discarded like a gap;
    - the diffs buffered while a snapshot is awaited are bounded in bytes (their estimated decoded size,
      ``actors.core.budget``), by the book's own ``budget`` and by ``pool``, shared with every other book:
      a diff that does not fit makes the buffer OVERFLOW: it is discarded with everything buffered, and
      the procedure starts over (``overflow`` says what did not fit). ``release`` gives the bytes back.
    """

    symbol: str
    max_ignored: int = 20  # 2 s of the 100 ms stream
    book: DiffBook = attrs.field(factory=DiffBook)
    budget: ByteBudget = attrs.field(factory=lambda: ByteBudget(DIFF_BUFFER_BYTES))
    pool: ByteBudget | None = None
    state: SyncState = SyncState.WAITING_FIRST_EVENT
    gaps: int = 0
    _buffer: list[DepthDiff] = attrs.field(factory=list)
    replayed: int = 0  # buffered diffs applied by the last snapshot
    overflow: str = ""  # what the last OVERFLOW could not buffer, in words
    _ignored: int = 0  # diffs ignored in a row since the last applied one (or the snapshot)
    _advanced: bool = False  # a diff was applied since the snapshot

    @property
    def synced(self) -> bool:
        return self.state is SyncState.SYNCED

    @property
    def trusted(self) -> bool:
        """Synced, and advanced by the stream since its snapshot."""
        return self.state is SyncState.SYNCED and self._advanced

    @property
    def buffered_bytes(self) -> int:
        """The estimated size of the diffs buffered for a snapshot (what this book holds of its budget)."""
        return self.budget.used

    def on_diff(self, diff: DepthDiff) -> Outcome:
        if self.state is not SyncState.SYNCED:
            if not self._hold(diff):
                self.restart()
                return Outcome.OVERFLOW
            self.state = SyncState.NEEDS_SNAPSHOT
            return Outcome.BUFFERED
        return self._apply(diff)

    def _hold(self, diff: DepthDiff) -> bool:
        """Buffer ``diff`` if its bytes fit this book's budget and the pool; else say why in ``overflow``."""
        size = levels_bytes(len(diff.bids) + len(diff.asks))
        full = None
        if not self.budget.take(size):
            full = self.budget
        elif self.pool is not None and not self.pool.take(size):
            self.budget.give(size)
            full = self.pool
        if full is not None:
            if full is self.budget:
                whose = f"this book's budget of {in_words(full.limit)}"
            else:
                whose = f"the budget every book shares, {in_words(full.limit)} ({in_words(full.used)} held)"
            key = f" ({full.key})" if full.key else ""
            self.overflow = (
                f"{len(self._buffer) + 1} diffs buffered for a snapshot ({in_words(self.budget.used + size)}, "
                f"the last one {len(diff.bids) + len(diff.asks):,} levels) outgrew {whose}{key}"
            )
            return False
        self._buffer.append(diff)
        return True

    def release(self) -> None:
        """Drop the buffered diffs and give their bytes back (to the pool too)."""
        self._buffer.clear()
        used, self.budget.used = self.budget.used, 0
        if self.pool is not None:
            self.pool.give(used)

    def on_snapshot(self, snap: DepthSnapshot) -> Outcome:
        """Set the book to ``snap``. With nothing buffered (a replay that meets the snapshot first) the
        next diff must continue from it: the update rule then drops older diffs and spots a gap."""
        if self._buffer and snap.last_update_id < self._buffer[0].first_id:
            return Outcome.REFETCH
        self.book.reset(snap.bids, snap.asks, snap.last_update_id)
        pending = [d for d in self._buffer if d.final_id > snap.last_update_id]
        self.release()
        self.state = SyncState.SYNCED
        self._ignored, self._advanced = 0, False
        self.replayed = len(pending)
        for diff in pending:
            outcome = self._apply(diff)
            if outcome is Outcome.GAP or outcome is Outcome.STUCK:
                return outcome
        return Outcome.SYNCED

    def restart(self) -> None:
        """Discard the book (it cannot be trusted) and start the procedure from the beginning."""
        self.book.clear()
        self.release()
        self.state = SyncState.WAITING_FIRST_EVENT

    def _discard(self, diff: DepthDiff) -> None:
        """Drop the book and wait for a new snapshot, buffering from ``diff`` (if it fits: a snapshot then
        needs the stream to continue it, as with nothing buffered)."""
        self.book.clear()
        self.release()
        self._hold(diff)
        self.state = SyncState.NEEDS_SNAPSHOT

    def _apply(self, diff: DepthDiff) -> Outcome:
        local = self.book.update_id
        assert local is not None
        if diff.final_id <= local:
            self._ignored += 1
            if self._ignored >= self.max_ignored:
                self._discard(diff)
                return Outcome.STUCK
            return Outcome.IGNORED
        if diff.first_id > local + 1:
            self.gaps += 1
            self._discard(diff)
            return Outcome.GAP
        self.book.apply(diff.bids, diff.asks, diff.final_id)
        self._ignored, self._advanced = 0, True
        return Outcome.APPLIED
