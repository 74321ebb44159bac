"""Supervisor behaviour in virtual time, with exact timings (jitter off)."""

import random

import pytest
import trio

from supervision import ChildStats, RestartPolicy, SupervisorGaveUp, supervise


class Boom(Exception):
    restart_cause = "boom"


def policy(**kw) -> RestartPolicy:
    base = dict(
        initial_backoff_s=1.0,
        max_backoff_s=8.0,
        multiplier=2.0,
        jitter=0.0,
        healthy_after_s=30.0,
        max_restarts=100,
        window_s=1000.0,
    )
    base.update(kw)
    return RestartPolicy(**base)


async def test_restarts_with_exact_backoff(autojump_clock):
    starts: list[float] = []
    t0 = trio.current_time()

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        starts.append(trio.current_time() - t0)
        task_status.started()
        if len(starts) < 5:
            raise Boom("fail")

    stats = ChildStats("c")
    await supervise(child, name="c", policy=policy(), stats=stats, rng=random.Random(0))
    assert starts == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert stats.restarts == 4 and stats.starts == 5
    assert stats.causes == {"boom": 4}
    assert stats.downtime_s == pytest.approx(1 + 2 + 4 + 8)


async def test_backoff_resets_after_a_healthy_run(autojump_clock):
    starts: list[float] = []
    t0 = trio.current_time()

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        starts.append(trio.current_time() - t0)
        task_status.started()
        n = len(starts)
        if n == 3:
            await trio.sleep(40)  # healthy for longer than healthy_after_s
        if n < 5:
            raise Boom("fail")

    await supervise(child, name="c", policy=policy(), rng=random.Random(0))
    # 0 fail -> +1 -> 1 fail -> +2 -> 3 runs 40 s, fails at 43 -> reset -> +1 -> 44 fail -> +2 -> 46
    assert starts == [0.0, 1.0, 3.0, 44.0, 46.0]


async def test_gives_up_after_n_restarts_in_window(autojump_clock):
    async def child(task_status=trio.TASK_STATUS_IGNORED):
        raise Boom("always")

    stats = ChildStats("c")
    t0 = trio.current_time()
    with pytest.raises(SupervisorGaveUp) as info:
        await supervise(child, name="c", policy=policy(max_restarts=3, window_s=60), stats=stats, rng=random.Random(0))
    assert trio.current_time() - t0 == 1 + 2 + 4  # three restarts, the fourth failure gives up
    assert stats.restarts == 3 and stats.gave_up
    assert "c failed 4 times within 60 s" in str(info.value)
    assert "Boom: always" in str(info.value)


async def test_only_the_first_started_is_forwarded(autojump_clock):
    values = []
    attempts = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        attempts.append(1)
        task_status.started(len(attempts))
        if len(attempts) < 3:
            raise Boom("x")
        await trio.sleep_forever()

    class Status:
        def started(self, value=None):
            values.append(value)

    with trio.move_on_after(100):
        await supervise(child, name="c", policy=policy(), task_status=Status())
    assert values == [1]
    assert len(attempts) == 3


async def test_start_waits_for_a_child_that_fails_before_ready(autojump_clock):
    attempts = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        attempts.append(trio.current_time())
        if len(attempts) < 3:
            raise Boom("not yet")
        task_status.started("ready")
        await trio.sleep_forever()

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        value = await nursery.start(
            lambda task_status: supervise(child, name="c", policy=policy(), task_status=task_status)
        )
        assert value == "ready"
        assert trio.current_time() - t0 == 3.0
        nursery.cancel_scope.cancel()


async def test_cancellation_is_not_a_failure(autojump_clock):
    stats = ChildStats("c")

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        await trio.sleep_forever()

    with trio.move_on_after(5):
        await supervise(child, name="c", policy=policy(), stats=stats)
    assert stats.restarts == 0 and stats.causes == {} and stats.starts == 1


async def test_cause_of_a_single_exception_group_is_its_leaf(autojump_clock):
    stats = ChildStats("c")
    runs = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        runs.append(1)
        if len(runs) == 1:
            async with trio.open_nursery() as nursery:

                async def fail():
                    raise Boom("inner")

                nursery.start_soon(fail)

    await supervise(child, name="c", policy=policy(), stats=stats)
    assert stats.causes == {"boom": 1}
    assert stats.last_error == "Boom: inner"


async def test_failures_caused_on_purpose_back_off_but_never_give_up(autojump_clock):
    class Deliberate(Exception):
        intensity_exempt = True

    runs = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        runs.append(trio.current_time())
        task_status.started()
        if len(runs) <= 10:
            raise Deliberate("kill")

    stats = ChildStats("c")
    await supervise(child, name="c", policy=policy(max_restarts=2, window_s=1000), stats=stats)
    assert stats.restarts == 10 and not stats.gave_up
    assert runs[1] - runs[0] == 1.0 and runs[2] - runs[1] == 2.0  # the usual backoff


async def test_hurry_skips_the_backoff(autojump_clock):
    hurry = trio.Event()
    runs = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        runs.append(trio.current_time())
        if len(runs) == 1:
            raise Boom("x")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: supervise(child, name="c", policy=policy(initial_backoff_s=30), hurry=hurry))
        await trio.sleep(2)
        hurry.set()
    assert runs[1] - runs[0] == 2.0  # not 30
