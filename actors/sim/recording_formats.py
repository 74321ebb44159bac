"""The three recording formats a replay reads, one line at a time: which a file is (``detect_format``, from its
first line), and each line's book events with their time (``Timed``), told apart by a peek at the frame
without decoding its levels (``actors.sim.recordings`` describes the formats and reads the files).
"""

from __future__ import annotations

import ast
import enum
import math
import re
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Callable, Literal, Protocol, Union
from urllib.parse import parse_qs, urlsplit

import attrs
import msgspec

from actors.core.venues import FrameError, upbit
from actors.core.vocabulary import Venue
from actors.inputs import MAX_LINE_BYTES, MIB, InputError, LineReader

_HFT_LINE = re.compile(r"^(\d{12,}) (.*)$")
_CF_HEADER = re.compile(r"^(\S+://\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")


class RecordingError(Exception):
    """A recording that cannot be replayed; str() says which file and why."""


class Kind(enum.Enum):
    DIFF = "diff"  # a Binance depth diff
    SNAPSHOT = "snapshot"  # a Binance REST depth body
    BOOK = "book"  # an Upbit order book (a whole top-N book)


# -- a peek at a frame: what it is, without decoding its levels --------------------------------------


class _BinanceData(msgspec.Struct):
    e: Union[str, None] = None
    E: Union[int, None] = None
    s: Union[str, None] = None


class _BinancePeek(msgspec.Struct):
    stream: Union[str, None] = None
    data: Union[_BinanceData, None] = None
    e: Union[str, None] = None
    E: Union[int, None] = None
    s: Union[str, None] = None
    lastUpdateId: Union[int, None] = None
    result: Union[object, None] = None
    id: Union[object, None] = None


class _UpbitPeek(msgspec.Struct):
    type: Union[str, None] = None
    ty: Union[str, None] = None
    code: Union[str, None] = None
    cd: Union[str, None] = None
    status: Union[str, None] = None


_peek_binance = msgspec.json.Decoder(_BinancePeek)
_peek_upbit = msgspec.json.Decoder(_UpbitPeek)
_SKIPPED_NAMES = {"trade": "Trade", "aggTrade": "Trade", "ticker": "Ticker", "orderbook": "Orderbook"}
_BINANCE_SKIPPED = {  # a skipped Binance frame's name -> its count's
    name: f"binance:{name}" for name in (*_SKIPPED_NAMES.values(), "DepthSnapshot", "ControlReply", "unsupported")
}


@attrs.frozen
class _Peeked:
    kind: Kind
    symbol: str | None  # None: a REST body, which does not say its symbol
    event_ms: int | None  # a diff's exchange time


def _peek_binance_frame(frame: str | bytes, skipped: Counter[str]) -> _Peeked | None:
    """``_peek`` of a Binance frame."""
    p = _peek_binance.decode(frame)
    stream = p.stream
    d = p.data if p.data is not None else p
    if d.e == "depthUpdate":
        if d.s is None or d.E is None:
            raise FrameError("depthUpdate without s or E")
        return _Peeked(Kind.DIFF, d.s.upper(), d.E)
    if stream is None:
        if p.lastUpdateId is not None:
            return _Peeked(Kind.SNAPSHOT, None, None)
    elif "@bookTicker" in stream:  # most frames of a recording with tickers: counted first
        skipped["binance:BookTicker"] += 1
        return None
    if p.lastUpdateId is not None:
        name = "DepthSnapshot"  # partial depth on a stream: not what a diff book starts from
    elif d.e is not None:
        name = _SKIPPED_NAMES.get(d.e, "unsupported")
    else:
        name = "ControlReply" if p.id is not None else "unsupported"
    skipped[_BINANCE_SKIPPED[name]] += 1
    return None


def _peek(venue: str, frame: str | bytes, skipped: Counter[str]) -> _Peeked | None:
    """What a frame is (None: not a book; counted in ``skipped``). Raises on a frame that is not JSON of
    the venue's shape: the caller counts it as damage."""
    if venue == Venue.BINANCE:
        return _peek_binance_frame(frame, skipped)
    text = frame.lstrip()
    if text[:1] in (b"[", "["):  # a LIST format: rare, decoded in full to tell what it holds
        events = upbit.decode(frame)
        books = [e for e in events if isinstance(e, upbit.Orderbook)]
        if len(books) == 1 and len(events) == 1:
            return _Peeked(Kind.BOOK, books[0].code, None)
        skipped["upbit:list frame"] += 1
        return None
    u = _peek_upbit.decode(frame)
    kind = u.type if u.type is not None else u.ty
    code = u.code if u.code is not None else u.cd
    if kind == "orderbook":
        if code is None:
            raise FrameError("orderbook frame without code")
        return _Peeked(Kind.BOOK, code, None)
    if kind is None and u.status is None:
        raise FrameError("not an Upbit server message")
    skipped[f"upbit:{_SKIPPED_NAMES.get(kind or '', 'Status' if u.status else 'unsupported')}"] += 1
    return None


# -- one format per file: lines in, timed events out -------------------------------------------------


@attrs.frozen
class Timed:
    epoch_s: float
    venue: str
    symbol: str | None
    kind: Kind
    frame: str | bytes


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError(f"not a finite time: {x}")
    return x


def _venue_of(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    return Venue.BINANCE if Venue.BINANCE in host else Venue.UPBIT if Venue.UPBIT in host else None


class _OurLine(msgspec.Struct):
    t_s: float
    venue: Venue
    kind: Literal["ws", "rest"]
    frame: str
    wall_ns: float = 0.0


_our_line = msgspec.json.Decoder(_OurLine)


class LineFormat(Protocol):
    def parse(self, line: bytes, skipped: Counter[str]) -> list[Timed]:
        """One line's events (without its newline); raises on a line it cannot read (the caller counts it)."""
        ...


class _Ours:
    """Our recording: paced by ``t_s``, placed on the wall clock by the first line's ``wall_ns``."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self._base: float | None = None

    def parse(self, line: bytes, skipped: Counter[str]) -> list[Timed]:
        record = _our_line.decode(text_of(line))
        base = record.wall_ns / 1e9 - record.t_s if self._base is None else self._base
        at = _finite(base + record.t_s)
        peeked = _peek(record.venue, record.frame, skipped)
        self._base = base  # the session clock's origin on the wall clock (t_s is the pace: virtual runs too)
        return [] if peeked is None else [Timed(at, record.venue, peeked.symbol, peeked.kind, record.frame)]


class Hftbacktest:
    """``<ns> <json>``: diffs paced by exchange time, snapshots by receive time plus the offset."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self.offset_s = hft_offset_s
        self.offsets: list[float] | None = None  # collected during the pre-scan only

    def parse(self, line: bytes, skipped: Counter[str]) -> list[Timed]:
        """A line as a collector writes it (ASCII, one line, a stamp of 12 to 300 digits) is read as bytes, as its
        text would be read: the pattern's digits are the bytes before the first space, the frame is peeked at as
        bytes (most are skipped: trades and tickers) and the stamp, a finite float, is read only for a kept one.
        Any other line is read as text."""
        space = line.find(b" ")
        if not (12 <= space <= 300 and line.isascii() and line[:space].isdigit()) or line.find(b"\n") >= 0:
            return self._parse_text(text_of(line), skipped)
        payload = line[space + 1 :]
        peeked = _peek_binance_frame(payload, skipped)
        if peeked is None:
            return []
        return self._timed(int(line[:space]) / 1e9, payload.decode("ascii"), peeked)

    def _parse_text(self, text: str, skipped: Counter[str]) -> list[Timed]:
        m = _HFT_LINE.match(text)
        if m is None:
            raise ValueError("not '<ns> <json>'")
        local_s = _finite(int(m.group(1)) / 1e9)
        payload = m.group(2)
        peeked = _peek(Venue.BINANCE, payload, skipped)
        if peeked is None:
            return []
        return self._timed(local_s, payload, peeked)

    def _timed(self, local_s: float, payload: str, peeked: _Peeked) -> list[Timed]:
        if peeked.event_ms is not None:
            if self.offsets is not None:
                self.offsets.append(peeked.event_ms / 1e3 - local_s)
            at = peeked.event_ms / 1e3
        else:
            at = local_s + self.offset_s
        return [Timed(at, Venue.BINANCE, peeked.symbol, peeked.kind, payload)]


class _Cryptofeed:
    """Connection headers name the venue of the frames received after them; HTTP bodies name their URL."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self._path = path
        self._venue: str | None = None

    def parse(self, line: bytes, skipped: Counter[str]) -> list[Timed]:
        text = text_of(line)
        header = _CF_HEADER.match(text)
        if header is not None:
            url, arrow, ts, body = header.groups()
            return self._header(url, arrow, ts, body, skipped)
        received = _CF_RECEIVED.match(text)
        if received is None:
            raise ValueError("neither a header nor a received frame")
        if self._venue is None:
            skipped["before header"] += 1
            return []
        ts, payload = received.groups()
        frame: str | bytes = ast.literal_eval(payload) if payload.startswith(("b'", 'b"')) else payload
        peeked = _peek(self._venue, frame, skipped)
        return [] if peeked is None else [Timed(_finite(float(ts)), self._venue, peeked.symbol, peeked.kind, frame)]

    def _header(self, url: str, arrow: str, ts: str, body: str | None, skipped: Counter[str]) -> list[Timed]:
        if arrow == "<->":
            self._venue = _venue_of(url)
            if self._venue is None:
                raise RecordingError(f"{self._path}: a connection to {url}, neither Upbit nor Binance")
        elif arrow == "->":  # an HTTP response body
            rest_venue = _venue_of(url)
            if rest_venue != Venue.BINANCE or urlsplit(url).path != "/api/v3/depth" or body is None:
                skipped[f"{rest_venue or 'other'}:http"] += 1
                return []
            peeked = _peek(Venue.BINANCE, body, skipped)
            if peeked is not None:
                symbol = parse_qs(urlsplit(url).query).get("symbol", [None])[0]
                return [Timed(_finite(float(ts)), Venue.BINANCE, symbol.upper() if symbol else None, peeked.kind, body)]
        else:
            skipped["sent"] += 1
        return []


FORMATS: dict[str, Callable[[Path, float], LineFormat]] = {
    "ours": _Ours,
    "hftbacktest": Hftbacktest,
    "cryptofeed": _Cryptofeed,
}


def text_of(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """ "ours", "hftbacktest" or "cryptofeed", from the first line; RecordingError otherwise."""
    reader = LineReader(path)
    lines = iter(reader)
    try:
        first = next(lines, None)
    except InputError as exc:
        raise RecordingError(str(exc)) from None
    finally:
        if isinstance(lines, Generator):  # LineReader's iterator is a generator: close its file now
            lines.close()
    if first is None:
        if reader.truncated:
            raise RecordingError(f"{path}: the gzip data ends before the first whole line (cut short)")
        raise RecordingError(f"{path}: empty file")
    if first[1] is None:
        raise RecordingError(
            f"{path}: not a recording this tool reads (its first line is longer than {MAX_LINE_BYTES // MIB} MiB)"
        )
    text = text_of(first[1])
    if text.startswith("{") and '"t_s"' in text:
        return "ours"
    if _HFT_LINE.match(text):
        return "hftbacktest"
    if _CF_HEADER.match(text):
        return "cryptofeed"
    raise RecordingError(
        f"{path}: not a recording this tool reads (expected our recording_<id>.jsonl.gz, "
        f"hftbacktest '<ns> <json>' lines or a cryptofeed raw file); first line starts "
        f"{text[:60]!r}"
    )
