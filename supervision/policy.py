"""Restart policy: capped exponential backoff with jitter, healthy-period reset, restart intensity.

Pure code: no Trio, no clock. The supervisor feeds it times and asks for decisions, so every rule
here is testable with plain function calls.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any, Callable

import attrs

_Validator = Callable[[object, "attrs.Attribute[Any]", Any], None]


class PolicyValueError(ValueError):
    """A bad policy value; ``expected`` says what was wanted (a config reader shows it)."""

    def __init__(self, name: str, expected: str, value: object) -> None:
        super().__init__(f"{name} must be {expected}, got {value!r}")
        self.expected = expected


def _rule(check: Callable[[Any], bool], expected: str) -> _Validator:
    def validate(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not check(value):
            raise PolicyValueError(attribute.name, expected, value)

    return validate


def _at_least(floor: float) -> _Validator:
    return _rule(lambda v: math.isfinite(v) and v >= floor, f"a number >= {floor:g}")


_positive = _rule(lambda v: math.isfinite(v) and v > 0, "a number > 0")
_unit_interval = _rule(lambda v: 0 <= v < 1, "a number in [0, 1)")
_backoff = _at_least(0.01)  # a restart waits at least this (times the jitter factor): no busy restart loop


@attrs.frozen
class RestartPolicy:
    """How a supervisor restarts its child.

    The n-th consecutive restart waits ``min(max_backoff_s, initial_backoff_s * multiplier**n)``
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``. A run that lasted at least
    ``healthy_after_s`` resets the sequence. More than ``max_restarts`` restarts within
    ``window_s`` seconds means the child cannot be kept alive: the supervisor gives up.
    """

    initial_backoff_s: float = attrs.field(default=0.5, validator=_backoff)
    max_backoff_s: float = attrs.field(default=30.0, validator=_backoff)
    multiplier: float = attrs.field(default=2.0, validator=_at_least(1.0))  # < 1 would shrink delays to 0
    jitter: float = attrs.field(default=0.2, validator=_unit_interval)
    healthy_after_s: float = attrs.field(default=30.0, validator=_positive)
    max_restarts: int = attrs.field(default=5, validator=_positive)
    window_s: float = attrs.field(default=60.0, validator=_at_least(1.0))


class RestartTracker:
    """Decides, after each failure, whether to restart and how long to wait first."""

    def __init__(self, policy: RestartPolicy, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self._consecutive = 0
        self._recent: deque[float] = deque()

    def on_failure(
        self, started_at: float, failed_at: float, *, counted: bool = True, max_attempts: int | None = None
    ) -> float | None:
        """Record a failure; return the delay before the next attempt, or None to give up.

        ``counted=False`` (a failure caused on purpose) still backs off but does not count toward
        the restart-intensity limit. ``max_attempts``: this failure is worth at most that many attempts in
        a row (since the last healthy run), whatever the intensity limit would allow.
        """
        policy = self.policy
        if failed_at - started_at >= policy.healthy_after_s:
            self._consecutive = 0
        if counted:
            self._recent.append(failed_at)
        while self._recent and self._recent[0] <= failed_at - policy.window_s:
            self._recent.popleft()
        if len(self._recent) > policy.max_restarts:
            return None
        if max_attempts is not None and self._consecutive + 1 >= max_attempts:
            return None
        base = min(policy.max_backoff_s, policy.initial_backoff_s * policy.multiplier**self._consecutive)
        self._consecutive += 1
        if policy.jitter:
            base *= self._rng.uniform(1 - policy.jitter, 1 + policy.jitter)
        return base

    @property
    def restarts_in_window(self) -> int:
        return len(self._recent)
