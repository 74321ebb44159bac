"""The shard plan (actors/core/shards.py): symbols cut into connections of bounded size in a stable order, and
rotations staggered so that no two shards rotate close together and no connection reaches Binance's cut."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.shards import MAX_STREAMS_PER_CONNECTION, plan_shards

DAY_S = 86_400.0


def _symbols(n: int) -> list[str]:
    return [f"C{i:03d}USDT" for i in range(n)]


def test_symbols_are_cut_into_the_fewest_even_shards_in_a_stable_order():
    plan = plan_shards(reversed(_symbols(150)), 100, DAY_S)
    assert [len(s.symbols) for s in plan.shards] == [75, 75]  # not 100 and 50
    assert plan.symbols == tuple(_symbols(150))  # sorted, whatever the order given
    assert plan_shards(_symbols(150) + _symbols(3), 100, DAY_S) == plan  # duplicates count once
    assert [len(s.symbols) for s in plan_shards(_symbols(201), 100, DAY_S).shards] == [67, 67, 67]
    assert plan.shard_of("C100USDT").index == 1
    assert len(plan_shards(_symbols(1), 100, DAY_S).shards) == 1
    with pytest.raises(KeyError):
        plan.shard_of("NOPEUSDT")


@pytest.mark.parametrize("limit", [0, MAX_STREAMS_PER_CONNECTION + 1])
def test_a_limit_outside_what_binance_allows_is_refused(limit):
    with pytest.raises(ValueError, match="streams_per_connection"):
        plan_shards(_symbols(3), limit, DAY_S)


@given(
    n_symbols=st.integers(1, 2000),
    limit=st.integers(1, MAX_STREAMS_PER_CONNECTION),
    cut_s=st.floats(60.0, 10 * DAY_S),
)
def test_rotations_are_spread_and_every_connection_ends_before_the_cut(n_symbols, limit, cut_s):
    plan = plan_shards(_symbols(n_symbols), limit, cut_s)
    n = len(plan.shards)
    assert all(len(s.symbols) <= limit for s in plan.shards) and n == -(-n_symbols // limit)
    # n rotations share each period: the spacing is the widest possible, and close to cut / n
    eps = 1e-9 * cut_s  # float rounding
    assert plan.spacing_s * n == pytest.approx(plan.period_s) and plan.spacing_s >= 0.9 * cut_s / n - eps
    horizon = 3 * cut_s
    times = sorted(itertools.chain.from_iterable(plan.rotations(k, horizon) for k in range(n)))
    assert len(times) >= 2 * n
    assert min(b - a for a, b in zip(times, times[1:])) >= plan.spacing_s - eps
    # a connection opened anywhere (after a failure, say) ends on its shard's grid, before the cut
    for k in range(n):
        for connected_at in (0.0, cut_s / 7, cut_s * 1.3, plan.rotations(k, horizon)[0] - 1e-3):
            end = plan.rotation_after(k, connected_at)
            assert plan.min_age_s - eps <= end - connected_at < cut_s
            assert any(abs(end - t) < 1e-6 * cut_s for t in plan.rotations(k, end + 1))


def test_a_connection_opened_just_before_its_point_waits_for_the_next_one():
    plan = plan_shards(_symbols(300), 100, DAY_S)
    first = plan.rotations(2, DAY_S)[0]
    assert first == pytest.approx(plan.period_s)  # the last shard rotates a period after the start
    assert plan.rotation_after(0, 0.0) == pytest.approx(plan.spacing_s)
    assert plan.rotation_after(2, first - 60.0) == pytest.approx(first + plan.period_s)
    assert plan.rotation(1)(0.0) == plan.rotation_after(1, 0.0)
