import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.calibration import Calibration, SideStats, ZoneStats
from actors.core.fills import BUY, SELL, CalibratedFillModel, Fees, LiquidityMemory, SimpleFillModel, limit_price, walk
from actors.core.vocabulary import Zone

ASKS = ((100.0, 1.0), (100.5, 2.0), (101.0, 4.0), (103.0, 8.0))


def test_buy_walks_the_book_and_reports_visible_depth_within_the_limit():
    fill = walk(ASKS, BUY, 2.5, limit=101.0)
    assert fill.filled_qty == 2.5 and fill.levels_used == 2
    assert fill.available_volume == 7.0  # 1 + 2 + 4 at or below 101
    assert fill.avg_price == pytest.approx((100 * 1 + 100.5 * 1.5) / 2.5)
    assert fill.slippage_bps == pytest.approx((fill.avg_price - 100) / 100 * 1e4)


def test_partial_fill_is_capped_at_the_depth_within_the_limit():
    fill = walk(ASKS, BUY, 20.0, limit=100.5)
    assert fill.filled_qty == 3.0 and fill.fill_ratio == pytest.approx(0.15)


def test_sell_side_and_unfillable_limit():
    bids = ((99.0, 1.0), (98.0, 1.0))
    fill = walk(bids, SELL, 1.5, limit=98.0)
    assert fill.filled_qty == 1.5 and fill.avg_price == pytest.approx((99 + 0.5 * 98) / 1.5)
    none = walk(bids, SELL, 1.0, limit=99.5)
    assert none.filled_qty == 0 and none.avg_price is None and none.available_volume == 0


def test_simple_model_fills_what_the_depth_allows():
    fill = SimpleFillModel().fill(ASKS, BUY, 1.0, limit_price(100.0, BUY, 50), Zone(10, 12))
    assert fill.limit_price == pytest.approx(100.5)
    assert fill.available_volume == 3.0 and fill.filled_qty == 1.0


def test_liquidity_memory_hides_what_we_took_until_the_level_changes():
    memory = LiquidityMemory()
    fill = walk(ASKS, BUY, 2.0, limit=101.0)
    memory.record("binance", BUY, ASKS, fill)
    after = memory.effective("binance", BUY, ASKS)
    assert after == ((100.5, 1.0), (101.0, 4.0), (103.0, 8.0))  # 1.0 at 100 and 1.0 at 100.5 taken
    assert memory.effective("binance", SELL, ASKS) == ASKS  # the other side is untouched
    refreshed = ((100.0, 1.5),) + ASKS[1:]  # the book now shows a new size at 100
    assert memory.effective("binance", BUY, refreshed)[0] == (100.0, 1.5)
    gone = ASKS[1:]  # 100 left the book: forgotten, even if it comes back with the old size
    memory.effective("binance", BUY, gone)
    assert memory.effective("binance", BUY, ASKS)[0] == (100.0, 1.0)
    assert len(memory) == 1  # only 100.5 (size unchanged) is still remembered
    memory.effective("binance", BUY, ((120.0, 1.0),))  # the book moved away: nothing is kept out of view
    assert len(memory) == 0


def test_fees_are_in_the_currency_each_venue_charges():
    fees = Fees(5.0, 10.0)
    assert fees.charge("upbit", BUY, 0.5, 80_000_000.0) == pytest.approx((20_000.0, "KRW"))
    assert fees.charge("upbit", SELL, 0.5, 80_000_000.0) == pytest.approx((20_000.0, "KRW"))
    assert fees.charge("binance", BUY, 0.5, 60_000.0) == pytest.approx((0.0005, "BTC"))
    assert fees.charge("binance", SELL, 0.5, 60_000.0) == pytest.approx((30.0, "USDT"))


def _calibration(buy=0.25, sell=1.0, var=0.0):
    stats = lambda m: SideStats(m, 100, var, (m - 0.01, m + 0.01), "test")  # noqa: E731
    return Calibration(
        "t", (ZoneStats(10.0, 12.0, {BUY: stats(buy), SELL: stats(sell)}),), {BUY: stats(0.5), SELL: stats(0.5)}
    )


def test_calibrated_model_deterministic_and_capped_by_depth():
    model = CalibratedFillModel(_calibration())
    fill = model.fill(ASKS, BUY, 2.0, 103.0, Zone(10.0, 12.0))
    assert fill.order_qty == 2.0 and fill.filled_qty == pytest.approx(0.5) and fill.fill_ratio == pytest.approx(0.25)
    assert model.fill(ASKS, BUY, 2.0, 103.0, Zone(99.0, 1.0)).fill_ratio == pytest.approx(0.5)  # fallback zone
    capped = CalibratedFillModel(_calibration(buy=1.0)).fill(ASKS, BUY, 5.0, 100.5, Zone(10.0, 12.0))
    assert capped.filled_qty == 3.0 and capped.available_volume == 3.0


def test_calibrated_model_stochastic_samples_the_zone_beta():
    model = CalibratedFillModel(_calibration(buy=0.3, var=0.01), stochastic=True, rng=random.Random(5))
    ratios = [model.ratio(BUY, Zone(10.0, 12.0)) for _ in range(4000)]
    assert statistics.mean(ratios) == pytest.approx(0.3, abs=0.01)
    assert statistics.pvariance(ratios) == pytest.approx(0.01, rel=0.1)
    again = CalibratedFillModel(_calibration(buy=0.3, var=0.01), stochastic=True, rng=random.Random(5))
    assert [again.ratio(BUY, Zone(10.0, 12.0)) for _ in range(4000)] == ratios  # seeded


@given(
    st.lists(st.tuples(st.integers(1, 50), st.floats(0.001, 10)), min_size=1, max_size=20),
    st.floats(0.001, 50),
    st.floats(0, 500),
    st.sampled_from([BUY, SELL]),
)
def test_a_fill_never_exceeds_the_order_or_the_visible_depth(raw, qty, slip_bps, side):
    ticks = sorted({t for t, _ in raw}, reverse=(side == SELL))
    size = dict(raw)
    levels = tuple((100 + t * 0.5, size[t]) for t in ticks)
    fill = walk(levels, side, qty, limit_price(levels[0][0], side, slip_bps))
    assert 0 < fill.filled_qty <= qty + 1e-12
    assert fill.filled_qty <= fill.available_volume + 1e-9
    assert fill.available_volume <= sum(s for _, s in levels) + 1e-9
    assert fill.slippage_bps >= -1e-9


@given(
    st.lists(st.tuples(st.integers(1, 30), st.floats(0.001, 5)), min_size=1, max_size=15),
    st.lists(st.floats(0.01, 3), min_size=1, max_size=6),
    st.floats(0, 1),
    st.sampled_from([BUY, SELL]),
)
def test_calibrated_fills_with_liquidity_memory_never_exceed_the_visible_depth(raw, orders, ratio, side):
    ticks = sorted({t for t, _ in raw}, reverse=(side == SELL))
    size = dict(raw)
    shown = tuple((100 + t * 0.5, size[t]) for t in ticks)
    memory = LiquidityMemory()
    model = CalibratedFillModel(_calibration(buy=ratio, sell=ratio))
    taken = 0.0
    for qty in orders:
        levels = memory.effective("v", side, shown)
        if not levels:
            break
        fill = model.fill(levels, side, qty, limit_price(shown[0][0], side, 1000), Zone(10.0, 12.0))
        memory.record("v", side, shown, fill)
        assert fill.filled_qty <= fill.available_volume + 1e-9
        assert fill.filled_qty <= qty * ratio + 1e-9
        taken += fill.filled_qty
    assert taken <= sum(s for _, s in shown) + 1e-9  # the same book never gives more than it shows
