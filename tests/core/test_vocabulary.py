"""The domain's words: each venue's quote currency, the L2 sources' venues, and their wire spellings."""

import json

from actors.core.fills import Fees
from actors.core.vocabulary import Currency, L2Source, Side, Sizing, Venue


def test_each_venue_quotes_in_its_own_currency():
    assert Venue.UPBIT.quote is Currency.KRW and Venue.BINANCE.quote is Currency.USDT
    assert Venue("upbit").quote == "KRW"  # a venue read from a file


def test_fees_are_charged_in_the_venue_quote_but_a_binance_buy():
    fees = Fees(5.0, 10.0)
    assert fees.charge(Venue.UPBIT, Side.BUY, 1.0, 1e8)[1] is Currency.KRW
    assert fees.charge(Venue.BINANCE, Side.SELL, 1.0, 6e4)[1] is Currency.USDT
    assert fees.charge(Venue.BINANCE, Side.BUY, 1.0, 6e4)[1] is Currency.BTC


def test_an_l2_source_names_the_venue_whose_depth_both_legs_take():
    assert L2Source.UPBIT.venue is Venue.UPBIT and L2Source.BINANCE.venue is Venue.BINANCE
    assert L2Source.MULTI.venue is None and L2Source.MOCK.venue is None


def test_words_encode_as_their_wire_spelling():
    words = {"l2": L2Source.MOCK, "sizing": Sizing.DEPTH, "ccy": Currency.USDT}
    assert json.dumps(words) == '{"l2": "mock", "sizing": "depth", "ccy": "USDT"}'
    assert [str(s) for s in Sizing] == ["fixed", "depth"]
    assert [str(s) for s in L2Source] == ["multi", "upbit", "binance", "mock"]
