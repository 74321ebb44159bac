"""Validators that say what they expect: the parameter types of the core (and the config sections that
are those types) check their values with these, so a bad value reads "expected a number > 0, got -5"
wherever it comes from (a TOML file, a command-line flag, a test).

Floats are finite unless the type says otherwise: ``Limit`` (a risk limit) may be ``inf``, "no limit".
"""

from __future__ import annotations

import math
import typing
from typing import Any, Callable

import attrs

# A risk limit: a number > 0, or inf for no limit (TOML writes ``inf``). Every other float is finite.
Limit = typing.NewType("Limit", float)


class Invalid(ValueError):
    """A value a rule refused; ``expected`` says what the rule wanted."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


@attrs.frozen
class Rule:
    """An attrs validator that says what it expects, so the error can name it."""

    check: Callable[[Any], bool]
    expected: str

    def __call__(self, _inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not self.check(value):
            raise Invalid(self.expected)


def finite(v: float | int) -> bool:
    return isinstance(v, int) or math.isfinite(v)  # an int is finite, however large (math.isfinite overflows)


def at_least(floor: float) -> Rule:
    """A finite number >= ``floor``: for the periods and rates a loop steps by."""
    return Rule(lambda v: finite(v) and v >= floor, f"a number >= {floor:g}")


def off_or_at_least(floor: float) -> Rule:
    """0 (the feature is off) or a finite number >= ``floor``."""
    return Rule(lambda v: v == 0 or (finite(v) and v >= floor), f"0 (off) or a number >= {floor:g}")


def between(low: float, high: float, what: str = "a number") -> Rule:
    return Rule(lambda v: finite(v) and low <= v <= high, f"{what} from {low:g} to {high:g}")


positive = Rule(lambda v: finite(v) and v > 0, "a number > 0")
positive_or_inf = Rule(lambda v: v > 0, "a number > 0 or inf")  # NaN and -inf fail: only +inf passes
non_negative = Rule(lambda v: finite(v) and v >= 0, "a number >= 0")
fraction = Rule(lambda v: 0 <= v < 1, "a number in [0, 1)")
