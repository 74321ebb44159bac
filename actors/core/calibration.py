"""Fill-ratio calibration: per zone of (entry_bps, tp_bps) and side, measured from fill events.

A calibration file (JSON, format in docs/file-formats.md) holds, for every zone and side, the mean
fill ratio, its sample count and variance, a 95 % interval for the mean, and where the numbers come
from; plus a fallback per side (pooled over every zone) used for zones with too few samples or not
in the file. Pure: the shells read and write the files.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any, Iterable

import attrs

from actors.core.vocabulary import Side, Zone

SIDES = (Side.BUY, Side.SELL)


@attrs.frozen
class SideStats:
    mean: float
    n: int
    var: float
    ci95: tuple[float, float]
    source: str = ""

    def sample(self, rng: random.Random) -> float:
        """A fill ratio from Beta(mean, var); the mean itself when the moments admit no Beta."""
        a_b = beta_params(self.mean, self.var)
        return self.mean if a_b is None else rng.betavariate(*a_b)


def beta_params(mean: float, var: float) -> tuple[float, float] | None:
    """Beta(alpha, beta) with this mean and variance, or None (degenerate or impossible moments)."""
    if not 0 < mean < 1 or var <= 0 or var >= mean * (1 - mean):
        return None
    common = mean * (1 - mean) / var - 1
    return mean * common, (1 - mean) * common


def side_stats(ratios: list[float], source: str) -> SideStats:
    n = len(ratios)
    mean = sum(ratios) / n
    var = sum((r - mean) ** 2 for r in ratios) / (n - 1) if n > 1 else 0.0
    half = 1.96 * math.sqrt(var / n) if n > 1 else 0.0
    return SideStats(mean, n, var, (max(0.0, mean - half), min(1.0, mean + half)), source)


@attrs.frozen
class ZoneStats:
    """One zone's calibrated fill ratios, per side."""

    entry_bps: float
    tp_bps: float
    sides: dict[Side, SideStats]
    fallback: bool = False  # True when a side's numbers are the pooled fallback (too few samples)

    @property
    def zone(self) -> Zone:
        return Zone(self.entry_bps, self.tp_bps)


@attrs.frozen
class Calibration:
    version: str
    zones: tuple[ZoneStats, ...]
    fallback: dict[Side, SideStats]
    sources: tuple[str, ...] = ()
    notes: str = ""

    def lookup(self, zone: Zone, side: Side) -> SideStats:
        """The zone's statistics for ``side``; the pooled fallback for a zone not in the calibration.
        Zones are values parsed from the same decimal text (config, calibration file): compared exactly."""
        for stats in self.zones:
            if stats.zone == zone:
                return stats.sides[side]
        return self.fallback[side]


def build(
    events: Iterable[dict[str, Any]], version: str, *, sources: tuple[str, ...] = (), min_samples: int = 5
) -> Calibration:
    """A calibration from fill-event records (the lines of fill_events_*.jsonl)."""
    by_zone: dict[tuple[float, float], dict[str, list[float]]] = defaultdict(lambda: {s: [] for s in SIDES})
    pooled: dict[str, list[float]] = {s: [] for s in SIDES}
    for e in events:
        if e.get("leg") not in ("entry", "exit"):
            continue  # hedges are sized by the imbalance, not by the zone's order
        ratio = float(e["fill_ratio"])
        by_zone[(float(e["entry_bps"]), float(e["tp_bps"]))][e["side"]].append(ratio)
        pooled[e["side"]].append(ratio)
    if not all(pooled.values()):
        raise ValueError("the fill events hold no BUY or no SELL fills: nothing to calibrate")
    label = f"measured from {', '.join(sources) or 'the given fill events'}"
    fallback = {s: side_stats(pooled[s], f"pooled over all zones, {label}") for s in SIDES}
    zones = []
    for (entry, tp), sides in sorted(by_zone.items()):
        stats, thin = {}, False
        for s in SIDES:
            if len(sides[s]) >= min_samples:
                stats[s] = side_stats(sides[s], label)
            else:
                stats[s] = attrs.evolve(fallback[s], source=f"fallback: only {len(sides[s])} samples in this zone")
                thin = True
        zones.append(ZoneStats(entry, tp, stats, thin))
    return Calibration(version, tuple(zones), fallback, sources)


def keep_zones(measured: Calibration, base: Calibration, keep: Iterable[Zone], notes: str = "") -> Calibration:
    """``measured`` with the zones in ``keep`` taken from ``base`` (numbers and sources unchanged)."""
    kept = {}
    for zone in keep:
        match = [z for z in base.zones if z.zone == zone]
        if not match:
            raise ValueError(f"zone {zone.label} is not in the calibration to keep it from")
        kept[zone] = match[0]
    zones = tuple(sorted([*(z for z in measured.zones if z.zone not in kept), *kept.values()], key=lambda z: z.zone))
    base_sources = [src for src in base.sources if src not in measured.sources and not src.endswith(".jsonl")]
    return Calibration(
        measured.version, zones, measured.fallback, (*base_sources, *measured.sources), notes or measured.notes
    )


def _stats_dict(s: SideStats) -> dict[str, Any]:
    return {"mean": s.mean, "n": s.n, "var": s.var, "ci95": list(s.ci95), "source": s.source}


def _stats(d: dict[str, Any]) -> SideStats:
    lo, hi = d["ci95"]
    return SideStats(float(d["mean"]), int(d["n"]), float(d["var"]), (float(lo), float(hi)), str(d.get("source", "")))


def to_dict(c: Calibration) -> dict[str, Any]:
    return {
        "version": c.version,
        "notes": c.notes,
        "sources": list(c.sources),
        "fallback": {s: _stats_dict(c.fallback[s]) for s in SIDES},
        "zones": [
            {
                "entry_bps": z.entry_bps,
                "tp_bps": z.tp_bps,
                "fallback": z.fallback,
                **{s: _stats_dict(z.sides[s]) for s in SIDES},
            }
            for z in c.zones
        ],
    }


def from_dict(d: dict[str, Any]) -> Calibration:
    """Raise ValueError (with the offending key) on a malformed calibration document."""
    try:
        zones = tuple(
            ZoneStats(
                float(z["entry_bps"]),
                float(z["tp_bps"]),
                {s: _stats(z[s]) for s in SIDES},
                bool(z.get("fallback", False)),
            )
            for z in d["zones"]
        )
        calibration = Calibration(
            str(d["version"]),
            zones,
            {s: _stats(d["fallback"][s]) for s in SIDES},
            tuple(d.get("sources", ())),
            str(d.get("notes", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed calibration: {type(exc).__name__}: {exc}") from None
    for stats in [*calibration.fallback.values(), *(s for z in zones for s in z.sides.values())]:
        if not 0 <= stats.mean <= 1:
            raise ValueError(f"malformed calibration: a fill-ratio mean of {stats.mean} is outside [0, 1]")
    return calibration
