"""The grid: ``--grid KEY=V1,V2`` specs, and the tasks (grid point x recording) with stable ids."""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from typing import Any, Iterable

from actors.config import merge_tables


class SweepError(Exception):
    """A sweep that cannot start; str() says why."""


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


def _nested(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _label(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


def plan(
    config_path: str, recordings: list[str], grid: dict[str, list[Any]], *, seed: int | None, duration_s: float | None
) -> list[dict[str, Any]]:
    """One task per grid point x recording, each with a stable id (resume matches on it)."""
    tasks = []
    for r_index, recording in enumerate(recordings):
        for point in itertools.product(*grid.values()):
            values = dict(zip(grid, point))
            overrides: dict[str, Any] = {}
            for key, value in values.items():
                merge_tables(overrides, _nested(key, value))
            session: dict[str, Any] = {"market": "replay"}
            if seed is not None:
                session["seed"] = seed
            if duration_s is not None:
                session["duration_s"] = duration_s
            merge_tables(
                overrides, {"session": session, "replay": {"files": recording.split("+"), "as_fast_as_possible": True}}
            )
            ident = json.dumps(
                [config_path, recording, [[k, v] for k, v in values.items()], seed, duration_s], sort_keys=True
            )
            run_id = f"r{r_index}_" + hashlib.sha1(ident.encode()).hexdigest()[:10]
            tasks.append(
                {
                    "run_id": run_id,
                    "config": config_path,
                    "recording": recording,
                    "values": {k: _label(v) for k, v in values.items()},
                    "overrides": overrides,
                }
            )
    return tasks
