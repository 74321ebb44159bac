"""The slippage drift model: how far a leg's realized slippage lands from the slippage predicted when it
was decided, per venue, side and size bucket (docs/calibration.md, "Slippage drift").

At the decision the executor walks the book for the planned size (``predicted_slippage_bps``); the leg
arrives after its latency and fills against the book it meets then (``slippage_bps``). Their difference,
realized minus predicted (positive: worse than predicted), is the drift: the book moved or thinned on
the way, or our own earlier fills took the levels. ``build`` fits mean, n and a 95 % interval per
bucket from fill events; ``SlippageModel.expected_bps`` is what sizing and the entry decision add to
each leg's predicted cost.
"""

from __future__ import annotations

import bisect
import math
import statistics
from typing import Any, Iterable, Mapping

import attrs

from actors.core.vocabulary import Side, Venue

# upper edges (BTC) of the size buckets; a leg of size q falls in the first bucket whose edge is >= q
BUCKET_EDGES_BTC = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, math.inf)
MIN_SAMPLES = 5  # a bucket with fewer legs uses its venue and side pooled, then 0


def bucket_of(qty: float) -> int:
    return bisect.bisect_left(BUCKET_EDGES_BTC, qty - 1e-12)


def bucket_label(index: int) -> str:
    low = 0.0 if index == 0 else BUCKET_EDGES_BTC[index - 1]
    high = BUCKET_EDGES_BTC[index]
    return f"{low:g}-{high:g}" if math.isfinite(high) else f">{low:g}"


@attrs.frozen
class DriftStats:
    """Realized minus predicted slippage of one bucket, in bps: mean, n, population std and 95 % interval
    of the mean (normal approximation; a single leg's interval is its value)."""

    mean: float
    n: int
    std: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, values: list[float]) -> DriftStats:
        mean = statistics.fmean(values)
        std = statistics.pstdev(values)
        half = 1.96 * std / math.sqrt(len(values))
        return cls(round(mean, 6), len(values), round(std, 6), (round(mean - half, 6), round(mean + half, 6)))


@attrs.frozen
class SlippageModel:
    """Drift per (venue, side, bucket) and pooled per (venue, side)."""

    version: str
    buckets: Mapping[tuple[str, Side, int], DriftStats]  # venues are Venue values (checked)
    pooled: Mapping[tuple[str, Side], DriftStats]
    sources: tuple[str, ...] = ()

    def stats(self, venue: str, side: Side, qty: float) -> DriftStats | None:
        """The statistics of ``qty``'s bucket (``in_bucket``)."""
        return self.in_bucket(venue, side, bucket_of(qty))

    def in_bucket(self, venue: str, side: Side, bucket: int) -> DriftStats | None:
        """The bucket's statistics when it has MIN_SAMPLES legs, else the venue and side pooled, else None."""
        found = self.buckets.get((venue, side, bucket))
        if found is not None and found.n >= MIN_SAMPLES:
            return found
        pooled = self.pooled.get((venue, side))
        return pooled if pooled is not None and pooled.n >= MIN_SAMPLES else None

    def expected_bps(self, venue: str, side: Side, qty: float) -> float:
        found = self.stats(venue, side, qty)
        return 0.0 if found is None else found.mean


def drift_samples(events: Iterable[Mapping[str, Any]]) -> dict[tuple[Venue, Side, int], list[float]]:
    """Realized minus predicted slippage of every leg that filled and has a prediction, by bucket."""
    out: dict[tuple[Venue, Side, int], list[float]] = {}
    for e in events:
        predicted = e.get("predicted_slippage_bps")
        if predicted is None or not e.get("filled_qty"):
            continue
        key = (Venue(e["venue"]), Side(e["side"]), bucket_of(float(e["order_qty"])))
        out.setdefault(key, []).append(float(e["slippage_bps"]) - float(predicted))
    return out


def build(events: Iterable[Mapping[str, Any]], version: str, sources: tuple[str, ...] = ()) -> SlippageModel:
    samples = drift_samples(events)
    pooled: dict[tuple[Venue, Side], list[float]] = {}
    for (venue, side, _), values in samples.items():
        pooled.setdefault((venue, side), []).extend(values)
    return SlippageModel(
        version,
        {key: DriftStats.of(values) for key, values in sorted(samples.items())},
        {key: DriftStats.of(values) for key, values in sorted(pooled.items())},
        sources,
    )


def to_dict(model: SlippageModel) -> dict[str, Any]:
    def stats(s: DriftStats) -> dict[str, Any]:
        return {"mean_bps": s.mean, "n": s.n, "std_bps": s.std, "ci95_bps": list(s.ci95)}

    return {
        "version": model.version,
        "kind": "slippage_drift",
        "sources": list(model.sources),
        "bucket_edges_btc": [e if math.isfinite(e) else None for e in BUCKET_EDGES_BTC],
        "buckets": [
            {"venue": venue, "side": str(side), "size_btc": bucket_label(b), "bucket": b, **stats(s)}
            for (venue, side, b), s in model.buckets.items()
        ],
        "pooled": [{"venue": venue, "side": str(side), **stats(s)} for (venue, side), s in model.pooled.items()],
    }


def _bucket(value: Any) -> int:
    index = int(value)
    if not 0 <= index < len(BUCKET_EDGES_BTC):
        raise ValueError(f"bucket: expected 0 to {len(BUCKET_EDGES_BTC) - 1}, got {value!r}")
    return index


def from_dict(d: Mapping[str, Any]) -> SlippageModel:
    """A model from its JSON form; KeyError, ValueError or TypeError on anything malformed."""
    if d.get("kind") != "slippage_drift":
        raise ValueError(f"kind: expected 'slippage_drift', got {d.get('kind')!r}")
    edges = tuple(math.inf if e is None else float(e) for e in d["bucket_edges_btc"])
    if edges != BUCKET_EDGES_BTC:
        raise ValueError(f"bucket_edges_btc: expected {list(BUCKET_EDGES_BTC)}, got {list(edges)}")

    def stats(row: Mapping[str, Any]) -> DriftStats:
        lo, hi = row["ci95_bps"]
        n = int(row["n"])
        if n < 1:
            raise ValueError(f"n: expected >= 1, got {n}")
        return DriftStats(float(row["mean_bps"]), n, float(row["std_bps"]), (float(lo), float(hi)))

    return SlippageModel(
        str(d["version"]),
        {(Venue(r["venue"]), Side(r["side"]), _bucket(r["bucket"])): stats(r) for r in d["buckets"]},
        {(Venue(r["venue"]), Side(r["side"])): stats(r) for r in d["pooled"]},
        tuple(str(s) for s in d.get("sources", ())),
    )


MIN_CHECKED = 20  # a bucket with fewer legs is shown, not judged


@attrs.frozen
class BucketCheck:
    """One bucket of a session's legs against the drift model: predicted and realized slippage (means, bps),
    their difference and its standard error, and whether that agrees with the model."""

    venue: Venue
    side: Side
    bucket: int
    n: int
    predicted_bps: float
    realized_bps: float
    drift_bps: float  # realized minus predicted, mean
    drift_se_bps: float  # its standard error
    expected: DriftStats | None  # the model's bucket (None: no model, or no such bucket)
    agrees: bool | None  # None below MIN_CHECKED legs

    @property
    def size(self) -> str:
        return bucket_label(self.bucket)


def check(events: Iterable[Mapping[str, Any]], model: SlippageModel | None = None) -> list[BucketCheck]:
    """Every bucket of ``events``' legs (that filled and have a prediction) against ``model``: the session's
    mean drift agrees when it is within 1.96 combined standard errors of the model's (the model's own from
    its 95 % interval; both are estimates), or of 0 without a model (the prediction taken as it is)."""
    legs: dict[tuple[Venue, Side, int], list[tuple[float, float]]] = {}
    for e in events:
        predicted = e.get("predicted_slippage_bps")
        if predicted is None or not e.get("filled_qty"):
            continue
        key = (Venue(e["venue"]), Side(e["side"]), bucket_of(float(e["order_qty"])))
        legs.setdefault(key, []).append((float(predicted), float(e["slippage_bps"])))
    out = []
    for (venue, side, b), pairs in sorted(legs.items()):
        drifts = [r - p for p, r in pairs]
        n = len(pairs)
        se = statistics.pstdev(drifts) / math.sqrt(n) if n > 1 else math.inf
        drift = statistics.fmean(drifts)
        expected = None if model is None else model.in_bucket(venue, side, b)
        if model is not None and expected is not None:
            model_se = (expected.ci95[1] - expected.ci95[0]) / (2 * 1.96)
            centre, spread = expected.mean, math.hypot(se, model_se)
        else:
            centre, spread = 0.0, se
        agrees = None if n < MIN_CHECKED else abs(drift - centre) <= 1.96 * spread + 1e-9
        out.append(
            BucketCheck(
                venue,
                side,
                b,
                n,
                round(statistics.fmean(p for p, _ in pairs), 6),
                round(statistics.fmean(r for _, r in pairs), 6),
                round(drift, 6),
                round(se, 6) if math.isfinite(se) else math.inf,
                expected,
                agrees,
            )
        )
    return out
