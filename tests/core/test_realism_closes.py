"""The session side of the realism statistics (actors/core/realism.py): 1-minute closes kept as samples arrive
give the stretches the whole series gives, within a bound; what each statistic needs, in words, is what
``measure`` needs."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core import realism


def _same(a: list[realism.Stretch], b: list[realism.Stretch]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.premium_bps, y.premium_bps)
        for u, v in ((x.binance, y.binance), (x.upbit, y.upbit)):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)


@st.composite
def _samples(draw):
    """Ascending times (seconds) with gaps of 0.2 s to 4 minutes, premiums, and prices that may be missing."""
    n = draw(st.integers(0, 400))
    steps = draw(st.lists(st.sampled_from([0.2, 1.0, 1.0, 1.0, 7.0, 59.0, 130.0, 240.0]), min_size=n, max_size=n))
    t = np.cumsum([draw(st.floats(0, 600))] + steps)[:n]
    premium = draw(st.lists(st.floats(-200, 200), min_size=n, max_size=n))
    prices = st.one_of(st.floats(50_000, 70_000), st.just(math.nan)) if draw(st.booleans()) else st.floats(1, 2)
    binance = draw(st.lists(prices, min_size=n, max_size=n))
    return list(t), premium, binance


@settings(max_examples=60, deadline=None)
@given(_samples())
def test_minute_closes_give_the_stretches_of_the_whole_series(samples):
    t, premium, binance = samples
    closes = realism.MinuteCloses()
    for ti, p, b in zip(t, premium, binance):
        closes.add(ti, p, b, 1000.0 + p)
    upbit = [1000.0 + p for p in premium]
    _same(closes.stretches(), realism.stretches_from_samples(t, premium, binance, upbit))


def test_minute_closes_keep_the_newest_minutes_only():
    closes = realism.MinuteCloses(max_minutes=5)
    for second in range(0, 20 * 60, 10):  # 20 minutes, a sample every 10 s
        closes.add(second, second / 60.0)
    assert len(closes) == 5
    (stretch,) = closes.stretches()
    # the last sample of each of minutes 15..19: at 15:50, 16:50, ...
    np.testing.assert_allclose(stretch.premium_bps, [(60 * m + 50) / 60.0 for m in range(15, 20)])
    closes.add(60.0, 99.0)  # older than the newest minute: ignored
    assert len(closes) == 5 and closes.stretches()[0].premium_bps[-1] == (60 * 19 + 50) / 60.0


def test_minute_closes_of_a_premium_alone_have_no_prices():
    closes = realism.MinuteCloses()
    for second in range(0, 300, 30):
        closes.add(second, 1.0)
    (stretch,) = closes.stretches()
    assert stretch.binance is None and stretch.upbit is None and len(stretch) == 5


def test_each_statistic_needs_what_its_requirement_says():
    rng = np.random.default_rng(5)

    def stretch(n: int) -> realism.Stretch:
        return realism.Stretch(
            rng.normal(0, 5, n).cumsum(),
            60_000 * np.exp(rng.normal(0, 7e-4, n).cumsum()),
            8e7 * np.exp(rng.normal(0, 7e-4, n).cumsum()),
        )

    for h in realism.HORIZONS_MIN:
        key = f"premium_rms_change_{h}m_bps"
        words = realism.requirement(key)
        span = int(words.split("at least ")[1].split()[0])
        assert key in realism.measure([stretch(max(span, 2))])
        assert key not in realism.measure([stretch(span - 1)] * 4)  # many short stretches do not make one long
    others = [s.key for s in realism.STATISTICS if not s.key.startswith("premium_rms_change")]
    needed = {realism.requirement(k).split("about ")[1].split(" minutes")[0] for k in others}
    (minutes,) = needed
    enough = realism.measure([stretch(int(minutes) + 2)])  # "about": 30 changes, or 30 pairs of them
    short = realism.measure([stretch(int(minutes) - 1)])
    assert all(k in enough for k in others) and not any(k in short for k in others)
    no_prices = realism.measure([realism.Stretch(stretch(60).premium_bps)])
    for k in others:
        assert (k in no_prices) == ("closes" not in realism.requirement(k)), k
