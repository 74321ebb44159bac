"""The grid: ``--grid KEY=V1,V2`` specs, ``--sim-seeds`` specs, the tasks (grid point x recording, or grid
point x seed on the simulated market) with stable ids, and the check that every grid key changes something."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from typing import Any, Callable, Iterable

import attrs

from actors.config import Config, merge_tables
from actors.core.vocabulary import Venue
from actors.sweep.results import REPLAY, SIM


class SweepError(Exception):
    """A sweep that cannot start; str() says why."""


MAX_SEEDS = 10_000  # a typo such as 1-1000000 is refused, not planned
_DIGITS = re.compile("[0-9]{1,18}")  # a seed: an integer from 0, below 2**63


# -- the grid --------------------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``[[5,5]],[[10,12]]`` is two values."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _value(text: str) -> Any:
    """A TOML value (number, bool, array, quoted string), or the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,... such as strategy.entry_bps=8,10,12")
        if len(key.split(".")) < 2:
            raise SweepError(f"--grid {spec!r}: expected a dotted config key such as strategy.entry_bps")
        if key in grid:
            raise SweepError(f"--grid {key} given twice")
        grid[key] = [_value(v) for v in _split_top_level(values)]
    return grid


def parse_seeds(spec: str) -> tuple[int, ...]:
    """``--sim-seeds``: seeds and ranges of seeds (integers >= 0), ``1,2,3``, ``1-8`` or ``1-4,9``, in the
    order given; SweepError naming the part that is not one, a seed given twice, or too many seeds."""
    seeds: list[int] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not _DIGITS.fullmatch(first.strip()) or (dash and not _DIGITS.fullmatch(last.strip())):
            raise SweepError(
                f"--sim-seeds {spec!r}: expected seeds (integers >= 0) and ranges such as 1,2,3 or 1-8, got {part!r}"
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise SweepError(f"--sim-seeds {spec!r}: the range {part.strip()} goes down; write it {high}-{low}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise SweepError(f"--sim-seeds {spec!r}: more than {MAX_SEEDS:,} seeds")
        seeds.extend(range(low, high + 1))
    repeated = next((seed for n, seed in enumerate(seeds) if seed in seeds[:n]), None)
    if repeated is not None:
        raise SweepError(f"--sim-seeds {spec!r}: seed {repeated} given twice")
    return tuple(seeds)


def _nested(key: str, value: Any) -> dict[str, Any]:
    *parents, last = key.split(".")
    out: dict[str, Any] = {last: value}
    for part in reversed(parents):
        out = {part: out}
    return out


def _label(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


def _points(grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every grid point: (its values, its config overrides)."""
    points = []
    for point in itertools.product(*grid.values()):
        values = dict(zip(grid, point))
        overrides: dict[str, Any] = {}
        for key, value in values.items():
            merge_tables(overrides, _nested(key, value))
        points.append((values, overrides))
    return points


def _task(
    run_id: str, config_path: str, values: dict[str, Any], overrides: dict[str, Any], **market: Any
) -> dict[str, Any]:
    labels = {k: _label(v) for k, v in values.items()}
    return {"run_id": run_id, "config": config_path, **market, "values": labels, "overrides": overrides}


def _run_id(prefix: str, ident: list[Any]) -> str:
    return prefix + hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]


def plan(
    config_path: str, recordings: list[str], grid: dict[str, list[Any]], *, seed: int | None, duration_s: float | None
) -> list[dict[str, Any]]:
    """One replay task per grid point x recording, each with a stable id (resume matches on it)."""
    tasks = []
    for r_index, recording in enumerate(recordings):
        for values, overrides in _points(grid):
            session: dict[str, Any] = {"market": REPLAY}
            if seed is not None:
                session["seed"] = seed
            if duration_s is not None:
                session["duration_s"] = duration_s
            merge_tables(
                overrides, {"session": session, "replay": {"files": recording.split("+"), "as_fast_as_possible": True}}
            )
            ident = [config_path, recording, [[k, v] for k, v in values.items()], seed, duration_s]
            run_id = _run_id(f"r{r_index}_", ident)
            tasks.append(_task(run_id, config_path, values, overrides, market=REPLAY, recording=recording))
    return tasks


def plan_sim(
    config_path: str, seeds: tuple[int, ...], grid: dict[str, list[Any]], *, duration_s: float | None
) -> list[dict[str, Any]]:
    """One simulated session per grid point x seed (``session.market = "sim"``), grouped by seed as ``plan``
    groups by recording, each with a stable id (``s<seed>_<hash>``)."""
    tasks = []
    for seed in seeds:
        for values, overrides in _points(grid):
            session: dict[str, Any] = {"market": SIM, "seed": seed}
            if duration_s is not None:
                session["duration_s"] = duration_s
            merge_tables(overrides, {"session": session})
            ident = [config_path, SIM, seed, [[k, v] for k, v in values.items()], duration_s]
            tasks.append(_task(_run_id(f"s{seed}_", ident), config_path, values, overrides, market=SIM, seed=seed))
    return tasks


# -- keys that would change nothing ------------------------------------------------------------------

# Keys the sweep sets for every run itself: a grid over them would be overwritten (or, for replay.speed,
# would pace nothing on the virtual clock)
_SET_BY_SWEEP = {
    "session.market": "the sweep replays every run (session.market = 'replay')",
    "session.logs_dir": "each run writes its files to <out>/runs/<run_id>/",
    "replay.files": "each run replays one --replay recording",
    "replay.as_fast_as_possible": "every run replays on the virtual clock, as fast as possible",
    "replay.speed": "every run replays on the virtual clock, as fast as possible, where the pace is not used",
}
# ... and in a sweep over the simulated market (--sim-seeds), where [replay] is not read at all
_SET_BY_SIM_SWEEP = {
    "session.market": "every run is on the simulated market (session.market = 'sim')",
    "session.logs_dir": _SET_BY_SWEEP["session.logs_dir"],
    "session.seed": "--sim-seeds sets session.seed of every run (each grid point runs once per seed), so list the "
    "seeds there",
}
_REPLAY_IN_SIM = "every run is on the simulated market (--sim-seeds), which reads no [replay] table"


@attrs.frozen
class _Idle:
    """Keys that do nothing in a config where ``idle`` holds: why, and what to do instead."""

    keys: tuple[str, ...]
    idle: Callable[[Config], bool]
    why: str
    fix: str


_IDLE = (
    _Idle(
        ("strategy.entry_bps", "strategy.tp_bps"),
        lambda c: bool(c.strategy.zones),
        "[strategy] zones is set, so each trade takes its entry_bps and tp_bps from zones",
        "remove [strategy] zones from {config} or sweep strategy.zones instead "
        "(e.g. --grid 'strategy.zones=[[8,12]],[[10,12]]')",
    ),
    _Idle(
        ("strategy.calibration", "strategy.calibration_mode"),
        lambda c: c.strategy.fill_model == "simple",
        "strategy.fill_model is 'simple', which reads no calibration",
        "set fill_model = 'calibrated' in {config} or sweep strategy.fill_model too",
    ),
    _Idle(
        ("fx.fixed_krw_per_usdt",),
        lambda c: c.fx.source == Venue.UPBIT,
        "fx.source is 'upbit', so USDT/KRW comes from Upbit's KRW-USDT book",
        "set [fx] source = 'fixed' in {config} or sweep fx.source too",
    ),
    _Idle(
        ("chaos.actors",),
        lambda c: not c.chaos.kill_every_s,
        "chaos.kill_every_s is 0, so chaos kills no actor",
        "set [chaos] kill_every_s in {config} or sweep chaos.kill_every_s too",
    ),
    _Idle(
        ("sim.fault_kinds",),
        lambda c: not c.sim.fault_rate_per_min,
        "sim.fault_rate_per_min is 0, so no random fault is injected",
        "set [sim] fault_rate_per_min in {config} or sweep sim.fault_rate_per_min too",
    ),
    _Idle(
        ("sim.start_volatility",),
        lambda c: c.sim.market_model == "ou",
        "sim.market_model is 'ou', which has no volatility regime to start in",
        "set [sim] market_model to a fitted model in {config} or sweep sim.market_model too",
    ),
    _Idle(
        ("collector.fsync_interval_s",),
        lambda c: c.collector.fsync != "interval",
        "collector.fsync is not 'interval'",
        "set [collector] fsync = 'interval' in {config} or sweep collector.fsync too",
    ),
)


def check_effective(
    grid: dict[str, list[Any]],
    configs: list[Config],
    config_path: str,
    *,
    seed: int | None,
    duration_s: float | None,
    market: str = REPLAY,
) -> None:
    """SweepError for the first grid key whose values would all give the same runs: a key the sweep sets
    itself (for its ``market``: REPLAY or SIM), or one the config makes ineffective at every grid point
    (``configs``, one per point)."""
    set_by_sweep = _SET_BY_SIM_SWEEP if market == SIM else _SET_BY_SWEEP
    set_by_flags = {"session.seed": ("--seed", seed), "session.duration_s": ("--duration", duration_s)}
    for key in grid:
        why = set_by_sweep.get(key)
        if why is None and market == SIM and key.startswith("replay."):
            why = _REPLAY_IN_SIM
        if why is not None:
            raise SweepError(f"--grid {key}: every value would give the same runs: {why}; remove this grid key")
        flag, value = set_by_flags.get(key, ("", None))
        if value is not None:
            raise SweepError(
                f"--grid {key}: every value would give the same runs: {flag} {value} sets {key} for every run; "
                f"remove {flag} or this grid key"
            )
        for rule in _IDLE:
            if key in rule.keys and configs and all(rule.idle(c) for c in configs):
                raise SweepError(
                    f"--grid {key}: every value would give the same runs: {rule.why}; "
                    + rule.fix.format(config=config_path)
                )
