"""Chaos: kill running actors on purpose, to see that nothing breaks.

``Killable`` wraps an actor so that a chaos task can end its current run as if it had crashed: the
run's cancel scope is cancelled and the cancellation is turned into ``ChaosKill`` (restart cause
``crash``), which the actor's supervisor handles like any other crash. ``run_chaos`` kills one of
the given actors, chosen by a seeded generator, every ``every_s`` seconds (``--chaos-kill-every``).
"""

from __future__ import annotations

import random
from typing import Any, Awaitable, Callable

import trio
from loguru import logger

from actors.core.vocabulary import RestartCause
from actors.records.sources import ChaosKills


class ChaosKill(Exception):
    restart_cause = RestartCause.CRASH
    intensity_exempt = True  # deliberate: restarted with backoff, never a reason to give up


class Killable:
    def __init__(self, name: str, child: Callable[..., Awaitable[Any]]) -> None:
        self.name = name
        self._child = child
        self._scope: trio.CancelScope | None = None
        self._ready = False

    @property
    def running(self) -> bool:
        return self._scope is not None and self._ready

    def kill(self) -> bool:
        """End the current run; False if the actor is not running (between restarts, say)."""
        if not self.running:
            return False
        assert self._scope is not None
        self._scope.cancel(reason="chaos kill")
        return True

    async def __call__(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        outer = task_status

        class _Status:
            def started(inner, value: Any = None) -> None:  # noqa: N805
                self._ready = True
                outer.started(value)

        with trio.CancelScope() as scope:
            self._scope, self._ready = scope, False
            try:
                await self._child(task_status=_Status())
            finally:
                self._scope, self._ready = None, False
        if scope.cancelled_caught:
            raise ChaosKill(f"{self.name} killed by chaos")


async def run_chaos(targets: list[Killable], every_s: float, rng: random.Random, kills: ChaosKills) -> None:
    log = logger.bind(actor="chaos")
    next_at = trio.current_time()
    while True:
        next_at += every_s
        await trio.sleep_until(next_at)
        target = rng.choice(targets)
        if target.kill():
            log.warning("chaos: killed {} (kill #{})", target.name, kills.record(target.name))
        else:
            log.info("chaos: {} was not running; no kill this time", target.name)
