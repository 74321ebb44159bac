import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.book import BookView
from actors.core.fills import BUY, SELL, SimpleFillModel, limit_price, walk

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


def test_model_uses_the_live_book():
    model = SimpleFillModel(max_slippage_bps=50)
    book = BookView("v", "s", ((99.0, 1.0),), ASKS, 0.0)
    fill = model.fill(book, BUY, 1.0)
    assert fill.limit_price == limit_price(100.0, BUY, 50) == pytest.approx(100.5)
    assert fill.available_volume == 3.0


@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0.001, 10)), min_size=1, max_size=20),
       st.floats(0.001, 50), st.floats(0, 500), st.sampled_from([BUY, SELL]))
def test_a_fill_never_exceeds_the_order_or_the_visible_depth(raw, qty, slip_bps, side):
    ticks = sorted({t for t, _ in raw}, reverse=(side == SELL))
    size = dict(raw)
    levels = tuple((100 + t * 0.5, size[t]) for t in ticks)
    fill = walk(levels, side, qty, limit_price(levels[0][0], side, slip_bps))
    assert 0 < fill.filled_qty <= qty + 1e-12
    assert fill.filled_qty <= fill.available_volume + 1e-9
    assert fill.available_volume <= sum(s for _, s in levels) + 1e-9
    assert fill.slippage_bps >= -1e-9
