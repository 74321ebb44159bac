"""Acceptance criteria of a session (C1-C7) and per-side distributions, from its KPI and fill events.

C1 duration >= requested; C2 fill events >= min; C3/C4 BUY/SELL available_volume std/mean >= min;
C5 both L2 feeds connected; C6 reconnects as expected (the feed kills chaos made, plus an allowance);
C7 fatal exceptions = 0. Thresholds come from the config's ``[acceptance]`` section and are stored in
the KPI file, so a report can be rebuilt from the files alone.
"""

from __future__ import annotations

import statistics
from typing import Any

import attrs

from actors.core.rules import non_negative

SIDES = ("BUY", "SELL")
FIXED_BELOW = 0.1  # std/mean under this: the values are a constant, not a live measurement


@attrs.frozen
class Thresholds:
    """The criteria's thresholds (``[acceptance]`` in the config is this type)."""

    min_fill_events: int = attrs.field(default=1, validator=non_negative)
    min_volume_std_over_mean: float = attrs.field(default=0.1, validator=non_negative)
    max_extra_reconnects: int = attrs.field(default=0, validator=non_negative)  # beyond the feeds chaos killed


@attrs.frozen
class Criterion:
    id: str
    name: str
    threshold: str
    measured: str
    passed: bool


def criteria(kpi: dict[str, Any], t: Thresholds) -> list[Criterion]:
    cv = {s: kpi["available_volume"][s]["std_over_mean"] for s in SIDES}
    feed_kills = sum(n for name, n in kpi["chaos"]["kills_by_actor"].items() if name.startswith("feed:"))
    reconnects = sum(kpi["reconnects"].values())
    connected = all(f["connects"] >= 1 for f in kpi["feeds"].values()) and kpi["startup_s"] is not None
    out = [
        Criterion("C1", "duration", f">= {kpi['requested_duration_s']:g} s", f"{kpi['duration_s']:.1f} s",
                  kpi["duration_s"] >= kpi["requested_duration_s"] - 1e-6),
        Criterion("C2", "fill events", f">= {t.min_fill_events}", str(kpi["fill_events"]),
                  kpi["fill_events"] >= t.min_fill_events),
    ]
    for cid, side in (("C3", "BUY"), ("C4", "SELL")):
        value = cv[side]
        out.append(Criterion(cid, f"{side} available_volume std/mean", f">= {t.min_volume_std_over_mean:g}",
                             "n/a" if value is None else f"{value:.3f}",
                             value is not None and value >= t.min_volume_std_over_mean))
    out.append(Criterion("C5", "both L2 feeds connected", "yes", "yes" if connected else "no", connected))
    expected = f"{feed_kills} (chaos kills)" + (f" + up to {t.max_extra_reconnects}" if t.max_extra_reconnects else "")
    out.append(Criterion("C6", "reconnects", expected, str(reconnects),
                         feed_kills <= reconnects <= feed_kills + t.max_extra_reconnects))
    out.append(Criterion("C7", "fatal exceptions", "0", str(kpi["fatal_exceptions"]), kpi["fatal_exceptions"] == 0))
    return out


def distribution(values: list[float]) -> dict[str, Any]:
    """count/min/max/mean/median/std and FIXED (a constant) or DISPERSED."""
    if not values:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None, "std": None, "label": "n/a"}
    mean = statistics.fmean(values)
    std = statistics.pstdev(values)
    fixed = std == 0 or (mean != 0 and abs(std / mean) < FIXED_BELOW)
    return {"count": len(values), "min": min(values), "max": max(values), "mean": mean,
            "median": statistics.median(values), "std": std, "label": "FIXED" if fixed else "DISPERSED"}


def side_distributions(events: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for side in SIDES:
        legs = [e for e in events if e["side"] == side]
        filled = [e for e in legs if e["filled_qty"] > 0]
        out[side] = {
            "available_volume": distribution([e["available_volume"] for e in legs]),
            "fill_ratio": distribution([e["fill_ratio"] for e in legs]),
            "slippage_bps": distribution([e["slippage_bps"] for e in filled]),
        }
    return out
