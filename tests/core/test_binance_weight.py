"""The Binance REST weight budget's arithmetic (actors/core/venues/binance_weight.py): pure, so every time is
given; the properties with hypothesis."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.core.venues.binance_weight import Answer, WeightBudget, depth_weight


def budget(limit: int = 6_000, jitter_s: float = 0.25, seed: int = 1) -> WeightBudget:
    return WeightBudget(limit, jitter_s=jitter_s, rng=random.Random(seed))


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(1, 5), (5, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50), (1001, 250), (5000, 250)],
)
def test_the_depth_weight_is_binances_table(limit, weight):
    """PROTOCOLS.md §2.5 (since 2023-10-19): 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250."""
    assert depth_weight(limit) == weight


def test_a_request_that_finds_the_budget_free_goes_at_once_without_a_random_draw():
    rng = random.Random(3)
    b = WeightBudget(6_000, rng=rng)
    state = rng.getstate()
    ticket = b.submit(50, 10.0)
    assert b.poll(ticket, 10.0) is None
    assert rng.getstate() == state  # normal operation draws nothing: same seed, same session
    s = b.statistics(10.0)
    assert (s.used, s.granted, s.granted_weight, s.waited, s.waited_s, s.queued) == (50, 1, 50, 0, 0.0, 0)


def test_past_the_limit_a_request_waits_until_the_oldest_grant_leaves_the_window():
    b = budget(limit=100, jitter_s=0.0)
    for t in (0.0, 1.0):
        assert b.poll(b.submit(50, t), t) is None
    ticket = b.submit(50, 2.0)
    assert b.poll(ticket, 2.0) == 61.0  # the grant at 0 leaves the window (a minute and a second) at 61
    assert b.poll(ticket, 60.9) == 61.0
    assert b.poll(ticket, 61.0) is None
    assert b.statistics(61.0).waited_s == 59.0


def test_the_servers_count_is_believed_for_a_window_after_its_answer():
    """Other processes behind the IP spent 5,990: a request of 50 waits although we spent only 5."""
    b = budget(jitter_s=0.0)
    assert b.poll(b.submit(5, 0.0), 0.0) is None
    assert b.answered(200, {"X-MBX-USED-WEIGHT-1M": "5990"}, sent_at=0.0, now=0.1) is Answer.OK
    assert b.used(0.1) == 5990
    ticket = b.submit(50, 1.0)
    assert b.poll(ticket, 1.0) == pytest.approx(61.1)  # the server's word lapses a window after its answer
    assert b.poll(ticket, 61.1) is None
    # a later answer replaces it: the server's minute has turned
    assert b.answered(200, {"x-mbx-used-weight-1m": "55"}, sent_at=61.1, now=61.2) is Answer.OK
    assert b.used(61.2) == 55


def test_grants_after_the_answered_request_count_on_top_of_the_servers_word():
    b = budget(jitter_s=0.0)
    assert b.poll(b.submit(50, 0.0), 0.0) is None
    assert b.poll(b.submit(50, 0.5), 0.5) is None  # in flight when the first answer arrives
    b.answered(200, {"X-MBX-USED-WEIGHT-1M": "1000"}, sent_at=0.0, now=1.0)
    assert b.used(1.0) == 1050


@pytest.mark.parametrize(
    ("status", "headers", "answer", "blocked_for"),
    [
        (429, {"Retry-After": "7"}, Answer.RATE_LIMITED, 7.0),
        (429, {}, Answer.RATE_LIMITED, 60.0),  # none: a whole window
        (418, {"Retry-After": "300"}, Answer.BANNED, 300.0),
        (418, {"Retry-After": "soon"}, Answer.BANNED, 120.0),  # unreadable: Binance's shortest ban
    ],
)
def test_a_refusal_holds_every_request_until_its_retry_after(status, headers, answer, blocked_for):
    b = budget(jitter_s=0.0)
    assert b.poll(b.submit(5, 0.0), 0.0) is None
    assert b.answered(status, headers, sent_at=0.0, now=1.0) is answer
    ticket = b.submit(5, 2.0)
    assert b.poll(ticket, 2.0) == 1.0 + blocked_for
    assert b.poll(ticket, 1.0 + blocked_for) is None
    s = b.statistics(2.0)
    assert (s.rate_limited, s.banned) == ((1, 0) if status == 429 else (0, 1))


def test_lower_priority_numbers_go_first_and_the_others_wait_for_the_queue_to_change():
    b = budget(limit=100, jitter_s=0.0)
    assert b.poll(b.submit(100, 0.0), 0.0) is None
    watched = b.submit(50, 1.0, priority=1)
    open_trade = b.submit(50, 2.0, priority=0)
    assert b.poll(watched, 61.0) == math.inf  # not first in the queue: wait for a change
    assert b.poll(open_trade, 61.0) is None
    assert b.poll(watched, 61.0) is None


def test_a_request_that_has_to_wait_gets_a_jitter():
    b = budget(limit=100, jitter_s=0.5, seed=7)
    assert b.poll(b.submit(100, 0.0), 0.0) is None
    waits = []
    for t in (1.0, 2.0, 3.0):
        waits.append(b.submit(10, t))
    first = b.poll(min(waits, key=lambda k: b._queue[k].key()), 61.0)
    assert first is None or 61.0 <= first <= 61.5
    assert len({b._queue[k].not_before for k in waits if k in b._queue}) >= 2  # not all at one instant


def test_a_request_heavier_than_the_budget_is_refused_at_once():
    with pytest.raises(ValueError, match="can never fit"):
        budget(limit=100).submit(250, 0.0)


def test_a_cancelled_request_leaves_the_queue():
    b = budget(limit=100, jitter_s=0.0)
    assert b.poll(b.submit(100, 0.0), 0.0) is None
    first, second = b.submit(50, 1.0), b.submit(50, 1.0)
    b.cancel(first)
    assert b.poll(second, 61.0) is None
    with pytest.raises(KeyError):
        b.poll(first, 61.0)


_requests = st.lists(
    st.tuples(
        st.floats(0, 300, allow_nan=False), st.sampled_from((5, 25, 50, 250)), st.integers(0, 2)
    ),  # (arrives at, weight, priority)
    min_size=1,
    max_size=80,
)


def _drive(b: WeightBudget, requests: list[tuple[float, int, int]]) -> list[tuple[float, int, int, float]]:
    """Every request submitted at its time and polled as a shell would: when its poll time comes, and after
    any grant (the queue changed). Returns (granted at, weight, priority, arrived at) in grant order."""
    arrivals = sorted(requests)
    pending: dict[int, tuple[float, int, int, float]] = {}  # ticket -> (next poll, weight, priority, arrived)
    granted: list[tuple[float, int, int, float]] = []
    now = 0.0
    for _ in range(100_000):
        while arrivals and arrivals[0][0] <= now:
            at, weight, priority = arrivals.pop(0)
            pending[b.submit(weight, now, priority)] = (now, weight, priority, at)
        progress = True
        while progress:  # a grant changes the queue: everyone polls again
            progress = False
            for ticket in sorted(pending):
                _, weight, priority, at = pending[ticket]
                wake = b.poll(ticket, now)
                if wake is None:
                    granted.append((now, weight, priority, at))
                    del pending[ticket]
                    progress = True
                else:
                    assert wake >= now
                    pending[ticket] = (wake, weight, priority, at)
        if not pending and not arrivals:
            return granted
        finite = [p[0] for p in pending.values() if p[0] != math.inf]
        assert finite or arrivals, "requests wait and nothing will wake them"
        now = min(finite + ([arrivals[0][0]] if arrivals else []))
    raise AssertionError("no end")


@settings(max_examples=150, deadline=None)
@given(_requests, st.integers(100, 2_000), st.floats(0, 2))
def test_any_sixty_seconds_hold_at_most_the_limit_and_every_request_goes(requests, limit, jitter_s):
    """So neither a counter per clock minute nor one over the last 60 s ever sees more than the limit, and
    nothing waits forever."""
    requests = [r for r in requests if r[1] <= limit]
    b = budget(limit=limit, jitter_s=jitter_s)
    granted = _drive(b, requests)
    assert len(granted) == len(requests)
    times = [g[0] for g in granted]
    assert times == sorted(times)
    for i, (t, *_rest) in enumerate(granted):
        in_window = sum(w for u, w, *_ in granted if u <= t < u + 60.0)
        assert in_window <= limit, (i, t, in_window)
    for t, _w, _p, arrived in granted:
        assert t >= arrived
    # a request that found nothing waiting and room enough went at once
    assert b.statistics(granted[-1][0] if granted else 0.0).queued == 0


@settings(max_examples=100, deadline=None)
@given(_requests, st.integers(0, 6_000))
@example(requests=[(0.0, 250, 0)] * 3, others=5_246)  # CI found it: grants at the answered request's instant
def test_with_the_servers_count_we_never_pass_the_limit_it_states(requests, others):
    """Others behind the IP used ``others`` at time 0 (the first answer says so): within the minute after it,
    they and we together stay within the limit, as far as the header told us."""
    limit = 6_000
    b = budget(limit=limit, jitter_s=0.0)
    assert b.poll(b.submit(5, 0.0), 0.0) is None
    b.answered(200, {"X-MBX-USED-WEIGHT-1M": str(others + 5)}, sent_at=0.0, now=0.0)
    granted = _drive(b, [(r[0], r[1], r[2]) for r in requests])
    within = sum(w for t, w, *_ in granted if t < 61.0)
    assert others + 5 + within <= limit or within == 0


def test_grants_at_the_instant_of_the_answered_request_count_on_top_of_the_servers_word():
    """The server counted the request it answers; others granted at the same instant may have come after it."""
    b = budget(jitter_s=0.0)
    for _ in range(3):
        assert b.poll(b.submit(250, 0.0), 0.0) is None
    b.answered(200, {"X-MBX-USED-WEIGHT-1M": "5500"}, sent_at=0.0, now=0.1)
    assert b.used(0.1) == 6000  # 5,500 with the answered one, plus the other two
    assert b.poll(b.submit(5, 0.2), 0.2) is not None
