"""Many pairs (issue 26): views keyed by pair, books routed to their pair, the FX book reaching every pair, only
the changed pairs published, and the aggregator sending each changed complete view (one pair: as before)."""

import pytest
import trio

from actors.aggregator import Views, run_aggregator
from actors.core.book import BookView
from actors.core.market import BTC_PAIR, Markets, MarketState, MarketView
from actors.core.pairs import Pair

FX = 1400.0
PAIRS = (Pair.of("BTC"), Pair.of("ETH"), Pair.of("XRP"))


def krw_book(pair: Pair, usdt_mid: float, premium: float, t: float) -> BookView:
    mid = usdt_mid * FX * (1 + premium / 1e4)
    return BookView("upbit", pair.upbit_code, ((mid * 0.9999, 1.0),), ((mid * 1.0001, 1.0),), t)


def usdt_book(pair: Pair, usdt_mid: float, t: float) -> BookView:
    return BookView("binance", pair.binance_symbol, ((usdt_mid * 0.9999, 1.0),), ((usdt_mid * 1.0001, 1.0),), t)


def fx_book(t: float, rate: float = FX) -> BookView:
    return BookView("upbit", "KRW-USDT", ((rate - 0.5, 1e6),), ((rate + 0.5, 1e6),), t)


def filled(markets: Markets, t: float = 1.0) -> Markets:
    for i, pair in enumerate(markets.pairs):
        markets.update(krw_book(pair, 10.0 ** (i + 1), 10.0 * (i + 1), t))
        markets.update(usdt_book(pair, 10.0 ** (i + 1), t))
    return markets


def test_a_one_pair_state_names_its_pair_from_its_codes_and_its_coin_btc():
    """Today's one-pair session calls its coin BTC whatever its codes (its portfolio does): its views' pair keeps
    the codes and BTC, so its balances, ledger and files are as before; a pair given is kept."""
    state = MarketState(("upbit", "KRW-WAVES"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))
    assert state.pair == Pair("BTC", "KRW-WAVES", "BTCUSDT")
    assert state.view(0.0).pair == state.pair
    eth = MarketState(("upbit", "KRW-ETH"), ("binance", "ETHUSDT"), ("upbit", "KRW-USDT"), pair=Pair.of("ETH"))
    assert eth.view(0.0).pair.base == "ETH"
    assert MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), None, 1400.0).view(0.0).pair == BTC_PAIR
    assert MarketView(0.0, None, None, None, None).pair == BTC_PAIR  # a view built without a pair: BTC's


def test_books_reach_their_pair_and_the_fx_book_every_pair():
    markets = Markets.of(PAIRS)
    filled(markets)
    assert markets.publish(1.0) and all(not v.complete for v in markets.views())  # no FX yet
    markets.update(fx_book(1.1))
    views = markets.publish(1.2)
    assert tuple(v.pair for v in views) == PAIRS  # every pair, in the pairs' order
    for i, view in enumerate(views):
        assert view.krw_leg is not None and view.krw_leg.symbol == PAIRS[i].upbit_code
        assert view.usdt_leg is not None and view.usdt_leg.symbol == PAIRS[i].binance_symbol
        assert view.premium_bps == pytest.approx(10.0 * (i + 1), rel=1e-6)
        assert view.fx is not None and view.fx.observed_at == 1.1 and view.fx.krw_per_usdt == FX  # its FX basis


def test_only_pairs_whose_inputs_changed_are_published():
    markets = filled(Markets.of(PAIRS))
    markets.update(fx_book(1.0))
    markets.publish(1.0)
    assert markets.publish(1.1) == ()  # nothing changed
    markets.update(usdt_book(PAIRS[1], 101.0, 1.2))
    markets.update(BookView("binance", "DOGEUSDT", ((1.0, 1.0),), ((1.1, 1.0),), 1.2))  # no pair reads it
    (view,) = markets.publish(1.3)
    assert view.pair == PAIRS[1] and view.usdt_leg is not None and view.usdt_leg.received_at == 1.2
    assert markets.state(PAIRS[1]).published is view
    markets.update(krw_book(PAIRS[2], 1000.0, 5.0, 1.4))
    markets.update(krw_book(PAIRS[0], 10.0, 5.0, 1.4))
    assert tuple(v.pair for v in markets.publish(1.5)) == (PAIRS[0], PAIRS[2])
    markets.update(fx_book(1.6, FX + 10))
    views = markets.publish(1.7)
    assert len(views) == 3 and all(v.fx is not None and v.fx.krw_per_usdt == FX + 10 for v in views)


def test_a_pair_given_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        Markets.of((PAIRS[0], PAIRS[0]))


async def _aggregate(state: MarketState | Markets, books: list[list[BookView]]) -> list[Views]:
    books_send, books_recv = trio.open_memory_channel[BookView](64)
    views_send, views_recv = trio.open_memory_channel[Views](64)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_aggregator, books_recv, views_send, state, 0.05)
            for batch in books:
                for book in batch:
                    await books_send.send(book)
                await trio.sleep(0.1)
            await books_send.aclose()
    views_send.close()
    return [v async for v in views_recv]


async def test_the_aggregator_sends_each_changed_complete_view(autojump_clock):
    markets = Markets.of(PAIRS)
    first = [b for p in PAIRS for b in (krw_book(p, 100.0, 10.0, 0.0), usdt_book(p, 100.0, 0.0))] + [fx_book(0.0)]
    batches = await _aggregate(markets, [first, [usdt_book(PAIRS[2], 99.0, 0.1)], [fx_book(0.2, FX + 1)]])
    assert all(isinstance(batch, tuple) for batch in batches)  # a market's views go as one batch a window
    assert [[v.pair for v in batch] for batch in batches] == [[*PAIRS], [PAIRS[2]], [*PAIRS]]  # type: ignore[union-attr]
    assert all(v.complete for batch in batches for v in batch)  # type: ignore[union-attr]


async def test_the_aggregator_with_one_pair_sends_one_view_per_window(autojump_clock):
    state = MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))
    pair = BTC_PAIR
    views = await _aggregate(
        state, [[krw_book(pair, 100.0, 10.0, 0.0), usdt_book(pair, 100.0, 0.0)], [fx_book(0.1)], [fx_book(0.2)]]
    )
    assert len(views) == 2 and all(v.pair == pair for v in views)  # the first window had no FX: not sent


def test_an_fx_book_whose_rate_did_not_move_changes_no_pair():
    """Ten FX books a second, most of them with the same mid: none of them makes every pair decide again; a move
    of the rate does, and the next view of a pair carries the latest FX book either way."""
    markets = filled(Markets.of(PAIRS))
    markets.update(fx_book(1.0))
    assert [v.pair for v in markets.publish(1.0)] == list(PAIRS)
    markets.update(fx_book(2.0))  # same rate, sizes or time only
    assert markets.publish(2.0) == ()
    markets.update(usdt_book(PAIRS[1], 100.0, 2.5))
    (view,) = markets.publish(2.5)
    assert view.pair == PAIRS[1] and view.fx is not None and view.fx.observed_at == 2.0
    markets.update(fx_book(3.0, FX + 1))
    assert [v.pair for v in markets.publish(3.0)] == list(PAIRS)
