"""KPI arithmetic and the counters actors keep; the collector turns them into kpi_<id>.json."""

from __future__ import annotations

import math
from typing import Any

import attrs


@attrs.define
class FeedStats:
    """Counters one feed keeps across its connection attempts."""

    venue: str
    connects: int = 0
    connected: bool = False
    messages: int = 0          # frames received (data, control and keep-alive)
    books: int = 0             # book views published to the aggregator
    books_dropped: int = 0     # views dropped because the aggregator's inbox was full (conflation)
    books_superseded: int = 0  # books not published because a newer one came in the same read batch
    batches: int = 0           # wake-ups that read frames (messages / batches = frames per wake-up)
    bad_frames: int = 0
    padded_levels: int = 0     # Upbit zero-padded slots dropped
    gaps: int = 0              # Binance sequence gaps detected (each forces a resync)
    resyncs: int = 0           # Binance snapshots applied
    snapshot_refetches: int = 0
    pings_sent: int = 0
    crossed_books: int = 0     # books rejected (Upbit) or rebuilt (Binance) because bid >= ask
    stuck_books: int = 0       # Binance books resynced because they stopped advancing while diffs arrived
    last_data_at: float | None = None
    untrusted_s: float = 0.0   # time the book was not trustworthy: disconnected, or out of sync
    _untrusted_since: float | None = None
    _recent_bad: list[float] = attrs.field(factory=list)

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

    def bad_frame(self, now: float, window_s: float) -> int:
        """Count a bad frame; return how many arrived within the last ``window_s``."""
        self.bad_frames += 1
        self._recent_bad = [t for t in self._recent_bad if t > now - window_s] + [now]
        return len(self._recent_bad)

    def reset_bad_window(self) -> None:
        """A new connection starts with a clean bad-frame window (a burst on the last one is not held
        against it); the ``bad_frames`` total keeps counting."""
        self._recent_bad.clear()

    def as_dict(self, now: float) -> dict[str, Any]:
        out = {k: v for k, v in attrs.asdict(self).items()
               if k not in ("venue", "last_data_at", "_untrusted_since", "_recent_bad")}
        out["untrusted_s"] = round(self.current_untrusted_s(now), 6)
        return out


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

    def as_dict(self) -> dict[str, float | int | None]:
        if not self.count:
            return {"count": 0, "mean": None, "std": None, "min": None, "max": None, "std_over_mean": None}
        return {"count": self.count, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "std_over_mean": self.std / self.mean if self.mean else None}


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
                return min(self.LOW_S * self.RATIO ** index, self.max_s)
        return self.max_s

    def as_dict_ms(self) -> dict[str, float | int | None]:
        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1e3, 4)
        return {"count": self.count, "p50": ms(self.percentile(0.5)), "p99": ms(self.percentile(0.99)),
                "p99_9": ms(self.percentile(0.999)), "max": ms(self.max_s if self.count else None)}
