"""The Trio shell around ``WeightBudget`` (actors/core/venues/binance_weight.py): a request waits here until
the budget grants it, then reports its answer. One ``RestBudget`` per process (the session makes it and
hands it to every Binance feed, across restarts), so the weight spent, the server's count and a 429's or a
418's ``Retry-After`` outlive the connection that met them.

A request that finds the budget free goes at once, without a checkpoint: in normal operation nothing
changes. A waiting request sleeps until the budget says it may go, or until the queue changes (another
request granted, given up on, answered), whichever is first.
"""

from __future__ import annotations

import random
from typing import Mapping

import trio

from actors.core.venues.binance_weight import Answer, WeightBudget, WeightStatistics


class RestBudget:
    def __init__(self, budget: WeightBudget) -> None:
        self.budget = budget
        self._changed = trio.Event()

    @classmethod
    def per_minute(cls, weight_per_min: int, seed: int | None = None) -> RestBudget:
        """A budget of ``weight_per_min``; its jitter seeded with ``seed`` (None: from the system)."""
        return cls(WeightBudget(weight_per_min, rng=random.Random(seed)))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def acquire(self, weight: int, priority: int = 0) -> float:
        """Wait until a request of ``weight`` may go; returns the time it was granted (pass it to
        ``answered``). Cancelled while waiting, it leaves the queue."""
        budget = self.budget
        ticket = budget.submit(weight, trio.current_time(), priority)
        try:
            while (wake_at := budget.poll(ticket, trio.current_time())) is not None:
                changed = self._changed
                with trio.move_on_at(wake_at):
                    await changed.wait()
        except BaseException:
            budget.cancel(ticket)
            self._notify()
            raise
        self._notify()  # the next in the queue may be first now
        return trio.current_time()

    def answered(self, status: int, headers: Mapping[str, str], sent_at: float) -> Answer:
        """The answer to a request granted at ``sent_at``: its status and headers update the budget."""
        answer = self.budget.answered(status, headers, sent_at, trio.current_time())
        self._notify()
        return answer

    def statistics(self) -> WeightStatistics:
        return self.budget.statistics(trio.current_time())
