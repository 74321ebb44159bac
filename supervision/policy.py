"""Restart policy: capped exponential backoff with jitter, healthy-period reset, restart intensity.

Pure code: no Trio, no clock. The supervisor feeds it times and asks for decisions, so every rule
here is testable with plain function calls.
"""

from __future__ import annotations

import random
from collections import deque

import attrs


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _unit_interval(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


@attrs.frozen
class RestartPolicy:
    """How a supervisor restarts its child.

    The n-th consecutive restart waits ``min(max_backoff_s, initial_backoff_s * multiplier**n)``
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``. A run that lasted at least
    ``healthy_after_s`` resets the sequence. More than ``max_restarts`` restarts within
    ``window_s`` seconds means the child cannot be kept alive: the supervisor gives up.
    """

    initial_backoff_s: float = attrs.field(default=0.5, validator=_positive)
    max_backoff_s: float = attrs.field(default=30.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    jitter: float = attrs.field(default=0.2, validator=_unit_interval)
    healthy_after_s: float = attrs.field(default=30.0, validator=_positive)
    max_restarts: int = attrs.field(default=5, validator=_positive)
    window_s: float = attrs.field(default=60.0, validator=_positive)


class RestartTracker:
    """Decides, after each failure, whether to restart and how long to wait first."""

    def __init__(self, policy: RestartPolicy, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self._consecutive = 0
        self._recent: deque[float] = deque()

    def on_failure(self, started_at: float, failed_at: float, *, counted: bool = True) -> float | None:
        """Record a failure; return the delay before the next attempt, or None to give up.

        ``counted=False`` (a failure caused on purpose) still backs off but does not count toward
        the restart-intensity limit.
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
        base = min(policy.max_backoff_s, policy.initial_backoff_s * policy.multiplier**self._consecutive)
        self._consecutive += 1
        if policy.jitter:
            base *= self._rng.uniform(1 - policy.jitter, 1 + policy.jitter)
        return base

    @property
    def restarts_in_window(self) -> int:
        return len(self._recent)
