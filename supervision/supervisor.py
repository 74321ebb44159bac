"""Run a child task, restart it when it fails, give up when it fails too often.

Generic: the supervisor knows nothing about what its child does. A child is an async callable
taking ``task_status``; it calls ``task_status.started()`` once it is really ready. Returning
normally ends supervision; raising an ``Exception`` is a failure and leads to a restart after the
policy's backoff; cancellation (a ``BaseException``) always passes through untouched.

A child may label its failure by giving the exception a ``restart_cause`` attribute (for example
``"closed"`` or ``"stale"``); otherwise the cause is the exception's class name. An exception with
``intensity_exempt = True`` (a failure caused on purpose, such as a chaos kill) is restarted with
the usual backoff but does not count toward the restart-intensity limit. An exception with an integer
``max_attempts`` is worth at most that many attempts in a row: the supervisor gives up sooner than the
intensity limit would (a failure the child knows retrying cannot fix).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Awaitable, Callable, Mapping

import attrs
import trio
from loguru import logger

from supervision.policy import RestartPolicy, RestartTracker
from supervision.words import counts_in_words, sole_exception

Child = Callable[..., Awaitable[Any]]


@attrs.define(auto_exc=True)
class SupervisorGaveUp(Exception):
    """A child failed more often than its restart policy allows."""

    name: str
    restarts: int
    window_s: float
    last_error: str
    # what to do about it; the application can say better than the generic advice (attrs.evolve)
    advice: str = (
        "Check the log for the causes, or raise supervision.max_restarts / window_s if the failures are expected."
    )

    def __str__(self) -> str:
        return (
            f"{self.name} failed {self.restarts} times within {self.window_s:g} s and was not "
            f"restarted again; last error: {self.last_error}. {self.advice}"
        )


@attrs.define
class ChildStats:
    """What happened to one supervised child; reported in the KPI file."""

    name: str
    starts: int = 0
    restarts: int = 0
    causes: Counter[str] = attrs.field(factory=Counter)
    last_error: str | None = None
    last_cause: str | None = None  # the cause label of the last failure
    downtime_s: float = 0.0
    gave_up: bool = False
    _down_since: float | None = None

    def mark_ready(self, now: float) -> None:
        if self._down_since is not None:
            self.downtime_s += now - self._down_since
            self._down_since = None

    def mark_down(self, now: float, cause: str, error: str) -> None:
        self.causes[cause] += 1
        self.last_error, self.last_cause = error, cause
        if self._down_since is None:
            self._down_since = now

    def current_downtime_s(self, now: float) -> float:
        """Total downtime including an outage that is still going on."""
        if self._down_since is None:
            return self.downtime_s
        return self.downtime_s + (now - self._down_since)

    def statistics(self, now: float) -> ChildStatistics:
        """A frozen snapshot as of ``now`` (the downtime includes an outage still going on)."""
        return ChildStatistics(
            self.name,
            self.starts,
            self.restarts,
            dict(sorted(self.causes.items())),
            self.last_error,
            self.last_cause,
            round(self.current_downtime_s(now), 6),
            self.gave_up,
        )


@attrs.frozen
class ChildStatistics:
    """A snapshot of one child's ``ChildStats``: what outsiders (a KPI file, a status line) read."""

    name: str
    starts: int
    restarts: int
    causes: Mapping[str, int]  # cause label -> failures, by label
    last_error: str | None
    last_cause: str | None
    downtime_s: float
    gave_up: bool


def failure_cause(exc: BaseException) -> tuple[str, str]:
    """(cause label, one-line description) for a failure; looks inside a one-leaf group."""
    leaf = sole_exception(exc)
    cause = getattr(leaf, "restart_cause", None) or type(leaf).__name__
    return str(cause), f"{type(leaf).__name__}: {leaf}"


def _exempt(exc: BaseException) -> bool:
    return bool(getattr(sole_exception(exc), "intensity_exempt", False))


def _max_attempts(exc: BaseException) -> int | None:
    attempts = getattr(sole_exception(exc), "max_attempts", None)
    return attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None


class _FirstStartOnly:
    """Task status handed to each attempt: marks readiness, forwards only the first started()."""

    def __init__(self, outer: trio.TaskStatus, stats: ChildStats) -> None:
        self._outer = outer
        self._stats = stats
        self._forwarded = False

    def started(self, value: Any = None) -> None:
        self._stats.mark_ready(trio.current_time())
        self.release(value)

    def release(self, value: Any = None) -> None:
        """Let the parent's ``nursery.start()`` return, if no attempt has (a give-up must not leave it
        waiting forever: the parent then learns of the failure from the exception)."""
        if not self._forwarded:
            self._forwarded = True
            self._outer.started(value)


async def supervise(
    child: Child,
    *,
    name: str,
    policy: RestartPolicy,
    stats: ChildStats | None = None,
    rng: random.Random | None = None,
    hurry: trio.Event | None = None,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``child`` until it returns, restarting it on failure; raise SupervisorGaveUp at the limit.

    ``task_status.started()`` is forwarded on the child's first ``started()``, or just before giving up
    when no attempt ever started, so a parent waiting in ``nursery.start()`` always resumes.
    Once ``hurry`` is set (the application is shutting down and wants its children to finish their
    work), a restart waits for no backoff.
    """
    stats = stats if stats is not None else ChildStats(name)
    tracker = RestartTracker(policy, rng if rng is not None else random.Random())
    status = _FirstStartOnly(task_status, stats)
    log = logger.bind(actor=name)
    while True:
        started_at = trio.current_time()
        stats.starts += 1
        try:
            await child(task_status=status)
        except Exception as exc:
            failed_at = trio.current_time()
            cause, error = failure_cause(exc)
            stats.mark_down(failed_at, cause, error)
            delay = tracker.on_failure(started_at, failed_at, counted=not _exempt(exc), max_attempts=_max_attempts(exc))
            if delay is None:
                stats.gave_up = True
                status.release()
                log.error(
                    "{} gave up after {} failures in {:g} s (causes since the start: {}); last: {}",
                    name,
                    tracker.restarts_in_window,
                    policy.window_s,
                    counts_in_words(stats.causes),
                    error,
                )
                raise SupervisorGaveUp(name, tracker.restarts_in_window, policy.window_s, error) from exc
            stats.restarts += 1
            log.warning("{} failed ({}): {}; restart #{} in {:.2f} s", name, cause, error, stats.restarts, delay)
            if hurry is None:
                await trio.sleep(delay)
            else:
                with trio.move_on_after(delay):
                    await hurry.wait()
        else:
            return
