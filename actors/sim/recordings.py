"""Recorded market data in, one time-ordered stream of book events out (what a replay serves).

Three formats, told apart by their first line (gzip or plain text, whatever the file name):

- **ours** (``--record``): ``recording_<id>.jsonl.gz``, one JSON object a line with ``t_s`` (session
  clock), ``wall_ns``, ``venue``, ``kind`` (``ws`` | ``rest``) and ``frame``. Paced by ``t_s``.
- **hftbacktest** (its collector): ``<local_receive_ns> <raw JSON>``, combined-stream envelopes and
  bare REST depth bodies. The collector's clock can be off by seconds, so diffs are paced by their
  exchange time ``E`` and a snapshot by its receive time shifted by the median ``E - receive`` offset
  of the diffs in the file's first ``PRESCAN_LINES`` lines.
- **cryptofeed** (its raw-data recorder): header ``<url> <-> <ts>``, sent frames ``<url> <- <ts>:``,
  received frames ``<ts>: <payload>`` (Upbit's binary frames as Python ``b'...'`` literals), HTTP
  bodies ``<url> -> <ts>: <body>``. The venue comes from the URL, a REST snapshot's symbol from its query.

**Streaming.** ``Recording.open`` reads only the first ``PRESCAN_LINES`` lines of each file (format,
which books it records, the hftbacktest clock offset, the symbol of a REST body that does not name
it); ``Recording.events()`` then reads the files line by line and merges them by time with a heap, so
memory does not grow with the recording's length (a day is gigabytes of text). A book that first
appears after the pre-scan was not known when the replay chose what to synthesise: its events are
counted in ``skipped`` and left out.

Only what a book needs is kept: Binance depth diffs and REST depth snapshots, Upbit order books. Each
kept event is the raw frame as recorded plus what a peek at it tells (venue, symbol, kind, time);
``Recorded.event`` decodes it in full on demand (the replay's fast path hands the raw frame to the
feeds, which decode it themselves). Everything else (trades, tickers, control replies, keep-alives) is
counted in ``skipped`` by kind; a line that does not parse, or (with ``validate``) a frame that does
not decode in full, whatever its decoder raises (deeply nested JSON is a ``RecursionError``), is
counted as ``malformed`` and skipped, never fatal.

Files are read through ``LineReader``: regular files only, in bounded chunks, one line at most
``MAX_LINE_BYTES`` (a longer one is counted and skipped; as the first line it means "not a recording").
A gzip stream cut short (a recorder killed) keeps every whole line before the cut and counts a
``truncated tail``, as does a torn last line of a plain file; corrupt gzip data is a ``RecordingError``
(at the point of the stream where it is found).
"""

from __future__ import annotations

import ast
import enum
import heapq
import math
import re
import statistics
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Mapping, Protocol, Sequence, Union
from urllib.parse import parse_qs, urlsplit

import attrs
import msgspec

from actors.core.venues import FrameError, binance, upbit
from actors.core.vocabulary import Venue
from actors.inputs import MAX_LINE_BYTES, MIB, InputError, LineReader

BookEvent = Union[binance.DepthDiff, binance.DepthSnapshot, upbit.Orderbook]

OVER_LONG = f"line over {MAX_LINE_BYTES // MIB} MiB"
TRUNCATED = "truncated tail"  # a gzip stream cut short, or a torn last line: the recorder was killed
MALFORMED = "malformed"
PRESCAN_LINES = 20_000  # per file: about three minutes of a Binance stream with trades and tickers

_HFT_LINE = re.compile(r"^(\d{12,}) (.*)$")
_CF_HEADER = re.compile(r"^(\S+://\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")


class RecordingError(Exception):
    """A recording that cannot be replayed; str() says which file and why."""


class Kind(enum.Enum):
    DIFF = "diff"  # a Binance depth diff
    SNAPSHOT = "snapshot"  # a Binance REST depth body
    BOOK = "book"  # an Upbit order book (a whole top-N book)


class Recorded:
    """One kept event: the frame as recorded and what a peek at it says; ``event`` decodes it in full."""

    __slots__ = ("at_s", "venue", "symbol", "kind", "frame", "_event")

    def __init__(self, at_s: float, venue: str, symbol: str, kind: Kind, frame: str | bytes) -> None:
        self.at_s = at_s  # seconds since the recording's first kept event
        self.venue = venue
        self.symbol = symbol  # Upbit code or Binance symbol (upper case)
        self.kind = kind
        self.frame = frame
        self._event: BookEvent | None = None

    @property
    def event(self) -> BookEvent:
        """The decoded event (decoded once); raises whatever the decoder raises for a damaged frame."""
        return self.decode()

    def decode(self) -> BookEvent:
        if self._event is None:
            self._event = _decode_book(self.venue, self.kind, self.frame)
        return self._event


def _decode_book(venue: str, kind: Kind, frame: str | bytes) -> BookEvent:
    if venue == Venue.BINANCE:
        event = binance.decode(frame)
        expected = binance.DepthDiff if kind is Kind.DIFF else binance.DepthSnapshot
        if isinstance(event, expected):
            return event
        raise FrameError(f"a {kind.value} frame that decodes as {type(event).__name__}")
    books = [e for e in upbit.decode(frame) if isinstance(e, upbit.Orderbook)]
    if len(books) != 1:
        raise FrameError(f"an Upbit frame with {len(books)} order books")
    return books[0]


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


@attrs.frozen
class _Peeked:
    kind: Kind
    symbol: str | None  # None: a REST body, which does not say its symbol
    event_ms: int | None  # a diff's exchange time


def _peek(venue: str, frame: str | bytes, skipped: Counter[str]) -> _Peeked | None:
    """What a frame is (None: not a book; counted in ``skipped``). Raises on a frame that is not JSON of
    the venue's shape: the caller counts it as damage."""
    if venue == Venue.BINANCE:
        p = _peek_binance.decode(frame)
        d = p.data if p.data is not None else p
        if d.e == "depthUpdate":
            if d.s is None or d.E is None:
                raise FrameError("depthUpdate without s or E")
            return _Peeked(Kind.DIFF, d.s.upper(), d.E)
        if p.lastUpdateId is not None and p.stream is None:
            return _Peeked(Kind.SNAPSHOT, None, None)
        if p.stream is not None and "@bookTicker" in p.stream:
            name = "BookTicker"
        elif p.lastUpdateId is not None:
            name = "DepthSnapshot"  # partial depth on a stream: not what a diff book starts from
        elif d.e is not None:
            name = _SKIPPED_NAMES.get(d.e, "unsupported")
        else:
            name = "ControlReply" if p.id is not None else "unsupported"
        skipped[f"binance:{name}"] += 1
        return None
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
class _Timed:
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


class _Format(Protocol):
    def parse(self, text: str, skipped: Counter[str]) -> list[_Timed]: ...


class _Ours:
    """Our recording: paced by ``t_s``, placed on the wall clock by the first line's ``wall_ns``."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self._base: float | None = None

    def parse(self, text: str, skipped: Counter[str]) -> list[_Timed]:
        record = _our_line.decode(text)
        base = record.wall_ns / 1e9 - record.t_s if self._base is None else self._base
        at = _finite(base + record.t_s)
        peeked = _peek(record.venue, record.frame, skipped)
        self._base = base  # the session clock's origin on the wall clock (t_s is the pace: virtual runs too)
        return [] if peeked is None else [_Timed(at, record.venue, peeked.symbol, peeked.kind, record.frame)]


class _Hftbacktest:
    """``<ns> <json>``: diffs paced by exchange time, snapshots by receive time plus the offset."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self.offset_s = hft_offset_s
        self.offsets: list[float] | None = None  # collected during the pre-scan only

    def parse(self, text: str, skipped: Counter[str]) -> list[_Timed]:
        m = _HFT_LINE.match(text)
        if m is None:
            raise ValueError("not '<ns> <json>'")
        local_s = _finite(int(m.group(1)) / 1e9)
        payload = m.group(2)
        peeked = _peek(Venue.BINANCE, payload, skipped)
        if peeked is None:
            return []
        if peeked.event_ms is not None:
            if self.offsets is not None:
                self.offsets.append(peeked.event_ms / 1e3 - local_s)
            at = peeked.event_ms / 1e3
        else:
            at = local_s + self.offset_s
        return [_Timed(at, Venue.BINANCE, peeked.symbol, peeked.kind, payload)]


class _Cryptofeed:
    """Connection headers name the venue of the frames received after them; HTTP bodies name their URL."""

    def __init__(self, path: Path, hft_offset_s: float = 0.0) -> None:
        self._path = path
        self._venue: str | None = None

    def parse(self, text: str, skipped: Counter[str]) -> list[_Timed]:
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
        return [] if peeked is None else [_Timed(_finite(float(ts)), self._venue, peeked.symbol, peeked.kind, frame)]

    def _header(self, url: str, arrow: str, ts: str, body: str | None, skipped: Counter[str]) -> list[_Timed]:
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
                return [
                    _Timed(_finite(float(ts)), Venue.BINANCE, symbol.upper() if symbol else None, peeked.kind, body)
                ]
        else:
            skipped["sent"] += 1
        return []


_FORMATS: dict[str, Callable[[Path, float], _Format]] = {
    "ours": _Ours,
    "hftbacktest": _Hftbacktest,
    "cryptofeed": _Cryptofeed,
}


# -- files -----------------------------------------------------------------------------------------


def _text(line: bytes) -> str:
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
    text = _text(first[1])
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


def _timed_lines(path: Path, fmt: _Format, skipped: Counter[str], limit: int | None = None) -> Iterator[_Timed]:
    """The file's events in file order, read line by line (the first ``limit`` lines only, if given)."""
    lines = LineReader(path)
    try:
        for number, line, terminated in lines:
            if limit is not None and number > limit:
                return
            if line is None:
                skipped[OVER_LONG] += 1
                continue
            try:
                yield from fmt.parse(_text(line), skipped)
            except RecordingError:
                raise
            except Exception:  # one line's damage, whatever its parser raised (RecursionError too)
                skipped[MALFORMED if terminated else TRUNCATED] += 1
    except InputError as exc:
        raise RecordingError(str(exc)) from None
    if lines.truncated:
        skipped[TRUNCATED] += 1


@attrs.define
class _File:
    """One recording file and what its first lines say."""

    path: Path
    fmt: str
    books: set[tuple[str, str]]  # (venue, symbol) seen in the pre-scan
    rest_symbol: str | None  # the symbol of a REST body that does not name one: the file's only diff symbol
    hft_offset_s: float

    @classmethod
    def prescan(cls, path: Path) -> _File:
        fmt = detect_format(path)
        reader = _FORMATS[fmt](path, 0.0)
        if isinstance(reader, _Hftbacktest):
            reader.offsets = []
        books: set[tuple[str, str]] = set()
        diff_symbols: set[str | None] = set()
        unnamed_rest = False
        for t in _timed_lines(path, reader, Counter(), PRESCAN_LINES):
            if t.symbol is None:
                unnamed_rest = True
            else:
                books.add((t.venue, t.symbol))
            if t.kind is Kind.DIFF:
                diff_symbols.add(t.symbol)
        rest_symbol = next(iter(diff_symbols)) if len(diff_symbols) == 1 else None
        if unnamed_rest and rest_symbol is not None:
            books.add((Venue.BINANCE, rest_symbol))
        offsets = reader.offsets if isinstance(reader, _Hftbacktest) else None
        return cls(path, fmt, books, rest_symbol, statistics.median(offsets) if offsets else 0.0)

    def events(self, skipped: Counter[str]) -> Iterator[_Timed]:
        """The file's events with their symbols, in file order, each no earlier than the one before it
        (a file's order is its receive order where its clock steps back a little)."""
        last = -math.inf
        for t in _timed_lines(self.path, _FORMATS[self.fmt](self.path, self.hft_offset_s), skipped):
            if t.symbol is None:
                if self.rest_symbol is None:
                    skipped["binance:snapshot without symbol"] += 1
                    continue
                t = attrs.evolve(t, symbol=self.rest_symbol)
            if (t.venue, t.symbol) not in self.books:
                skipped[f"{t.venue}:{t.symbol} first seen after line {PRESCAN_LINES:,}"] += 1
                continue
            if t.epoch_s < last:
                t = attrs.evolve(t, epoch_s=last)
            last = t.epoch_s
            yield t


class Recording:
    """Recordings to replay, read as a stream (``events()``); ``open`` checks them and reads their start."""

    def __init__(self, files: list[_File], start_epoch_s: float) -> None:
        self._files = files
        self.sources = [f"{f.path} ({f.fmt})" for f in files]
        self.start_epoch_ms = round(start_epoch_s * 1000)
        self._start_s = start_epoch_s
        self.skipped: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()  # venue:symbol:kind -> events read so far
        self.duration_s = 0.0  # of the events read so far: the whole recording once read to its end

    @classmethod
    def open(cls, paths: Sequence[str | Path]) -> Recording:
        """Check the files (format, pre-scan) and find the first event; RecordingError says what is wrong."""
        if not paths:
            raise RecordingError("no recording given")
        files = [_File.prescan(Path(p)) for p in paths]
        skipped: Counter[str] = Counter()
        first = next(_merged(files, skipped), None)
        if first is None:  # the files were read to their end: ``skipped`` says what they hold
            raise RecordingError(
                f"{' + '.join(map(str, paths))}: no order-book data (skipped {dict(skipped) or 'nothing'})"
            )
        return cls(files, first.epoch_s)

    def symbols(self, venue: str) -> set[str]:
        """The books of ``venue`` the recording holds (seen in the files' pre-scans)."""
        return {symbol for f in self._files for v, symbol in f.books if v == venue}

    def events(self, *, validate: bool = True) -> Iterator[Recorded]:
        """Every kept event in time order (same-time events keep their file order), read as needed; each
        call reads the files again from their start.

        ``validate``: decode each event in full and count the ones that do not decode as ``malformed``;
        without it the frames are only peeked at (what the replay's fast path hands to the feeds)."""
        start, kept = self._start_s, self.kept
        kept.clear()
        self.skipped.clear()
        for t in _merged(self._files, self.skipped):
            r = Recorded(round(t.epoch_s - start, 6), t.venue, t.symbol or "", t.kind, t.frame)
            if validate:
                try:
                    r.decode()
                except Exception:  # whatever the decoder raised: one frame's damage
                    self.skipped[MALFORMED] += 1
                    continue
            kept[f"{r.venue}:{r.symbol}:{r.kind.value}"] += 1
            self.duration_s = r.at_s
            yield r

    def describe(self) -> str:
        kept = ", ".join(f"{k} {n}" for k, n in sorted(self.kept.items())) or "nothing yet"
        skipped = ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items())) or "nothing"
        return f"{' + '.join(self.sources)}: {self.duration_s:.1f} s; kept {kept}; skipped {skipped}"


@attrs.frozen
class Scan:
    """A pass over a recording's times and frame lengths, no frame decoded (``Recording.scan``): for each book
    (venue, symbol), the longest time between two of its stream frames, from its last one to the recording's
    end, and its longest frame. A REST snapshot is no stream frame (the feeds' staleness counts none)."""

    silence_s: Mapping[tuple[str, str], float]
    trailing_s: Mapping[tuple[str, str], float]
    longest: Mapping[tuple[str, str], int]


_SCANS: dict[tuple[tuple[str, int, int], ...], Scan] = {}  # by the files' path, size and mtime: sweeps scan once
_SCANS_KEPT = 16


def scan(recording: Recording) -> Scan:
    """``Scan`` of ``recording`` (cached while its files are unchanged)."""
    files = recording._files
    key = tuple((str(f.path), (st := f.path.stat()).st_size, st.st_mtime_ns) for f in files)
    if key not in _SCANS:
        if len(_SCANS) >= _SCANS_KEPT:
            del _SCANS[next(iter(_SCANS))]
        _SCANS[key] = _scan(files)
    return _SCANS[key]


def _scan(files: list[_File]) -> Scan:
    last: dict[tuple[str, str], float] = {}
    silence: dict[tuple[str, str], float] = {}
    longest: dict[tuple[str, str], int] = {}
    end = -math.inf
    for t in _merged(files, Counter()):
        end = t.epoch_s
        if t.kind is Kind.SNAPSHOT or t.symbol is None:
            continue
        book = (t.venue, t.symbol)
        before = last.get(book)
        if before is not None and t.epoch_s - before > silence.get(book, 0.0):
            silence[book] = t.epoch_s - before
        last[book] = t.epoch_s
        if len(t.frame) > longest.get(book, 0):
            longest[book] = len(t.frame)
    return Scan(silence, {book: end - at for book, at in last.items()}, longest)


def _merged(files: Iterable[_File], skipped: Counter[str]) -> Iterator[_Timed]:
    return heapq.merge(*(f.events(skipped) for f in files), key=lambda t: t.epoch_s)


@attrs.frozen
class Loaded:
    """A whole recording in memory (tests and small tools; a replay streams ``Recording.events``)."""

    recording: Recording
    events: list[Recorded]

    @property
    def skipped(self) -> Counter[str]:
        return self.recording.skipped

    @property
    def duration_s(self) -> float:
        return self.recording.duration_s

    def symbols(self, venue: str) -> set[str]:
        return self.recording.symbols(venue)

    def describe(self) -> str:
        return self.recording.describe()


def load(paths: Sequence[str | Path]) -> Loaded:
    """Read and merge recordings into a list (validated): for tests and small files only."""
    recording = Recording.open(paths)
    return Loaded(recording, list(recording.events()))


__all__ = ["Kind", "Loaded", "Recorded", "Recording", "RecordingError", "Scan", "detect_format", "load", "scan"]
