"""Recorded market data in, one time-ordered list of book events out (what a replay serves).

Three formats, told apart by their first line (gzip or plain text, whatever the file name):

- **ours** (``--record``): ``recording_<id>.jsonl.gz``, one JSON object a line with ``t_s`` (session
  clock), ``wall_ns``, ``venue``, ``kind`` (``ws`` | ``rest``) and ``frame``. Paced by ``t_s``.
- **hftbacktest** (its collector): ``<local_receive_ns> <raw JSON>``, combined-stream envelopes and
  bare REST depth bodies. The collector's clock can be off by seconds, so diffs are paced by their
  exchange time ``E`` and a snapshot by its receive time shifted by the median ``E - receive`` offset.
- **cryptofeed** (its raw-data recorder): header ``<url> <-> <ts>``, sent frames ``<url> <- <ts>:``,
  received frames ``<ts>: <payload>`` (Upbit's binary frames as Python ``b'...'`` literals), HTTP
  bodies ``<url> -> <ts>: <body>``. The venue comes from the URL, a REST snapshot's symbol from its query.

Only what a book needs is kept: Binance depth diffs and REST depth snapshots, Upbit order books.
Everything else (trades, tickers, control replies, keep-alives) is counted in ``skipped`` by kind;
a line or frame that does not decode (whatever the decoder raises: deeply nested JSON is a
``RecursionError``) is counted as ``malformed`` and skipped, never fatal. Several files (a cryptofeed
WebSocket file and its HTTP file, or one file per venue) merge by time.

Files are read through ``LineReader``: regular files only, in bounded chunks, one line at most
``MAX_LINE_BYTES`` (a longer one is counted and skipped; as the first line it means "not a recording").
The file size is not capped: a day's recording can be gigabytes. A gzip stream cut short (a recorder
killed) keeps every whole line before the cut and counts a ``truncated tail``, as does a torn last line
of a plain file; corrupt gzip data is a ``RecordingError``.
"""

from __future__ import annotations

import ast
import math
import re
import statistics
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Callable, Literal, Protocol, Sequence, Union
from urllib.parse import parse_qs, urlsplit

import attrs
import msgspec

from actors.core.venues import FrameError, binance, upbit
from actors.inputs import MAX_LINE_BYTES, MIB, InputError, LineReader

BookEvent = Union[binance.DepthDiff, binance.DepthSnapshot, upbit.Orderbook]

OVER_LONG = f"line over {MAX_LINE_BYTES // MIB} MiB"
TRUNCATED = "truncated tail"  # a gzip stream cut short, or a torn last line: the recorder was killed

_HFT_LINE = re.compile(r"^(\d{12,}) (.*)$")
_CF_HEADER = re.compile(r"^(\S+://\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")


class RecordingError(Exception):
    """A recording that cannot be replayed; str() says which file and why."""


@attrs.frozen
class Recorded:
    at_s: float  # seconds since the recording's first kept event
    venue: str  # "upbit" | "binance"
    symbol: str  # Upbit code or Binance symbol (upper case)
    event: BookEvent


@attrs.define
class Recording:
    events: list[Recorded]
    start_epoch_ms: int
    sources: list[str]  # "path (format)"
    skipped: Counter[str] = attrs.field(factory=Counter)

    @property
    def duration_s(self) -> float:
        return self.events[-1].at_s if self.events else 0.0

    def symbols(self, venue: str) -> set[str]:
        return {r.symbol for r in self.events if r.venue == venue}

    def describe(self) -> str:
        counts = Counter(f"{r.venue}:{r.symbol}:{type(r.event).__name__}" for r in self.events)
        kept = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        skipped = ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items())) or "nothing"
        return f"{' + '.join(self.sources)}: {self.duration_s:.1f} s; kept {kept}; skipped {skipped}"


# -- one event per frame ---------------------------------------------------------------------------


@attrs.frozen
class _Timed:
    epoch_s: float
    venue: str
    symbol: str | None  # None: a REST snapshot whose symbol the file does not say
    event: BookEvent


def _decode(venue: str, frame: str | bytes, skipped: Counter[str]) -> list[tuple[str | None, BookEvent]]:
    """The book events in one frame, as (symbol, event); other kinds are counted in ``skipped``.

    A frame that does not decode raises (whatever its decoder raised): the caller counts it."""
    try:
        events = [binance.decode(frame)] if venue == "binance" else upbit.decode(frame)
    except FrameError as exc:
        if not str(exc).startswith("unsupported"):
            raise
        skipped[f"{venue}:unsupported"] += 1  # a message type no book needs (kline, ...) is not damage
        return []
    out: list[tuple[str | None, BookEvent]] = []
    for event in events:
        if isinstance(event, binance.DepthDiff):
            out.append((event.symbol.upper(), event))
        elif isinstance(event, binance.DepthSnapshot) and event.stream is None:
            out.append((None, event))
        elif isinstance(event, upbit.Orderbook):
            out.append((event.code, event))
        else:
            skipped[f"{venue}:{type(event).__name__}"] += 1
    return out


def _venue_of(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    return "binance" if "binance" in host else "upbit" if "upbit" in host else None


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError(f"not a finite time: {x}")
    return x


class _OurLine(msgspec.Struct):
    t_s: float
    venue: Literal["upbit", "binance"]
    kind: Literal["ws", "rest"]
    frame: str
    wall_ns: float = 0.0


_our_line = msgspec.json.Decoder(_OurLine)


class _Ours:
    """Our recording: paced by ``t_s``, placed on the wall clock by the first line's ``wall_ns``."""

    def __init__(self, path: Path) -> None:
        self.timed: list[_Timed] = []
        self._base: float | None = None

    def line(self, text: str, skipped: Counter[str]) -> None:
        record = _our_line.decode(text)
        base = record.wall_ns / 1e9 - record.t_s if self._base is None else self._base
        at = _finite(base + record.t_s)
        events = _decode(record.venue, record.frame, skipped)
        self._base = base  # the session clock's origin on the wall clock (t_s is the pace: virtual runs too)
        self.timed += [_Timed(at, record.venue, symbol, event) for symbol, event in events]

    def end(self) -> list[_Timed]:
        return self.timed


class _Hftbacktest:
    """``<ns> <json>``: diffs paced by exchange time, snapshots by receive time plus the median offset."""

    def __init__(self, path: Path) -> None:
        self._rows: list[tuple[float, str | None, BookEvent]] = []
        self._offsets: list[float] = []

    def line(self, text: str, skipped: Counter[str]) -> None:
        m = _HFT_LINE.match(text)
        if m is None:
            raise ValueError("not '<ns> <json>'")
        local_s = _finite(int(m.group(1)) / 1e9)
        events = _decode("binance", m.group(2), skipped)
        self._offsets += [e.event_ms / 1e3 - local_s for _, e in events if isinstance(e, binance.DepthDiff)]
        self._rows += [(local_s, symbol, event) for symbol, event in events]

    def end(self) -> list[_Timed]:
        offset = statistics.median(self._offsets) if self._offsets else 0.0
        return [
            _Timed(
                event.event_ms / 1e3 if isinstance(event, binance.DepthDiff) else local_s + offset,
                "binance",
                symbol,
                event,
            )
            for local_s, symbol, event in self._rows
        ]


class _Cryptofeed:
    """Connection headers name the venue of the frames received after them; HTTP bodies name their URL."""

    def __init__(self, path: Path) -> None:
        self.timed: list[_Timed] = []
        self._path = path
        self._venue: str | None = None

    def line(self, text: str, skipped: Counter[str]) -> None:
        header = _CF_HEADER.match(text)
        if header is not None:
            url, arrow, ts, body = header.groups()
            self._header(url, arrow, ts, body, skipped)
            return
        received = _CF_RECEIVED.match(text)
        if received is None:
            raise ValueError("neither a header nor a received frame")
        if self._venue is None:
            skipped["before header"] += 1
            return
        ts, payload = received.groups()
        frame: str | bytes = ast.literal_eval(payload) if payload.startswith(("b'", 'b"')) else payload
        self._add(_finite(float(ts)), self._venue, _decode(self._venue, frame, skipped))

    def _header(self, url: str, arrow: str, ts: str, body: str | None, skipped: Counter[str]) -> None:
        if arrow == "<->":
            self._venue = _venue_of(url)
            if self._venue is None:
                raise RecordingError(f"{self._path}: a connection to {url}, neither Upbit nor Binance")
        elif arrow == "->":  # an HTTP response body
            rest_venue = _venue_of(url)
            if rest_venue != "binance" or urlsplit(url).path != "/api/v3/depth" or body is None:
                skipped[f"{rest_venue or 'other'}:http"] += 1
                return
            symbol = parse_qs(urlsplit(url).query).get("symbol", [None])[0]
            events = [(symbol.upper() if symbol else None, event) for _, event in _decode("binance", body, skipped)]
            self._add(_finite(float(ts)), "binance", events)
        else:
            skipped["sent"] += 1

    def _add(self, at: float, venue: str, events: list[tuple[str | None, BookEvent]]) -> None:
        self.timed += [_Timed(at, venue, symbol, event) for symbol, event in events]

    def end(self) -> list[_Timed]:
        return self.timed


class _Reader(Protocol):
    def line(self, text: str, skipped: Counter[str]) -> None: ...

    def end(self) -> list[_Timed]: ...


_READERS: dict[str, Callable[[Path], _Reader]] = {"ours": _Ours, "hftbacktest": _Hftbacktest, "cryptofeed": _Cryptofeed}


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


def _read_file(path: Path, skipped: Counter[str]) -> tuple[str, list[_Timed]]:
    fmt = detect_format(path)
    reader = _READERS[fmt](path)
    lines = LineReader(path)
    try:
        for _, line, terminated in lines:
            if line is None:
                skipped[OVER_LONG] += 1
                continue
            try:
                reader.line(_text(line), skipped)
            except RecordingError:
                raise
            except Exception:  # one line's damage, whatever its decoder raised (RecursionError too)
                skipped["malformed" if terminated else TRUNCATED] += 1
    except InputError as exc:
        raise RecordingError(str(exc)) from None
    if lines.truncated:
        skipped[TRUNCATED] += 1
    timed = reader.end()
    # a REST snapshot that does not name its symbol belongs to the file's only diff symbol
    diff_symbols = {t.symbol for t in timed if t.venue == "binance" and t.symbol is not None}
    out = []
    for t in timed:
        if t.symbol is None:
            if len(diff_symbols) != 1:
                skipped["binance:snapshot without symbol"] += 1
                continue
            t = attrs.evolve(t, symbol=next(iter(diff_symbols)))
        out.append(t)
    return fmt, out


def load(paths: Sequence[str | Path]) -> Recording:
    """Read and merge recordings (stable in time: same-time events keep their file order)."""
    if not paths:
        raise RecordingError("no recording given")
    skipped: Counter[str] = Counter()
    merged: list[_Timed] = []
    sources = []
    for p in paths:
        fmt, timed = _read_file(Path(p), skipped)
        sources.append(f"{p} ({fmt})")
        # keep each file's order (receive order) where its clock steps back a little
        last = -float("inf")
        for t in timed:
            last = max(last, t.epoch_s)
            merged.append(attrs.evolve(t, epoch_s=last) if t.epoch_s < last else t)
    if not merged:
        raise RecordingError(
            f"{' + '.join(map(str, paths))}: no order-book data (skipped {dict(skipped) or 'nothing'})"
        )
    merged.sort(key=lambda t: t.epoch_s)
    start = merged[0].epoch_s
    events = [Recorded(round(t.epoch_s - start, 6), t.venue, t.symbol or "", t.event) for t in merged]
    return Recording(events, round(start * 1000), sources, skipped)
