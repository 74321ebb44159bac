"""Acceptance criteria of a session (C1-C7) and per-side distributions, from its KPI and fill events.

C1 duration >= requested (or a replay's recording served to its end); C2 fill events >= min; C3/C4
BUY/SELL available_volume std/mean >= min; C5 both L2 feeds connected; C6 reconnects as expected (the
feed kills chaos made, plus an allowance); C7 fatal exceptions = 0. Thresholds come from the config's
``[acceptance]`` section and are stored in the KPI file, so a report can be rebuilt from the files alone.

The KPI document is a file format and lives with the session's files (``actors.records.kpi.Kpi``);
the criteria read it through ``Measured``, the few attributes they need, so the core does not depend
on the file's shape (a test can pass any object that has them). A ``Criterion`` is written into the
KPI file as it is, so it is a msgspec Struct (its field order is the file's).
"""

from __future__ import annotations

from typing import Literal, Mapping, Protocol, Sequence

import attrs
import msgspec

from actors.core.kpi import Values
from actors.core.rules import non_negative
from actors.core.vocabulary import Side

SIDES = (Side.BUY, Side.SELL)
FIXED_BELOW = 0.1  # std/mean under this: the values are a constant, not a live measurement


@attrs.frozen
class Thresholds:
    """The criteria's thresholds (``[acceptance]`` in the config is this type)."""

    min_fill_events: int = attrs.field(default=1, validator=non_negative)
    min_volume_std_over_mean: float = attrs.field(default=0.1, validator=non_negative)
    max_extra_reconnects: int = attrs.field(default=0, validator=non_negative)  # beyond the feeds chaos killed


class Criterion(msgspec.Struct, frozen=True):
    id: str
    name: str
    threshold: str
    measured: str
    passed: bool


# -- what the criteria read from a KPI document -----------------------------------------------------


class _Spread(Protocol):
    @property
    def std_over_mean(self) -> float | None: ...


class _PerSide(Protocol):
    @property
    def BUY(self) -> _Spread: ...

    @property
    def SELL(self) -> _Spread: ...


class _Feed(Protocol):
    @property
    def connects(self) -> int: ...


class _Chaos(Protocol):
    @property
    def kills_by_actor(self) -> Mapping[str, int]: ...


class Measured(Protocol):
    """The attributes of a KPI document (docs/kpis.md) the criteria read."""

    @property
    def requested_duration_s(self) -> float: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def recording_ended(self) -> bool: ...  # a replay that served its recording to the end

    @property
    def startup_s(self) -> float | None: ...

    @property
    def fill_events(self) -> int: ...

    @property
    def available_volume(self) -> _PerSide: ...

    @property
    def feeds(self) -> Mapping[str, _Feed]: ...

    @property
    def reconnects(self) -> Mapping[str, int]: ...

    @property
    def chaos(self) -> _Chaos: ...

    @property
    def fatal_exceptions(self) -> int: ...


def _duration(kpi: Measured) -> Criterion:
    """C1: the session ran for as long as asked; a replay also passes by serving its recording to the end."""
    long_enough = kpi.duration_s >= kpi.requested_duration_s - 1e-6
    ended_first = kpi.recording_ended and not long_enough
    return Criterion(
        "C1",
        "duration",
        f">= {kpi.requested_duration_s:g} s" + (" or the recording's end" if kpi.recording_ended else ""),
        f"{kpi.duration_s:.1f} s" + (" (the recording ended)" if ended_first else ""),
        long_enough or kpi.recording_ended,
    )


def criteria(kpi: Measured, t: Thresholds) -> list[Criterion]:
    cv = {Side.BUY: kpi.available_volume.BUY.std_over_mean, Side.SELL: kpi.available_volume.SELL.std_over_mean}
    feed_kills = sum(n for name, n in kpi.chaos.kills_by_actor.items() if name.startswith("feed:"))
    reconnects = sum(kpi.reconnects.values())
    connected = all(f.connects >= 1 for f in kpi.feeds.values()) and kpi.startup_s is not None
    out = [
        _duration(kpi),
        Criterion(
            "C2", "fill events", f">= {t.min_fill_events}", str(kpi.fill_events), kpi.fill_events >= t.min_fill_events
        ),
    ]
    for cid, side in (("C3", Side.BUY), ("C4", Side.SELL)):
        value = cv[side]
        out.append(
            Criterion(
                cid,
                f"{side} available_volume std/mean",
                f">= {t.min_volume_std_over_mean:g}",
                "n/a" if value is None else f"{value:.3f}",
                value is not None and value >= t.min_volume_std_over_mean,
            )
        )
    out.append(Criterion("C5", "both L2 feeds connected", "yes", "yes" if connected else "no", connected))
    expected = f"{feed_kills} (chaos kills)" + (f" + up to {t.max_extra_reconnects}" if t.max_extra_reconnects else "")
    out.append(
        Criterion(
            "C6",
            "reconnects",
            expected,
            str(reconnects),
            feed_kills <= reconnects <= feed_kills + t.max_extra_reconnects,
        )
    )
    out.append(Criterion("C7", "fatal exceptions", "0", str(kpi.fatal_exceptions), kpi.fatal_exceptions == 0))
    return out


# -- distributions of fill events -------------------------------------------------------------------


DistributionKind = Literal["FIXED", "DISPERSED", "n/a"]


@attrs.frozen
class Distribution:
    """count/min/max/mean/median/std of some values, rounded to 10 decimals so floating-point noise reads 0 (as
    the KPI file's ``Spread``: the same values give the same figures), and ``kind``: FIXED (a constant, not a
    live measurement), DISPERSED or n/a (no values). ``label`` says what the kind means, in words."""

    count: int
    min: float | None
    max: float | None
    mean: float | None
    median: float | None
    std: float | None
    kind: DistributionKind

    @property
    def std_over_mean(self) -> float | None:
        return None if not self.mean or self.std is None else self.std / self.mean

    @property
    def label(self) -> str:
        """The kind and what it means: "FIXED (all values equal)", "FIXED (nearly constant, std/mean 0.03)",
        "DISPERSED (values vary, std/mean 0.52)"."""
        ratio = self.std_over_mean
        if self.kind == "n/a":
            return "n/a (no values)"
        if self.std == 0:
            return "FIXED (all values equal)"
        if ratio is None:
            return f"{self.kind} (values vary around a mean of 0)"
        what = "nearly constant" if self.kind == "FIXED" else "values vary"
        return f"{self.kind} ({what}, std/mean {abs(ratio):.2g})"


def distribution(values: Sequence[float]) -> Distribution:
    """count/min/max/mean/median/std and FIXED (std/mean under ``FIXED_BELOW``: a constant) or DISPERSED."""
    if not values:
        return Distribution(0, None, None, None, None, None, "n/a")
    kept = Values()
    for x in values:
        kept.add(x)
    spread = kept.spread()  # count, mean, median, std as the KPI file has them
    mean, std = spread.mean or 0.0, spread.std or 0.0
    fixed = std == 0 or (mean != 0 and abs(std / mean) < FIXED_BELOW)
    return Distribution(
        spread.count,
        _rounded(min(values)),
        _rounded(max(values)),
        spread.mean,
        spread.median,
        spread.std,
        "FIXED" if fixed else "DISPERSED",
    )


def _rounded(x: float) -> float:
    return round(x, 10) + 0.0  # + 0.0 turns -0.0 into 0.0


class FillLike(Protocol):
    """The fields of a fill event (docs/file-formats.md) the distributions read."""

    @property
    def side(self) -> str: ...

    @property
    def filled_qty(self) -> float: ...

    @property
    def available_volume(self) -> float: ...

    @property
    def fill_ratio(self) -> float: ...

    @property
    def slippage_bps(self) -> float: ...


@attrs.frozen
class SideDistributions:
    """One side's fill events: available volume and fill ratio over every leg, slippage over legs that filled."""

    available_volume: Distribution
    fill_ratio: Distribution
    slippage_bps: Distribution

    def measures(self) -> tuple[tuple[str, Distribution], ...]:
        """(name, distribution) in report order."""
        return (
            ("available_volume", self.available_volume),
            ("fill_ratio", self.fill_ratio),
            ("slippage_bps", self.slippage_bps),
        )


def side_distributions(events: Sequence[FillLike]) -> dict[Side, SideDistributions]:
    out: dict[Side, SideDistributions] = {}
    for side in SIDES:
        legs = [e for e in events if e.side == side]
        out[side] = SideDistributions(
            distribution([e.available_volume for e in legs]),
            distribution([e.fill_ratio for e in legs]),
            distribution([e.slippage_bps for e in legs if e.filled_qty > 0]),
        )
    return out
