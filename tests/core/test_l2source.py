import statistics

import pytest

from actors.core.book import BookView
from actors.core.l2source import MockBook, leg_levels, remap
from actors.core.vocabulary import L2Source


def test_remap_keeps_relative_distance_and_size():
    src = ((100.0, 1.0), (101.0, 2.0))
    out = remap(src, 50.0)
    assert [p for p, _ in out] == pytest.approx([50.0, 50.5]) and [q for _, q in out] == [1.0, 2.0]


def test_leg_levels_by_source():
    krw = BookView("upbit", "KRW-BTC", ((99e6, 0.3),), ((100e6, 0.4), (100.1e6, 0.6)), 0.0)
    usdt = BookView("binance", "BTCUSDT", ((59_999.0, 2.0),), ((60_000.0, 3.0),), 0.0)
    books = {"upbit": krw, "binance": usdt}
    assert leg_levels(L2Source.MULTI, usdt, books, True, 0.0, None) == usdt.asks
    sized_by_upbit = leg_levels(L2Source.UPBIT, usdt, books, True, 0.0, None)
    assert [p for p, _ in sized_by_upbit] == pytest.approx([60_000.0, 60_060.0])
    assert [q for _, q in sized_by_upbit] == [0.4, 0.6]  # Upbit's sizes on Binance's prices
    assert leg_levels(L2Source.BINANCE, krw, books, False, 0.0, None) == ((99e6, 2.0),)


def test_mock_book_varies_in_time_and_is_seeded():
    a, b = MockBook(3), MockBook(3)
    depths = [sum(s for _, s in a.levels(100.0, True, t)) for t in range(0, 120, 3)]
    assert depths == [sum(s for _, s in b.levels(100.0, True, t)) for t in range(0, 120, 3)]
    assert statistics.pstdev(depths) / statistics.mean(depths) > 0.1
    asks, bids = a.levels(100.0, True, 0.0), a.levels(100.0, False, 0.0)
    assert asks[0][0] == bids[0][0] == 100.0 and asks[1][0] > 100.0 > bids[1][0]
