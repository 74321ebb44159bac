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

Each format's line parser, and the peek that tells a book from the rest, is in ``actors.sim.recording_formats``.

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

import heapq
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence, Union

import attrs

from actors.core.venues import FrameError, binance, upbit
from actors.core.vocabulary import Venue
from actors.inputs import MAX_LINE_BYTES, MIB, InputError, LineReader
from actors.sim.recording_formats import FORMATS, Hftbacktest, Kind, LineFormat, RecordingError, Timed, detect_format

BookEvent = Union[binance.DepthDiff, binance.DepthSnapshot, upbit.Orderbook]

OVER_LONG = f"line over {MAX_LINE_BYTES // MIB} MiB"
TRUNCATED = "truncated tail"  # a gzip stream cut short, or a torn last line: the recorder was killed
MALFORMED = "malformed"
PRESCAN_LINES = 20_000  # per file: about three minutes of a Binance stream with trades and tickers


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


# -- files -----------------------------------------------------------------------------------------


def _timed_lines(path: Path, fmt: LineFormat, skipped: Counter[str], limit: int | None = None) -> Iterator[Timed]:
    """The file's events in file order, read line by line (the first ``limit`` lines only, if given)."""
    lines, parse = LineReader(path), fmt.parse
    try:
        for number, line, terminated in lines:
            if limit is not None and number > limit:
                return
            if line is None:
                skipped[OVER_LONG] += 1
                continue
            try:
                events = parse(line, skipped)
            except RecordingError:
                raise
            except Exception:  # one line's damage, whatever its parser raised (RecursionError too)
                skipped[MALFORMED if terminated else TRUNCATED] += 1
                continue
            if events:  # most lines of a recording are skipped: trades, tickers
                yield from events
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
        reader = FORMATS[fmt](path, 0.0)
        if isinstance(reader, Hftbacktest):
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
        offsets = reader.offsets if isinstance(reader, Hftbacktest) else None
        return cls(path, fmt, books, rest_symbol, statistics.median(offsets) if offsets else 0.0)

    def events(self, skipped: Counter[str]) -> Iterator[Timed]:
        """The file's events with their symbols, in file order, each no earlier than the one before it
        (a file's order is its receive order where its clock steps back a little)."""
        last = -math.inf
        for t in _timed_lines(self.path, FORMATS[self.fmt](self.path, self.hft_offset_s), skipped):
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


def _merged(files: Iterable[_File], skipped: Counter[str]) -> Iterator[Timed]:
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
