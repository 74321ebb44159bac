"""The universe of pairs from Upbit's and Binance's listings (actors/core/pairs.py, issue 26): decoding both
listings (bytes in, typed values out, a malformed listing named by its field) and the intersection."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.pairs import (
    STABLECOINS,
    BinanceSymbol,
    DropReason,
    ListingError,
    Pair,
    PairRules,
    UniverseError,
    UpbitMarket,
    decode_binance_symbols,
    decode_upbit_markets,
    universe,
)

BTC_FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
    {"filterType": "ICEBERG_PARTS", "limit": 10},
    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.0", "stepSize": "0.00000000"},
    {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000},
    {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "askMultiplierDown": "0.2"},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True, "maxNotional": "9000000.0"},
    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
]


def _symbol(base: str, quote: str = "USDT", status: str = "TRADING", **extra: object) -> dict[str, object]:
    return {
        "symbol": base + quote,
        "status": status,
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004"]],
        "filters": BTC_FILTERS,
        **extra,
    }


def _exchange_info(*symbols: dict[str, object]) -> bytes:
    return json.dumps({"timezone": "UTC", "serverTime": 1, "rateLimits": [], "symbols": list(symbols)}).encode()


def _markets(*codes: str) -> bytes:
    return json.dumps([{"market": c, "korean_name": "코인", "english_name": c.split("-")[1]} for c in codes]).encode()


# -- decoding -------------------------------------------------------------------------------------------------


def test_upbit_listing_decodes_every_market_in_its_order_with_its_warning():
    body = json.dumps(
        [
            {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin", "market_warning": "NONE"},
            {"market": "BTC-ETH", "korean_name": "이더리움", "english_name": "Ethereum"},
            {"market": "KRW-XRP", "korean_name": "리플", "english_name": "XRP", "market_warning": "CAUTION"},
            {"market": "KRW-DOGE", "english_name": "Dogecoin", "market_event": {"warning": True, "caution": {}}},
        ]
    ).encode()
    markets = decode_upbit_markets(body)
    assert [m.code for m in markets] == ["KRW-BTC", "BTC-ETH", "KRW-XRP", "KRW-DOGE"]
    assert [m.warning for m in markets] == [False, False, True, True]
    assert markets[0] == UpbitMarket("KRW-BTC", "비트코인", "Bitcoin", False)
    assert (markets[1].quote, markets[1].base) == ("BTC", "ETH")


def test_binance_listing_keeps_the_rules_of_each_symbol_and_ignores_other_filters():
    old = _symbol("ETH", filters=[{"filterType": "MIN_NOTIONAL", "minNotional": "10.0"}], isSpotTradingAllowed=None)
    del old["isSpotTradingAllowed"]  # older answers: spot read from permissions / permissionSets
    symbols = decode_binance_symbols(_exchange_info(_symbol("BTC"), old, _symbol("BNB", quote="BTC")))
    assert [s.symbol for s in symbols] == ["BTCUSDT", "ETHUSDT", "BNBBTC"]
    assert symbols[0] == BinanceSymbol("BTCUSDT", "TRADING", "BTC", "USDT", True, PairRules(0.01, 1e-5, 1e-5, 5.0))
    assert symbols[1].rules == PairRules(0.0, 0.0, 0.0, 10.0) and symbols[1].spot


@pytest.mark.parametrize(
    "flag, permissions, permission_sets, spot",
    [
        (True, [], [], True),
        (False, ["SPOT"], [["SPOT"]], False),  # the flag, when given, decides
        (None, ["SPOT", "MARGIN"], [], True),
        (None, [], [["MARGIN"], ["SPOT", "TRD_GRP_002"]], True),
        (None, ["MARGIN"], [["MARGIN"]], False),
    ],
)
def test_spot_trading_allowed(flag, permissions, permission_sets, spot):
    raw = _symbol("SOL", isSpotTradingAllowed=flag, permissions=permissions, permissionSets=permission_sets)
    if flag is None:
        del raw["isSpotTradingAllowed"]
    assert decode_binance_symbols(_exchange_info(raw))[0].spot is spot


def test_a_symbol_not_in_upper_case_ascii_is_skipped():
    symbols = decode_binance_symbols(_exchange_info(_symbol("币安人生"), _symbol("btc"), _symbol("ETH")))
    assert [s.symbol for s in symbols] == ["ETHUSDT"]


UPBIT_BAD = [
    (b"", "not JSON"),
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b'{"error": {"name": "too_many_requests"}}', "Expected `array`, got `object`"),
    (b'[{"korean_name": "x"}]', "Object missing required field `market` - at `$[0]`"),
    (b'[{"market": 7}]', "Expected `str`, got `int` - at `$[0].market`"),
    (b'[{"market": "KRW-BTC", "market_event": {"warning": "yes"}}]', "at `$[0].market_event.warning`"),
    (b'[{"market": "KRW-BTC"}, {"market": "KRW-BTC"}]', "market 'KRW-BTC' listed twice - at `$[1].market`"),
    (b"[" * 100_000, "Upbit GET /v1/market/all"),
    (b'[{"market": "KRW-\xff"}]', "not JSON"),
]


@pytest.mark.parametrize("body, words", UPBIT_BAD)
def test_a_malformed_upbit_listing_is_named(body, words):
    with pytest.raises(ListingError) as err:
        decode_upbit_markets(body)
    assert str(err.value).startswith("Upbit GET /v1/market/all: ") and words in str(err.value)


def _with_filter(**fields: object) -> bytes:
    return _exchange_info(_symbol("BTC", filters=[{"filterType": "PRICE_FILTER", **fields}]))


BINANCE_BAD = [
    (b"[]", "Expected `object`, got `array`"),
    (b'{"code": -1003, "msg": "Too much request weight used"}', "Object missing required field `symbols`"),
    (
        _exchange_info({"symbol": "BTCUSDT", "status": "TRADING"}),
        "missing required field `baseAsset` - at `$.symbols[0]`",
    ),
    (_with_filter(tickSize="abc"), "at `$.symbols[0].filters[0].tickSize`"),
    (_with_filter(tickSize="-0.01"), "Expected `float` >= 0.0 - at `$.symbols[0].filters[0].tickSize`"),
    (_with_filter(tickSize="nan"), "at `$.symbols[0].filters[0].tickSize`"),
    (_with_filter(tickSize="1e999"), "at `$.symbols[0].filters[0].tickSize`"),
    (_exchange_info(_symbol("BTC", filters=[{"tickSize": "0.01"}])), "`filterType` - at `$.symbols[0].filters[0]`"),
    (_exchange_info(_symbol("BTC"), _symbol("BTC")), "symbol 'BTCUSDT' listed twice - at `$.symbols[1].symbol`"),
    (b'{"symbols": ' * 50_000, "Binance GET /api/v3/exchangeInfo"),
]


@pytest.mark.parametrize("body, words", BINANCE_BAD)
def test_a_malformed_binance_listing_is_named(body, words):
    with pytest.raises(ListingError) as err:
        decode_binance_symbols(body)
    assert str(err.value).startswith("Binance GET /api/v3/exchangeInfo: ") and words in str(err.value)


# -- the universe ---------------------------------------------------------------------------------------------


def _upbit(*bases: str, quote: str = "KRW") -> tuple[UpbitMarket, ...]:
    return tuple(UpbitMarket(f"{quote}-{b}") for b in bases)


def _binance(*bases: str, status: str = "TRADING", spot: bool = True, quote: str = "USDT") -> tuple[BinanceSymbol, ...]:
    return tuple(BinanceSymbol(b + quote, status, b, quote, spot, PairRules(0.01, 0.001, 0.001, 5.0)) for b in bases)


UPBIT = _upbit("XRP", "BTC", "USDT", "ETH", "USDC", "SHIB", "ONLYUP", "HALTED", "MARGINONLY") + _upbit(
    "SOL", quote="BTC"
)
BINANCE = (
    _binance("BTC", "ETH", "XRP", "USDC", "SHIB", "SOL", "ONLYBN")
    + _binance("HALTED", status="BREAK")
    + _binance("MARGINONLY", spot=False)
    + _binance("ADA", quote="BTC")
)


def test_all_is_the_intersection_sorted_by_name_with_each_drop_counted():
    u = universe(UPBIT, BINANCE)
    assert u.pairs == (Pair.of("BTC"), Pair.of("ETH"), Pair.of("SHIB"), Pair.of("XRP"))
    assert u.pairs[0] == Pair("BTC", "KRW-BTC", "BTCUSDT")
    assert u.drop_counts() == {
        DropReason.EXCLUDED: 2,  # USDT, USDC
        DropReason.NOT_ON_BINANCE: 1,  # ONLYUP (SOL is on Upbit's BTC market only: never a candidate)
        DropReason.NOT_TRADING: 1,
        DropReason.NO_SPOT: 1,
    }
    assert (u.upbit_krw_markets, u.binance_usdt_symbols) == (9, 9)
    assert u.rules_for(Pair.of("ETH")) == PairRules(0.01, 0.001, 0.001, 5.0) == u.rules_by_pair()[Pair.of("ETH")]
    assert list(u.rules_by_pair()) == list(u.pairs)
    with pytest.raises(KeyError):
        u.rules_for(Pair.of("ONLYUP"))
    assert u.describe().startswith("4 pairs (Upbit KRW markets 9, Binance USDT symbols 9); left out: excluded 2, ")
    assert u.describe().endswith("pairs: BTC ETH SHIB XRP")


def test_max_pairs_keeps_the_first_by_name():
    u = universe(UPBIT, BINANCE, max_pairs=2)
    assert [p.name for p in u.pairs] == ["BTC", "ETH"]
    assert [d.base for d in u.dropped if d.reason is DropReason.OVER_MAX_PAIRS] == ["SHIB", "XRP"]


def test_exclude_and_aliases():
    upbit = _upbit("BTC", "BTT", "ETH", "USDC")
    binance = _binance("BTC", "BTTC", "ETH", "USDC")
    u = universe(upbit, binance, exclude=("ETH",), aliases={"BTT": "BTTC"})
    assert u.pairs == (Pair.of("BTC"), Pair("BTT", "KRW-BTT", "BTTCUSDT"), Pair.of("USDC"))
    assert [(d.base, d.reason) for d in u.dropped] == [("ETH", DropReason.EXCLUDED)]
    # an alias onto an excluded Binance name excludes the coin too
    assert Pair.of("BTT", "BTTC") not in universe(upbit, binance, exclude=("BTTC",), aliases={"BTT": "BTTC"}).pairs


def test_coins_by_name_in_name_order():
    u = universe(UPBIT, BINANCE, wanted=("XRP", "BTC"))
    assert u.pairs == (Pair.of("BTC"), Pair.of("XRP")) and u.dropped == ()
    assert u.rules == (u.rules_for(Pair.of("BTC")), u.rules_for(Pair.of("XRP")))


@pytest.mark.parametrize(
    "wanted, words",
    [
        (("ONLYUP",), "ONLYUP: Binance lists no ONLYUPUSDT symbol"),
        (("ONLYBN",), "ONLYBN: Upbit lists no KRW-ONLYBN market"),
        (("SOL",), "SOL: Upbit lists no KRW-SOL market"),
        (("HALTED",), "HALTED: Binance lists HALTEDUSDT with status BREAK, not TRADING"),
        (("MARGINONLY",), "MARGINONLY: Binance does not allow spot trading on MARGINONLYUSDT"),
        (("USDC",), "USDC: asked for and excluded ([market] exclude)"),
        (("BTC", "BTC"), "BTC: asked for more than once"),
        (("BTC", "ETH", "XRP"), "3 coins asked for, at most 2 allowed ([market] max_pairs)"),
    ],
)
def test_a_coin_asked_for_that_cannot_be_traded_is_an_error_naming_it(wanted, words):
    with pytest.raises(UniverseError) as err:
        universe(UPBIT, BINANCE, wanted=wanted, max_pairs=2)
    assert words in str(err.value)


def test_every_coin_that_cannot_be_traded_is_named_at_once():
    with pytest.raises(UniverseError) as err:
        universe(UPBIT, BINANCE, wanted=("BTC", "ONLYUP", "NOPE"))
    assert "ONLYUP: Binance lists no" in str(err.value) and "NOPE: Upbit lists no KRW-NOPE" in str(err.value)


def test_an_alias_names_the_binance_symbol_it_looked_for():
    with pytest.raises(UniverseError, match=r"BTT: Binance lists no BTTCUSDT \(alias of BTT\) symbol"):
        universe(_upbit("BTT"), _binance("BTT"), wanted=("BTT",), aliases={"BTT": "BTTC"})


def test_two_coins_on_one_binance_symbol_is_an_error():
    with pytest.raises(UniverseError, match="BTC and WBTC on BTCUSDT"):
        universe(_upbit("BTC", "WBTC"), _binance("BTC", "WBTC"), aliases={"WBTC": "BTC"})


def test_the_default_exclusions_are_the_stablecoins():
    stable = universe(_upbit(*STABLECOINS, "BTC"), _binance(*STABLECOINS, "BTC"))
    assert stable.pairs == (Pair.of("BTC"),) and stable.drop_counts() == {DropReason.EXCLUDED: len(STABLECOINS)}


COINS = st.sampled_from(["BTC", "ETH", "XRP", "SOL", "ADA", "DOGE", "USDT", "USDC", "SHIB", "TRX", "LINK", "DOT"])


@given(
    upbit=st.lists(COINS, unique=True),
    binance=st.lists(st.tuples(COINS, st.sampled_from(["TRADING", "BREAK"]), st.booleans()), unique_by=lambda t: t[0]),
    exclude=st.lists(COINS, unique=True, max_size=3),
    max_pairs=st.integers(1, 12),
    seed=st.integers(0, 2**32),
)
def test_universe_properties(upbit, binance, exclude, max_pairs, seed):
    ups = _upbit(*upbit) + _upbit("ADA", quote="BTC")
    bns = tuple(BinanceSymbol(b + "USDT", status, b, "USDT", spot, PairRules()) for b, status, spot in binance)
    u = universe(ups, bns, exclude=tuple(exclude), max_pairs=max_pairs)
    tradable = {b for b, status, spot in binance if status == "TRADING" and spot}
    names = [p.name for p in u.pairs]
    assert names == sorted(names) and len(names) <= max_pairs
    assert set(names) <= set(upbit) & tradable and not set(names) & set(exclude)
    assert sorted(names + [d.base for d in u.dropped]) == sorted(upbit)  # every KRW coin: a pair or a drop
    assert sum(u.drop_counts().values()) == len(u.dropped)
    if len(set(upbit) & tradable - set(exclude)) <= max_pairs:
        assert set(names) == set(upbit) & tradable - set(exclude)
    rng = random.Random(seed)  # the venues' order does not matter
    assert (
        universe(
            tuple(rng.sample(ups, len(ups))),
            tuple(rng.sample(bns, len(bns))),
            exclude=tuple(exclude),
            max_pairs=max_pairs,
        )
        == u
    )
    if names:  # asking by name for what "all" gave gives the same pairs
        assert universe(ups, bns, wanted=tuple(names), exclude=tuple(exclude), max_pairs=max_pairs).pairs == u.pairs
