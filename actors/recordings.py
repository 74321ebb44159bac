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
a frame that does not decode is counted as ``malformed`` and skipped, never fatal. Several files
(a cryptofeed WebSocket file and its HTTP file, or one file per venue) merge by time.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union
from urllib.parse import parse_qs, urlsplit

import attrs

from actors.core.venues import FrameError, binance, upbit

BookEvent = Union[binance.DepthDiff, binance.DepthSnapshot, upbit.Orderbook]

_HFT_LINE = re.compile(r"^(\d{12,}) (.*)$")
_CF_HEADER = re.compile(r"^(\S+://\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")


class RecordingError(Exception):
    """A recording that cannot be replayed; str() says which file and why."""


@attrs.frozen
class Recorded:
    at_s: float   # seconds since the recording's first kept event
    venue: str    # "upbit" | "binance"
    symbol: str   # Upbit code or Binance symbol (upper case)
    event: BookEvent


@attrs.define
class Recording:
    events: list[Recorded]
    start_epoch_ms: int
    sources: list[str]               # "path (format)"
    skipped: Counter = attrs.field(factory=Counter)

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


def _decode(venue: str, frame: str | bytes, skipped: Counter) -> list[tuple[str | None, BookEvent]]:
    """The book events in one frame, as (symbol, event); everything else is counted in ``skipped``."""
    try:
        if venue == "binance":
            event = binance.decode(frame)
            if isinstance(event, binance.DepthDiff):
                return [(event.symbol.upper(), event)]
            if isinstance(event, binance.DepthSnapshot) and event.stream is None:
                return [(None, event)]
            skipped[f"binance:{type(event).__name__}"] += 1
            return []
        out: list[tuple[str | None, BookEvent]] = []
        for event in upbit.decode(frame):
            if isinstance(event, upbit.Orderbook):
                out.append((event.code, event))
            else:
                skipped[f"upbit:{type(event).__name__}"] += 1
        return out
    except FrameError as exc:  # a message type no book needs (kline, ...) is not damage
        skipped[f"{venue}:unsupported" if str(exc).startswith("unsupported") else "malformed"] += 1
        return []


def _venue_of(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    return "binance" if "binance" in host else "upbit" if "upbit" in host else None


def _read_ours(lines: Iterable[str], skipped: Counter) -> Iterator[_Timed]:
    base: float | None = None
    for line in lines:
        try:
            record = json.loads(line)
            t_s, venue, kind, frame = record["t_s"], record["venue"], record["kind"], record["frame"]
        except (ValueError, KeyError, TypeError):
            skipped["malformed"] += 1
            continue
        if base is None:  # the session clock's origin on the wall clock (t_s is the pace: virtual runs too)
            base = record.get("wall_ns", 0) / 1e9 - t_s
        if venue not in ("upbit", "binance") or kind not in ("ws", "rest"):
            skipped["malformed"] += 1
            continue
        for symbol, event in _decode(venue, frame, skipped):
            yield _Timed(base + t_s, venue, symbol, event)


def _read_hftbacktest(lines: Iterable[str], skipped: Counter) -> Iterator[_Timed]:
    rows: list[tuple[float, str | None, BookEvent]] = []
    offsets: list[float] = []
    for line in lines:
        m = _HFT_LINE.match(line)
        if m is None:
            skipped["malformed"] += 1
            continue
        local_s = int(m.group(1)) / 1e9
        for symbol, event in _decode("binance", m.group(2), skipped):
            if isinstance(event, binance.DepthDiff):
                offsets.append(event.event_ms / 1e3 - local_s)
            rows.append((local_s, symbol, event))
    offset = statistics.median(offsets) if offsets else 0.0
    for local_s, symbol, event in rows:
        at = event.event_ms / 1e3 if isinstance(event, binance.DepthDiff) else local_s + offset
        yield _Timed(at, "binance", symbol, event)


def _read_cryptofeed(lines: Iterable[str], skipped: Counter, path: Path) -> Iterator[_Timed]:
    venue: str | None = None
    for line in lines:
        header = _CF_HEADER.match(line)
        if header is not None:
            url, arrow, ts, body = header.groups()
            if arrow == "<->":
                venue = _venue_of(url)
                if venue is None:
                    raise RecordingError(f"{path}: a connection to {url}, neither Upbit nor Binance")
            elif arrow == "->":  # an HTTP response body
                rest_venue = _venue_of(url)
                query = parse_qs(urlsplit(url).query)
                if rest_venue != "binance" or urlsplit(url).path != "/api/v3/depth" or body is None:
                    skipped[f"{rest_venue or 'other'}:http"] += 1
                    continue
                symbol = query.get("symbol", [None])[0]
                for _, event in _decode("binance", body, skipped):
                    yield _Timed(float(ts), "binance", symbol.upper() if symbol else None, event)
            else:
                skipped["sent"] += 1
            continue
        received = _CF_RECEIVED.match(line)
        if received is None or venue is None:
            skipped["malformed" if received is None else "before header"] += 1
            continue
        ts, payload = received.groups()
        frame: str | bytes = payload
        if payload.startswith(("b'", 'b"')):
            try:
                frame = ast.literal_eval(payload)
            except (ValueError, SyntaxError):
                skipped["malformed"] += 1
                continue
        for symbol, event in _decode(venue, frame, skipped):
            yield _Timed(float(ts), venue, symbol, event)


# -- files -----------------------------------------------------------------------------------------

def _lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line:
                yield line


def detect_format(path: Path) -> str:
    try:
        first = next(_lines(path), "")
    except FileNotFoundError:
        raise RecordingError(f"{path}: file not found") from None
    except (OSError, EOFError) as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from None
    if first.startswith("{") and '"t_s"' in first:
        return "ours"
    if _HFT_LINE.match(first):
        return "hftbacktest"
    if _CF_HEADER.match(first):
        return "cryptofeed"
    if not first:
        raise RecordingError(f"{path}: empty file")
    raise RecordingError(f"{path}: not a recording this tool reads (expected our recording_<id>.jsonl.gz, "
                         f"hftbacktest '<ns> <json>' lines or a cryptofeed raw file); first line starts "
                         f"{first[:60]!r}")


def _read_file(path: Path, skipped: Counter) -> tuple[str, list[_Timed]]:
    fmt = detect_format(path)
    lines = _lines(path)
    try:
        if fmt == "ours":
            timed = list(_read_ours(lines, skipped))
        elif fmt == "hftbacktest":
            timed = list(_read_hftbacktest(lines, skipped))
        else:
            timed = list(_read_cryptofeed(lines, skipped, path))
    except (OSError, EOFError) as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from None
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
    skipped: Counter = Counter()
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
        raise RecordingError(f"{' + '.join(map(str, paths))}: no order-book data (skipped "
                             f"{dict(skipped) or 'nothing'})")
    merged.sort(key=lambda t: t.epoch_s)
    start = merged[0].epoch_s
    events = [Recorded(round(t.epoch_s - start, 6), t.venue, t.symbol or "", t.event) for t in merged]
    return Recording(events, round(start * 1000), sources, skipped)
