"""KPI arithmetic and the counters actors keep; the collector turns them into kpi_<id>.json."""

from __future__ import annotations

from typing import Any, Iterable

import attrs
import numpy as np


@attrs.define
class FeedStats:
    """Counters one feed keeps across its connection attempts."""

    venue: str
    connects: int = 0
    connected: bool = False
    messages: int = 0          # frames received (data, control and keep-alive)
    books: int = 0             # book views published to the aggregator
    books_dropped: int = 0     # views dropped because the aggregator's inbox was full (conflation)
    bad_frames: int = 0
    padded_levels: int = 0     # Upbit zero-padded slots dropped
    gaps: int = 0              # Binance sequence gaps detected (each forces a resync)
    resyncs: int = 0           # Binance snapshots applied
    snapshot_refetches: int = 0
    pings_sent: int = 0
    last_data_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in attrs.asdict(self).items() if k not in ("venue", "last_data_at")}


def dispersion(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, std (population), min, max and std/mean of a sample."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None, "std_over_mean": None}
    mean = float(arr.mean())
    std = float(arr.std())
    return {
        "count": int(arr.size),
        "mean": mean,
        "std": std,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "std_over_mean": std / mean if mean else None,
    }
