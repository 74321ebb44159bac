"""The KPI's realism block: how much the session's market behaved like the real one (docs/realism.md).

A session keeps the 1-minute closes of its own premium and of both venues' mids as the collector samples
them (``RealismContext.observe``, a sample a minute kept), and its KPI measures them with
``actors.core.realism`` beside the real references of a market model file:

- ``load_model_reference`` / ``load_reference``: the ``reference`` section of a market model file
  (``config/market/*.json``), read bounded and checked; ``MarketModelError`` names the file and the problem;
- ``session_realism``: which model the session's market came from (``[sim] market_model``) and which
  reference it is compared to: the model file it ran on when that is a fitted file, otherwise (the old OU
  model, a live session) the default file's;
- ``RealismKpi``: the block as kpi_<id>.json holds it, built by ``RealismContext.kpi``; ``figures`` builds
  the same figures from any stretches (the realism CLI).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import attrs
import msgspec

from actors import inputs
from actors.clock import MarketClock
from actors.conventions import DEFAULT_MARKET_MODEL
from actors.core import realism
from actors.core.market import MarketView

ROOT = Path(__file__).resolve().parents[2]  # the project: the default model is shown relative to it
DEFAULT_MODEL = str(DEFAULT_MARKET_MODEL.relative_to(ROOT))  # [sim] market_model = "default"
DEFAULT, OU = "default", "ou"
MODEL_MAX_BYTES = 4 * inputs.MIB  # a model file is a few KiB


class MarketModelError(inputs.InputError):
    """A market model file whose reference cannot be used; str() names the file and the problem."""


# -- the market model file's reference section -------------------------------------------------------


class _StatReference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: float
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None


class _Spread(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    p10: float
    p50: float
    p90: float


class _ReferenceSection(msgspec.Struct, frozen=True):
    source: str
    stats: dict[str, Any]  # each converted on its own, so that an error names its statistic
    window_min: int | None = None
    # more window lengths (minutes, as text) -> statistic -> its spread over real windows that long
    windows: dict[str, dict[str, _Spread]] = {}


class _ModelFile(msgspec.Struct, frozen=True):
    reference: _ReferenceSection
    name: str = ""


@attrs.frozen
class ModelReference:
    """What a market model file says the real market is: per statistic its value over the whole data and its
    spread over windows of ``window_min`` minutes, measured on ``source`` (words)."""

    name: str  # the file's "name" (its file name without .json when it has none)
    path: str  # as given, or relative to the project for the default file
    source: str
    window_min: int | None
    stats: Mapping[str, realism.Reference]
    # the spreads over real windows of other lengths (minutes -> statistic -> reference with p10/p50/p90)
    windows: Mapping[int, Mapping[str, realism.Reference]] = attrs.field(factory=dict)

    def for_minutes(self, minutes: int) -> tuple[int | None, Mapping[str, realism.Reference]]:
        """The references for a run whose longest stretch is ``minutes`` long: the whole data's values with
        the spread over the longest real windows no longer than the run (the shortest windows known when
        the run is shorter than all)."""
        lengths = dict(self.windows)
        if self.window_min is not None:
            lengths[self.window_min] = self.stats
        if not lengths:
            return self.window_min, self.stats
        fitting = [n for n in lengths if n <= minutes]
        chosen = max(fitting) if fitting else min(lengths)
        spread = lengths[chosen]
        out = {}
        for key, whole in self.stats.items():
            s = spread.get(key)
            out[key] = whole if s is None else realism.Reference(whole.value, s.p10, s.p50, s.p90)
        return chosen, out


def load_model_reference(path: str | Path, shown_as: str | None = None) -> ModelReference:
    """The ``reference`` section of the market model file at ``path``; MarketModelError (an InputError) names
    the file and what is wrong with it (not a small regular file, not JSON, a field missing or of the wrong
    type, an unknown statistic, a value that is not finite, percentiles out of order)."""
    shown = shown_as or str(path)
    try:
        data = inputs.read_bounded(path, MODEL_MAX_BYTES)
    except inputs.InputError as exc:
        raise MarketModelError(str(exc).replace(str(path), shown, 1)) from None
    try:
        document = msgspec.json.decode(data)
    except Exception as exc:  # a decode error, or RecursionError on deeply nested input
        raise MarketModelError(f"{shown}: not JSON ({type(exc).__name__}: {exc})") from None
    return model_reference(document, shown, Path(path).stem)


def model_reference(document: Any, shown: str, stem: str) -> ModelReference:
    """The ``reference`` section of a market model file's document (as parsed once:
    ``actors.sim.market_file.MarketModel.document``); MarketModelError names ``shown`` and the problem."""
    try:
        model = msgspec.convert(document, _ModelFile)
    except msgspec.ValidationError as exc:
        raise MarketModelError(f"{shown}: not a market model file with a reference ({exc})") from None
    section = model.reference
    if section.window_min is not None and section.window_min < 1:
        raise MarketModelError(f"{shown}: $.reference.window_min: expected a positive number of minutes")
    stats = {key: _stat(f"{shown}: $.reference.stats.{key}", key, raw) for key, raw in section.stats.items()}
    windows: dict[int, dict[str, realism.Reference]] = {}
    for length, table in section.windows.items():
        if not length.isdigit() or int(length) < 1:
            raise MarketModelError(f"{shown}: $.reference.windows.{length}: expected a whole number of minutes")
        for key, window in table.items():
            where = f"{shown}: $.reference.windows.{length}.{key}"
            if key not in realism.BY_KEY:
                raise MarketModelError(f"{where}: not a statistic this version knows")
            numbers = [window.p10, window.p50, window.p90]
            if not all(math.isfinite(x) for x in numbers) or numbers != sorted(numbers):
                raise MarketModelError(f"{where}: expected finite p10 <= p50 <= p90, got {numbers}")
            windows.setdefault(int(length), {})[key] = realism.Reference(math.nan, *numbers)
    return ModelReference(model.name or stem, shown, section.source, section.window_min, stats, windows)


def _stat(where: str, key: str, raw: Any) -> realism.Reference:
    """One statistic of the reference section, checked."""
    if key not in realism.BY_KEY:
        raise MarketModelError(f"{where}: not a statistic this version knows ({', '.join(realism.BY_KEY)})")
    try:
        ref = msgspec.convert(raw, _StatReference)
    except msgspec.ValidationError as exc:
        raise MarketModelError(f"{where}: {exc}") from None
    numbers = [x for x in (ref.value, ref.p10, ref.p50, ref.p90) if x is not None]
    if not all(math.isfinite(x) for x in numbers):
        raise MarketModelError(f"{where}: expected finite numbers, got {numbers}")
    spread = [x for x in (ref.p10, ref.p50, ref.p90) if x is not None]
    if spread != sorted(spread):
        raise MarketModelError(f"{where}: expected p10 <= p50 <= p90, got {spread}")
    return realism.Reference(ref.value, ref.p10, ref.p50, ref.p90)


def load_reference(path: str | Path) -> tuple[str, Mapping[str, realism.Reference]]:
    """(the real data's description in words, a Reference per statistic) of a market model file."""
    model = load_model_reference(path)
    return model.source, model.stats


def default_model_path() -> Path:
    return ROOT / DEFAULT_MODEL


def model_path(setting: str) -> tuple[Path, str] | None:
    """The model file a ``[sim] market_model`` setting names and how to show it: ``"default"`` the shipped
    fitted file, ``"ou"`` none (the old Ornstein-Uhlenbeck model), anything else a path (relative to the
    working folder, as the config's other paths are)."""
    if setting == OU:
        return None
    if setting == DEFAULT:
        return default_model_path(), DEFAULT_MODEL
    return Path(setting), setting


# -- the KPI block ----------------------------------------------------------------------------------


class MarketModelInfo(msgspec.Struct, frozen=True):
    """``realism.model``: the model behind a simulated market, or behind the books a replay synthesised."""

    name: str  # the model file's name, or "ou"
    path: str | None = None  # the model file; None for the OU model
    fitted_to: str | None = None  # the real data it was fitted to (its reference's source); None: not fitted


class RealismStat(msgspec.Struct, frozen=True):
    """``realism.stats.<key>``: one statistic measured on the session beside the real reference."""

    label: str
    measured: float | None = None  # None: the run is too short for it (``needs`` says what it needs)
    reference: float | None = None  # over the whole real data
    p10: float | None = None  # over real windows of ``window_min`` minutes
    p50: float | None = None
    p90: float | None = None
    agrees: bool | None = None  # within a factor 1.5 (ratios) or 0.15 (correlations) of ``reference``
    in_window_range: bool | None = None  # between p10 and p90
    needs: str | None = None  # what it would need, when not measured


class RealismKpi(msgspec.Struct, frozen=True, kw_only=True):
    """``realism``: the statistics of the real market measured on this session's own 1-minute closes."""

    market: str = ""  # live, sim or replay (the session's market)
    model: MarketModelInfo | None = None  # the market model (sim, a replay's synthesised books); None: live
    # whose minutes: the session's clock, a recording's (or the market data's own timestamps); "mixed": files of both
    clock: Literal["session", "recording", "mixed"] = "session"
    reference: str | None = None  # the model file whose reference the figures are compared to (its name)
    reference_path: str | None = None
    reference_source: str | None = None  # the real data, in words
    reference_note: str | None = None  # why this reference (or why none)
    window_min: int | None = None  # the real windows' length behind p10/p50/p90
    minutes: int = 0  # 1-minute closes measured
    stretches: int = 0  # runs of consecutive minutes among them
    longest_min: int = 0
    stats: dict[str, RealismStat] = {}  # every statistic, in the order of actors.core.realism.STATISTICS

    @property
    def measured(self) -> list[str]:
        return [key for key, stat in self.stats.items() if stat.measured is not None]


def figures(
    stretches: Sequence[realism.Stretch],
    reference: ModelReference | None,
    *,
    market: str = "",
    model: MarketModelInfo | None = None,
    clock: Literal["session", "recording", "mixed"] = "session",
    reference_note: str | None = None,
) -> RealismKpi:
    """The block for ``stretches`` (every statistic; those they are too short for say what they need)
    compared with ``reference``."""
    measured = realism.measure(stretches)
    longest = max((len(s) for s in stretches), default=0)
    window_min, refs = (None, {}) if reference is None else reference.for_minutes(longest)
    verdicts = {v.key: v for v in realism.compare(measured, refs)}
    stats = {}
    for stat in realism.STATISTICS:
        ref, value, verdict = refs.get(stat.key), measured.get(stat.key), verdicts.get(stat.key)
        stats[stat.key] = RealismStat(
            stat.label,
            None if value is None else round(value, 6),
            None if ref is None else ref.value,
            None if ref is None else ref.p10,
            None if ref is None else ref.p50,
            None if ref is None else ref.p90,
            None if verdict is None else verdict.agrees,
            None if verdict is None else verdict.in_window_range,
            realism.requirement(stat.key) if value is None else None,
        )
    return RealismKpi(
        market=market,
        model=model,
        clock=clock,
        reference=None if reference is None else reference.name,
        reference_path=None if reference is None else reference.path,
        reference_source=None if reference is None else reference.source,
        reference_note=reference_note,
        window_min=window_min,
        minutes=sum(len(s) for s in stretches),
        stretches=len(stretches),
        longest_min=max((len(s) for s in stretches), default=0),
        stats=stats,
    )


@attrs.define
class RealismContext:
    """A session's realism: its market model, the reference it is compared to, and its 1-minute closes."""

    market: str = ""
    model: MarketModelInfo | None = None
    reference: ModelReference | None = None
    reference_note: str | None = "no reference resolved"
    closes: realism.MinuteCloses = attrs.field(factory=realism.MinuteCloses)
    recorded_clock: bool = False  # the minutes are a recording's (a replay), not the session's

    def observe(self, clock: MarketClock, now: float, opened_at: float, view: MarketView) -> None:
        """Take the view's premium and mids as the sample of their minute: on a replay's clock, the
        recording's minute; otherwise the session's (``now - opened_at``, the premium file's ``t_s``)."""
        if view.premium_bps is None or view.krw_leg is None or view.usdt_leg is None:
            return
        self.recorded_clock = clock.recorded
        t = clock.epoch_s(now) if clock.recorded else now - opened_at
        self.closes.add(t, view.premium_bps, view.usdt_leg.mid, view.krw_leg.mid)

    def kpi(self) -> RealismKpi:
        return figures(
            self.closes.stretches(),
            self.reference,
            market=self.market,
            model=self.model,
            clock="recording" if self.recorded_clock else "session",
            reference_note=self.reference_note,
        )


def session_realism(market: str, market_model: str, parsed: Any = None) -> RealismContext:
    """The realism of a session on ``market`` (live, sim, replay) whose ``[sim] market_model`` is
    ``market_model``: the model it names (none live) and the reference to compare with: that model file's, or
    the default file's for a live session, the OU model, or a model file that gives no reference. Never
    raises: without any reference, ``reference_note`` says why (the simulator reports its own errors).
    ``parsed``: the model file's document when the caller has read it already (the session's config did)."""
    if market == "live":
        return _default_reference(market, None, "live: the real market now")
    named = model_path(market_model)
    if named is None:
        return _default_reference(market, MarketModelInfo(OU), "the OU model is not fitted to real data")
    path, shown = named
    try:
        if parsed is None:
            reference = load_model_reference(path, shown)
        else:
            reference = model_reference(parsed, shown, path.stem)
    except inputs.InputError as exc:
        return _default_reference(market, MarketModelInfo(path.stem, shown), str(exc))
    return RealismContext(market, MarketModelInfo(reference.name, shown, reference.source), reference, None)


def _default_reference(market: str, model: MarketModelInfo | None, why: str) -> RealismContext:
    """Compared with the default model file's reference because of ``why``; or with none, saying why not."""
    try:
        reference = load_model_reference(default_model_path(), DEFAULT_MODEL)
    except inputs.InputError as exc:
        return RealismContext(market, model, None, f"{why}; no reference: {exc}")
    return RealismContext(market, model, reference, f"{why}: compared with the default model file's reference")
