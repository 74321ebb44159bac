"""FastForward.until against trio.sleep_until: the same times seen by every task, in the same order."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from actors.session.fast_forward import FastForward


def _run(main):
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def _stepper(wait, steps: list[float], seen: list[tuple[str, float]]) -> None:
    for t in steps:
        await wait(t)
        seen.append(("step", trio.current_time()))


async def _others(times: list[float], seen: list[tuple[str, float]], name: str) -> None:
    for t in times:
        await trio.sleep_until(t)
        seen.append((name, trio.current_time()))


def _session(use_ff: bool, steps: list[float], others: dict[str, list[float]]) -> tuple[list[tuple[str, float]], int]:
    seen: list[tuple[str, float]] = []
    jumps = []

    async def main() -> None:
        ff = FastForward()
        wait = ff.until if use_ff else trio.sleep_until
        async with trio.open_nursery() as nursery:
            for name, times in others.items():
                nursery.start_soon(_others, times, seen, name)
            nursery.start_soon(_stepper, wait, steps, seen)
        jumps.append(ff.jumps)

    _run(main)
    return seen, jumps[0]


def _sorted_by_time(seen: list[tuple[str, float]]) -> list[tuple[str, float]]:
    # tasks woken at the very same instant run in an order Trio leaves open; every other order is fixed
    return sorted(seen, key=lambda x: (x[1], x[0]))


@pytest.mark.parametrize("seed", range(20))
def test_every_task_sees_the_times_it_would_see_with_trio_sleep_until(seed):
    rng = random.Random(seed)
    steps = sorted(round(rng.uniform(0, 50), 3) for _ in range(300))
    others = {f"o{i}": sorted(round(rng.uniform(0, 50), 1) for _ in range(rng.randrange(1, 40))) for i in range(3)}
    plain, _ = _session(False, steps, others)
    fast, jumps = _session(True, steps, others)
    for seen in (plain, fast):  # nobody ever saw a time earlier than one seen before
        assert [t for _, t in seen] == sorted(t for _, t in seen)
    assert _sorted_by_time(fast) == _sorted_by_time(plain)
    assert jumps > len(steps) / 2  # most steps did not go through the scheduler


def test_a_task_woken_with_it_runs_before_the_clock_moves():
    """Woken at the same deadline (or by the caller's own send): it runs at that time, not at the next step's."""
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        ff = FastForward()
        send, recv = trio.open_memory_channel[int](10)

        async def collector() -> None:
            async for _ in recv:
                seen.append(("got", trio.current_time()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_others, [1.0, 3.0], seen, "other")
            nursery.start_soon(collector)
            await ff.until(1.0)  # a real sleep: "other" wakes at the same deadline
            await ff.until(2.0)
            seen.append(("step", trio.current_time()))
            await send.send(1)
            ff.stirred()
            await ff.until(2.5)
            seen.append(("step", trio.current_time()))
            send.close()

    _run(main)
    assert ("other", 1.0) in seen
    assert ("got", 2.0) in seen
    assert seen.index(("got", 2.0)) < seen.index(("step", 2.5))


def test_alone_it_jumps_and_still_goes_through_the_scheduler_every_so_often():
    async def main() -> tuple[int, int]:
        ff = FastForward(every_s=1.0)
        for i in range(1, 1001):
            await ff.until(i * 0.01)
            assert trio.current_time() == i * 0.01
        return ff.jumps, ff.sleeps

    jumps, sleeps = _run(main)
    assert jumps + sleeps == 1000
    assert 10 <= sleeps <= 12  # once per virtual second (and the first)


def test_on_a_real_clock_it_is_trio_sleep_until():
    async def main() -> tuple[int, int]:
        ff = FastForward()
        start = trio.current_time()
        await ff.until(start + 0.01)
        assert trio.current_time() >= start + 0.01
        return ff.jumps, ff.sleeps

    assert trio.run(main) == (0, 1)
