"""Moving a virtual clock forward without a trip through Trio's scheduler when nothing else could run meanwhile.

On the virtual clock (``trio.testing.MockClock`` with ``autojump_threshold = 0``) a task that sleeps until ``t``
while every other task is blocked, no callback is queued and no deadline comes before ``t`` is woken at ``t`` with
nothing else run in between: Trio's run loop found itself idle, jumped the clock to the task's deadline and
rescheduled it. ``FastForward.until`` gives the same outcome by jumping the clock itself, which costs a few
microseconds instead of the run loop's round (the batched replay's steps are most of its wake-ups: about 35,000
for the shared 346 s recording, docs/performance.md).

"Every other task is blocked" is only known where nothing has run since the task last saw it so: after a jump of
its own, or after ``trio.testing.wait_all_tasks_blocked`` (a task woken together with this one may not have run
yet, and Trio's statistics do not count it). So after any await of the caller's (``stirred``) and after a real
sleep, ``until`` first waits for the others to block. Where the condition does not hold (a task runnable, a
thread's result or a signal queued, a deadline at or before ``t``), or ``every_s`` of virtual time has passed
since the last real sleep, it sleeps as ``trio.sleep_until`` does.
"""

from __future__ import annotations

import math

import trio
import trio.testing

YIELD_EVERY_S = 1.0  # virtual seconds between real trips through the scheduler, whatever else holds


class FastForward:
    """``until(t)``: be at Trio time ``t``, as ``trio.sleep_until(t)``, jumping a virtual clock where nothing
    else could have run; ``stirred()`` after any other await of the caller's. ``jumps`` and ``sleeps`` count which
    way each call went."""

    def __init__(self, every_s: float = YIELD_EVERY_S) -> None:
        clock = trio.lowlevel.current_clock()
        self._clock = clock if isinstance(clock, trio.testing.MockClock) and on_virtual_clock() else None
        self.every_s = every_s
        self._sleep_by = -math.inf  # the virtual time by which the next call goes through the scheduler
        self._alone = False  # nothing has run since this task last saw every other task blocked
        self.jumps = self.sleeps = 0

    def stirred(self) -> None:
        """The caller awaited something (a channel send, a checkpoint): other tasks may have been woken."""
        self._alone = False

    async def until(self, t: float) -> None:
        clock = self._clock
        if clock is not None and t < self._sleep_by:
            if not self._alone:
                await trio.testing.wait_all_tasks_blocked()
                self._alone = True
            now = clock.current_time()
            if _nothing_else_before(t - now):
                while now < t:  # as Trio's own jump: again by what rounding left short of ``t``
                    clock.jump(t - now)
                    now = clock.current_time()
                self.jumps += 1
                return
        if clock is not None:
            self._sleep_by = max(t, clock.current_time()) + self.every_s
        self._alone = False
        self.sleeps += 1
        await trio.sleep_until(t)


def _nothing_else_before(seconds: float) -> bool:
    """No task runnable, no callback queued (a thread's result, a signal), no deadline within ``seconds``."""
    stats = trio.lowlevel.current_statistics()
    idle = stats.tasks_runnable == 0 and stats.run_sync_soon_queue_size == 0
    return idle and stats.seconds_to_next_deadline > seconds


def on_virtual_clock() -> bool:
    """Whether this Trio run is on the virtual clock: a ``MockClock`` that jumps as soon as every task is blocked
    (``autojump_threshold = 0``: ``--virtual-time``, ``--as-fast-as-possible``, a sweep's runs, the tests)."""
    clock = trio.lowlevel.current_clock()
    return isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold == 0
