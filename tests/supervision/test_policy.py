import random

import pytest

from supervision import RestartPolicy, RestartTracker


def tracker(**kw) -> RestartTracker:
    return RestartTracker(RestartPolicy(jitter=0.0, **kw), random.Random(1))


def test_backoff_doubles_and_is_capped():
    t = tracker(initial_backoff_s=0.5, max_backoff_s=3, max_restarts=100, window_s=1000, healthy_after_s=100)
    delays = [t.on_failure(0.0, 1.0 * i) for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_healthy_run_resets_backoff():
    t = tracker(initial_backoff_s=1, healthy_after_s=10, max_restarts=100, window_s=1000)
    assert t.on_failure(0, 1) == 1
    assert t.on_failure(2, 3) == 2
    assert t.on_failure(5, 16) == 1  # ran 11 s >= healthy_after_s


def test_gives_up_past_the_intensity_limit_and_forgets_old_failures():
    t = tracker(max_restarts=2, window_s=10, healthy_after_s=100)
    assert t.on_failure(0, 0) is not None
    assert t.on_failure(0, 1) is not None
    assert t.on_failure(0, 2) is None  # third failure within 10 s
    t2 = tracker(max_restarts=2, window_s=10, healthy_after_s=100)
    for at in (0, 20, 40, 60):  # spaced out: never more than 2 in a window
        assert t2.on_failure(at, at) is not None


def test_jitter_stays_within_bounds_and_varies():
    t = RestartTracker(
        RestartPolicy(initial_backoff_s=1, multiplier=1, jitter=0.25, max_restarts=1000, window_s=1), random.Random(3)
    )
    delays = [t.on_failure(0, i * 2.0) for i in range(200)]
    assert all(0.75 <= d <= 1.25 for d in delays)
    assert len(set(delays)) > 100


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="jitter"):
        RestartPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy(max_restarts=0)


def test_a_failure_worth_few_attempts_gives_up_sooner_than_the_intensity_limit():
    t = tracker(initial_backoff_s=0.5, max_restarts=5, window_s=60, healthy_after_s=30)
    assert t.on_failure(0, 0.1, max_attempts=2) == 0.5  # the first attempt failed: one more
    assert t.on_failure(0.6, 0.7, max_attempts=2) is None  # the second too: given up, not at the sixth
    usual = tracker(initial_backoff_s=0.5, max_restarts=5, window_s=60, healthy_after_s=30)
    assert [usual.on_failure(0, i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, None]  # about 15 s
