"""KPI arithmetic and the counters actors keep; the collector turns them into kpi_<id>.json.

Outsiders read a counter through its ``statistics()``, a frozen snapshot as of the call (the idea of
trio's ``MemoryChannelStatistics``), never its live fields. ``Dispersion`` and ``LatencyPercentiles``
are written into the KPI file as they are, so they are msgspec Structs (their field order is the
file's, and a reader decodes them strictly); ``FeedStatistics`` is only read in the process.
"""

from __future__ import annotations

import math
import statistics
from array import array
from typing import Iterable, Mapping

import attrs
import msgspec


class _UntrustedTime:
    """The time a book (or a feed) could not be used: ``untrusted_s`` over the stretches that ended, plus the one
    open since ``_untrusted_since``. Its users are attrs classes declaring both fields."""

    untrusted_s: float
    _untrusted_since: float | None

    def mark_untrusted(self, now: float) -> None:
        if self._untrusted_since is None:
            self._untrusted_since = now

    def mark_trusted(self, now: float) -> None:
        if self._untrusted_since is not None:
            self.untrusted_s += now - self._untrusted_since
            self._untrusted_since = None

    def current_untrusted_s(self, now: float) -> float:
        """Untrusted time up to ``now``; a stretch that starts after ``now`` counts nothing."""
        extra = 0.0 if self._untrusted_since is None else max(0.0, now - self._untrusted_since)
        return self.untrusted_s + extra


@attrs.define
class SymbolStats(_UntrustedTime):
    """Counters of one book of a feed that keeps many (a Binance shard, Upbit's many codes); a feed of one pair
    keeps none (``FeedStats.per_symbol`` stays empty, and the KPI is what it always was)."""

    symbol: str
    resyncs: int = 0  # Binance snapshots applied to this book
    gaps: int = 0  # Binance sequence gaps of this book
    quiet: int = 0  # Upbit: stretches of stale_after_s without a book of this code (withdrawn, not reconnected)
    untrusted_s: float = 0.0  # time this book could not be used: not yet synced, lost, quiet, disconnected
    _untrusted_since: float | None = None

    @property
    def trusted(self) -> bool:
        return self._untrusted_since is None

    def statistics(self, now: float) -> SymbolStatistics:
        return SymbolStatistics(
            self.symbol, self.resyncs, self.gaps, self.quiet, round(self.current_untrusted_s(now), 6)
        )


@attrs.frozen
class SymbolStatistics:
    """A snapshot of one book's ``SymbolStats``."""

    symbol: str
    resyncs: int
    gaps: int
    quiet: int
    untrusted_s: float


@attrs.define
class FeedStats(_UntrustedTime):
    """Counters one feed keeps across its connection attempts."""

    venue: str
    connects: int = 0
    connected: bool = False
    messages: int = 0  # frames received (data, control and keep-alive)
    books: int = 0  # book views published to the aggregator
    books_dropped: int = 0  # views dropped because the aggregator's inbox was full (conflation)
    books_superseded: int = 0  # books not published because a newer one came in the same read batch
    batches: int = 0  # wake-ups that read frames (messages / batches = frames per wake-up)
    bad_frames: int = 0
    padded_levels: int = 0  # Upbit zero-padded slots dropped
    gaps: int = 0  # Binance sequence gaps detected (each forces a resync)
    resyncs: int = 0  # Binance snapshots applied
    snapshot_refetches: int = 0
    pings_sent: int = 0
    crossed_books: int = 0  # books rejected (Upbit) or rebuilt (Binance) because bid >= ask
    stuck_books: int = 0  # Binance books resynced because they stopped advancing while diffs arrived
    overflows: int = 0  # Binance books resynced because their pre-snapshot diffs outgrew the byte budget
    rest_weight: int = 0  # Binance REST weight this feed spent (depth snapshots)
    rest_wait_s: float = 0.0  # time its REST requests waited for the weight budget
    last_data_at: float | None = None
    untrusted_s: float = 0.0  # time the book was not trustworthy: disconnected, or out of sync
    _untrusted_since: float | None = None
    _recent_bad: list[float] = attrs.field(factory=list)
    # per book, for a feed that keeps many (``track``); empty for one pair. With many books, ``untrusted_s``
    # above is the connection's (from a disconnect until its next book) and each book's is here
    per_symbol: dict[str, SymbolStats] = attrs.field(factory=dict)

    def track(self, symbols: Iterable[str], now: float) -> None:
        """Keep counters per book for ``symbols`` (a feed of many books); a new one is untrusted from ``now``."""
        for symbol in symbols:
            if symbol not in self.per_symbol:
                self.per_symbol[symbol] = SymbolStats(symbol)
                self.per_symbol[symbol].mark_untrusted(now)

    def book_untrusted(self, symbol: str, now: float) -> None:
        """One book can no longer be used: its own counter when it is tracked, the feed's otherwise (one pair)."""
        book = self.per_symbol.get(symbol)
        if book is None:
            self.mark_untrusted(now)
        else:
            book.mark_untrusted(now)

    def book_trusted(self, symbol: str, now: float) -> None:
        """One book is published again; the feed delivers books again (the end of a disconnect)."""
        book = self.per_symbol.get(symbol)
        if book is not None:
            book.mark_trusted(now)
        self.mark_trusted(now)

    def bad_frame(self, now: float, window_s: float) -> int:
        """Count a bad frame; return how many arrived within the last ``window_s``."""
        self.bad_frames += 1
        self._recent_bad = [t for t in self._recent_bad if t > now - window_s] + [now]
        return len(self._recent_bad)

    def reset_bad_window(self) -> None:
        """A new connection starts with a clean bad-frame window (a burst on the last one is not held
        against it); the ``bad_frames`` total keeps counting."""
        self._recent_bad.clear()

    def statistics(self, now: float) -> FeedStatistics:
        """The counters as of ``now`` (``untrusted_s`` includes a stretch still going on)."""
        values = {f.name: getattr(self, f.name) for f in attrs.fields(FeedStatistics)}
        values["untrusted_s"] = round(self.current_untrusted_s(now), 6)
        values["rest_wait_s"] = round(self.rest_wait_s, 6)
        values["per_symbol"] = {symbol: book.statistics(now) for symbol, book in self.per_symbol.items()}
        return FeedStatistics(**values)


@attrs.frozen
class FeedStatistics:
    """A snapshot of one feed's ``FeedStats`` (docs/kpis.md, ``feeds.<venue>``, says what each counts)."""

    venue: str
    connects: int
    connected: bool
    messages: int
    books: int
    books_dropped: int
    books_superseded: int
    batches: int
    bad_frames: int
    padded_levels: int
    gaps: int
    resyncs: int
    snapshot_refetches: int
    pings_sent: int
    crossed_books: int
    stuck_books: int
    overflows: int
    rest_weight: int
    rest_wait_s: float
    untrusted_s: float
    last_data_at: float | None
    per_symbol: Mapping[str, SymbolStatistics] = attrs.field(factory=dict)  # only for a feed of many books


class Dispersion(msgspec.Struct, frozen=True):
    """count, mean, population std, min and max of a stream, and std/mean (None without values, or when the
    mean is 0); in the KPI file, ``available_volume.BUY`` and ``.SELL``."""

    count: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    std_over_mean: float | None = None


@attrs.define
class RunningStats:
    """count, mean, population std, min, max and total of a stream, in constant memory (Welford)."""

    count: int = 0
    mean: float = 0.0
    total: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    _m2: float = 0.0

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        delta = x - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (x - self.mean)
        self.min = min(self.min, x)
        self.max = max(self.max, x)

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / self.count) if self.count else 0.0

    def statistics(self) -> Dispersion:
        if not self.count:
            return Dispersion()
        return Dispersion(
            self.count, self.mean, self.std, self.min, self.max, self.std / self.mean if self.mean else None
        )


def merged_dispersion(parts: tuple[Dispersion, ...]) -> Dispersion:
    """The dispersion of the streams of ``parts`` taken together (counts, means and population stds pooled)."""
    full = tuple(p for p in parts if p.count and p.mean is not None and p.std is not None)
    if not full:
        return Dispersion()
    n = sum(p.count for p in full)
    mean = sum(p.count * (p.mean or 0.0) for p in full) / n
    m2 = sum(p.count * ((p.std or 0.0) ** 2 + ((p.mean or 0.0) - mean) ** 2) for p in full)
    std = math.sqrt(m2 / n)
    lo = min(p.min for p in full if p.min is not None)
    hi = max(p.max for p in full if p.max is not None)
    return Dispersion(n, mean, std, lo, hi, std / mean if mean else None)


class Spread(msgspec.Struct, frozen=True):
    """count, mean, median and population std of some values (None without values); in the KPI file,
    ``fill_ratio.BUY`` and ``slippage_bps.SELL`` for example."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    std: float | None = None


@attrs.define
class Values:
    """Every value of a stream, 8 bytes each, for an exact median: for per-fill measures (a fill is rare next
    to the frames that make it; a million fills are 8 MB)."""

    _values: array[float] = attrs.field(factory=lambda: array("d"))

    def add(self, x: float) -> None:
        self._values.append(x)

    def __len__(self) -> int:
        return len(self._values)

    @classmethod
    def merged(cls, parts: tuple[Values, ...]) -> Values:
        """Every value of ``parts``, in their order."""
        values = array("d")
        for part in parts:
            values.extend(part._values)
        return cls(values)

    def spread(self, digits: int = 10) -> Spread:
        """The values' spread, rounded to ``digits`` decimals (so float noise such as 4e-17 reads 0)."""
        if not self._values:
            return Spread()

        def r(x: float) -> float:
            return round(x, digits) + 0.0  # + 0.0 turns -0.0 into 0.0

        v = self._values
        return Spread(len(v), r(statistics.fmean(v)), r(statistics.median(v)), r(statistics.pstdev(v)))


@attrs.define
class LatencyHistogram:
    """Latencies in log-spaced buckets (1 µs to 100 s, 2 % wide): percentiles in constant memory.

    A percentile is reported as its bucket's upper edge, so it overstates by at most 2 %.
    """

    RATIO = 1.02
    LOW_S = 1e-6
    count: int = 0
    max_s: float = 0.0
    _buckets: dict[int, int] = attrs.field(factory=dict)

    def add(self, seconds: float) -> None:
        index = 0 if seconds <= self.LOW_S else math.ceil(math.log(seconds / self.LOW_S, self.RATIO))
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.max_s = max(self.max_s, seconds)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) in seconds, or None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(self.LOW_S * self.RATIO**index, self.max_s)
        return self.max_s

    def statistics_ms(self) -> LatencyPercentiles:
        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1e3, 4)

        return LatencyPercentiles(
            self.count,
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.percentile(0.999)),
            ms(self.max_s if self.count else None),
        )

    def as_dict_ms(self) -> dict[str, float | int | None]:
        return msgspec.structs.asdict(self.statistics_ms())


class LatencyPercentiles(msgspec.Struct, frozen=True):
    """A latency histogram's count and percentiles in ms (None when empty); a ``pipeline_latency_ms`` entry."""

    count: int = 0
    p50: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None
