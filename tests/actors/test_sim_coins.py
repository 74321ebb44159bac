"""The many-coin simulated market ([sim] coins = N), pure: its listings, its coins' character, its premiums, and the
one-coin market left exactly as it was. The servers: tests/actors/test_sim_coins_servers.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from actors.core.pairs import Pair
from actors.sim import listings, market_file
from actors.sim.binance_server import rest_response
from actors.sim.coin_market import CoinMarket, CoinsMarket, simulated_market
from actors.sim.coins import STABLE_NAMES, binance_symbols, catalogue, upbit_markets, upbit_tick
from actors.sim.exchange import SimHub
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, UPBIT_USDT, BinanceDiff, SimMarket
from actors.sim.settings import SimConfig


def _market(coins: int, seed: int = 5, **cfg: object) -> SimMarket:
    config = SimConfig(coins=coins, **cfg)  # type: ignore[arg-type]
    return simulated_market(config, seed, 0, market_file.params_of(config))


def _universe(upbit: list[dict[str, str]], info: dict[str, object], aliases: dict[str, str]) -> set[Pair]:
    """What a client computes from the two listings (MULTIPAIR.md §1): Upbit's KRW markets, Binance's TRADING spot
    symbols quoted in USDT, stablecoins out, an alias mapped by hand."""
    krw = {m["market"].removeprefix("KRW-") for m in upbit if m["market"].startswith("KRW-")}
    symbols = info["symbols"]
    assert isinstance(symbols, list)
    usdt = {
        s["baseAsset"]
        for s in symbols
        if s["quoteAsset"] == "USDT" and s["status"] == "TRADING" and s["isSpotTradingAllowed"]
    }
    return {Pair.of(b, aliases.get(b)) for b in krw - STABLE_NAMES if aliases.get(b, b) in usdt}


def test_the_listings_hold_stablecoins_one_venue_coins_an_alias_and_symbols_a_client_must_leave_out():
    cat = catalogue(10)
    upbit = json.loads(listings.market_all(cat, ""))
    status, body = listings.exchange_info(cat, "BTCUSDT", "", 0, 6_000)
    info = json.loads(body)
    markets = {m["market"] for m in upbit}
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert status == 200 and {"KRW-BTC", "KRW-USDT", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE"} <= markets
    assert {"KRW-USDC", "KRW-USDE"} <= markets and {"USDCUSDT", "USDEUSDT"} <= set(symbols)  # stablecoins, both
    assert {"KRW-BORA", "KRW-MED", "KRW-MLK"} <= markets and not {"BORAUSDT", "MEDUSDT"} & set(symbols)
    assert {"BNBUSDT", "FDUSDUSDT"} <= set(symbols) and not {"KRW-BNB", "KRW-FDUSD"} & markets
    assert "KRW-BTT" in markets and "BTTCUSDT" in symbols and "BTTUSDT" not in symbols  # the alias
    assert symbols["WAVESUSDT"]["status"] == "BREAK" and "KRW-WAVES" in markets
    assert {s["quoteAsset"] for s in info["symbols"]} == {"USDT", "BTC", "FDUSD", "USDC"}
    assert {"BTC-ETH", "USDT-BTC"} <= markets  # Upbit's other quotes, listed too
    eth = symbols["ETHUSDT"]
    filters = {f["filterType"]: f for f in eth["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert "minNotional" in filters["NOTIONAL"] and eth["permissions"] == ["SPOT"]
    assert {m["english_name"] for m in upbit if m["market"] == "KRW-ETH"} == {"ETH"}
    universe = _universe(upbit, info, {"BTT": "BTTC"})
    coins = {c.base for c in cat.coins[:10]}
    assert universe == {Pair.of("BTC"), Pair.of("BTT", "BTTC"), *(Pair.of(b) for b in coins)}
    assert Pair.from_codes("KRW-BTT", "BTTCUSDT") in universe
    assert _universe(upbit, info, {}) == universe - {Pair.of("BTT", "BTTC")}  # without the alias, BTT drops out


def test_the_one_coin_market_lists_btc_alone_and_exchange_info_narrows_to_a_symbol():
    cat = catalogue(0)
    assert [m.market for m in upbit_markets(cat)] == ["KRW-BTC", "KRW-USDT"]
    assert [s.symbol for s in binance_symbols(cat, "BTCUSDT")] == ["BTCUSDT"]
    status, body = listings.exchange_info(catalogue(150), "BTCUSDT", "symbol=ETHUSDT", 0, 6_000)
    assert status == 200 and [s["symbol"] for s in json.loads(body)["symbols"]] == ["ETHUSDT"]
    status, body = listings.exchange_info(catalogue(150), "BTCUSDT", 'symbols=["XRPUSDT","S001USDT"]', 0, 6_000)
    assert [s["symbol"] for s in json.loads(body)["symbols"]] == ["XRPUSDT", "S001USDT"]
    assert listings.exchange_info(cat, "BTCUSDT", "symbol=NOPE", 0, 6_000) == (400, listings.INVALID_SYMBOL)


def test_each_coin_has_its_own_price_level_ticks_depth_and_activity():
    cat = catalogue(150)
    both = [c for c in cat.coins if c.on_upbit and c.on_binance and not c.stable]
    assert len(both) == 151  # 150 and the alias
    prices = [c.price_usdt for c in both]
    assert min(prices) <= 0.003 and max(prices) >= 20_000  # from about 0.001 to about 50,000 USDT
    assert len({c.level_usdt for c in both}) == len({c.vol_bps_per_sqrt_s for c in both}) == len(both)
    activity = [c.activity for c in both]
    assert max(activity) == 1.0 and min(activity) <= 0.1  # quiet coins change less often
    ticks = {s.symbol: s.tick_size for s in binance_symbols(cat)}
    assert (ticks["ETHUSDT"], ticks["XRPUSDT"], ticks["DOGEUSDT"], ticks["DOTUSDT"]) == (0.01, 1e-4, 1e-4, 1e-3)
    # Upbit's KRW tick depends on the price (docs.upbit.com, KRW market order price units)
    assert [upbit_tick(p) for p in (150_000_000, 1_500_000, 700_000, 200_000, 70_000, 20_000, 7_000, 2_000, 200)] == [
        1000,
        1000,
        500,
        100,
        50,
        10,
        5,
        1,
        1,
    ]
    assert (upbit_tick(50.0), upbit_tick(5.0), upbit_tick(0.5), upbit_tick(1_380.0, stable=True)) == (
        0.01,
        0.001,
        0.0001,
        0.5,
    )
    market = _market(150)
    assert (market.books["KRW-ETH"].spec.tick, market.books["KRW-XRP"].spec.tick) == (1000, 1)
    assert market.books["XRPUSDT"].spec.tick == 1e-4 and market.books["ETHUSDT"].spec.tick == 0.01


def test_coins_zero_is_the_one_coin_market_and_coins_leave_its_streams_alone():
    plain, many = _market(0), _market(20)
    assert set(plain.books) == {UPBIT_BTC, UPBIT_USDT, BINANCE_BTC} and type(plain) is SimMarket
    assert plain.upbit_codes == (UPBIT_BTC, UPBIT_USDT) and listings.catalogue_of(plain).coins == ()
    assert len(many.books) > 40 and many.upbit_codes[:2] == (UPBIT_BTC, UPBIT_USDT)
    for _ in range(300):
        a, b = plain.step(), many.step()
        assert a.binance_diffs == () and a.upbit_changed == tuple(c for c in b.upbit_changed if c in plain.books)
        assert (a.time_ms, a.binance_diff) == (b.time_ms, b.binance_diff)
        assert b.binance_diffs  # the coins moved too
    assert plain.premium_bps == many.premium_bps and plain.btc_usdt == many.btc_usdt
    for code in plain.books:
        assert plain.books[code].top(30) == many.books[code].top(30)


def test_a_coins_premium_is_the_shared_market_part_plus_its_own_part():
    """The processes alone (``advance``), over a long series: each coin's premium is the market's plus its own, the
    own parts are independent of each other, the market part makes the coins' premiums move together."""
    cat = catalogue(6)
    coins = CoinMarket(cat, 9, 1000, 1380.0)
    rng = np.random.default_rng(1)
    market, series, own = 30.0, [], []
    for _ in range(40_000):  # 11 hours of one-second steps
        market = 30.0 + (market - 30.0) * math.exp(-1 / 20) + 40.0 * math.sqrt(1 - math.exp(-2 / 20)) * rng.normal()
        coins.advance(0.0, 1380.0, market)
        series.append(market)
        own.append(coins.own_premium_bps.copy())
    weights = np.array([c.market_weight for c in cat.coins])
    own_parts = np.array(own)
    premium = own_parts + np.outer(series, weights)
    assert np.allclose(coins.premium_bps, premium[-1])  # what the market serves is the sum
    ordinary = list(range(6))  # ETH ... TRX
    corr_own = np.corrcoef(own_parts[:, ordinary].T)
    corr_all = np.corrcoef(premium[:, ordinary].T)
    off = ~np.eye(len(ordinary), dtype=bool)
    assert np.abs(corr_own[off]).max() < 0.25  # the per-coin parts differ
    assert corr_all[off].min() > 0.05 and corr_all[off].mean() > 0.2  # the market part is shared
    stds = own_parts[:, ordinary].std(axis=0)
    assert np.allclose(stds, [cat.coins[i].premium_std_bps for i in ordinary], rtol=0.35)
    assert len({round(float(s)) for s in stds}) > 3  # each its own std
    usdc = [c.base for c in cat.coins].index("USDC")
    assert np.corrcoef(premium[:, usdc], series)[0, 1] < 0.2  # a stablecoin carries no kimchi premium


def test_the_books_show_each_coins_premium_and_prices_move_with_btc():
    market = _market(3, seed=3)
    assert isinstance(market, CoinsMarket)
    usdt = market.books[UPBIT_USDT]
    fx = (usdt.top(1)[0][0][0] + usdt.top(1)[1][0][0]) / 2
    for i, coin in enumerate(market.coins.coins):
        if not (coin.on_upbit and coin.on_binance):
            continue
        (ub, ua), (bb, ba) = (market.books[coin.upbit_code].top(1), market.books[coin.binance_symbol].top(1))
        upbit_mid, binance_mid = (ub[0][0] + ua[0][0]) / 2, (bb[0][0] + ba[0][0]) / 2
        seen_bps = (upbit_mid / (binance_mid * fx) - 1) * 1e4
        slack = 1e4 * (2 * market.books[coin.upbit_code].spec.tick / upbit_mid + 2 * usdt.spec.tick / fx)
        slack += 1e4 * 2 * market.books[coin.binance_symbol].spec.tick / binance_mid
        assert seen_bps == pytest.approx(market.coins.premium_bps[i], abs=slack + 1.0), coin.base
    btc, eth = [], []
    for _ in range(2000):
        market.step()
        btc.append(math.log(market.btc_usdt))
        eth.append(math.log(market.coins.binance_mid[0]))
    r_btc, r_eth = np.diff(btc[::20]), np.diff(eth[::20])  # 2-second returns
    assert 0.3 < np.corrcoef(r_btc, r_eth)[0, 1] < 0.99  # partly the market factor, partly its own


def _apply(book: dict[str, dict[float, float]], bids: object, asks: object) -> None:
    for side, levels in (("bids", bids), ("asks", asks)):
        assert isinstance(levels, (list, tuple))
        for price, size in levels:
            if float(size) == 0:
                book[side].pop(float(price), None)
            else:
                book[side][float(price)] = round(float(size), 8)


def test_a_snapshot_and_the_diffs_after_it_keep_a_client_book_equal_to_the_servers():
    """The documented procedure, for three coins at once: buffer diffs, take a snapshot, drop diffs with
    u <= lastUpdateId, the first kept one spans lastUpdateId + 1, then every U = previous u + 1; each client book
    equals the server's top after every step."""
    hub = SimHub(SimConfig(coins=51), 7, 0)
    market = hub.market
    assert isinstance(market, SimMarket)
    symbols = ("ETHUSDT", "S001USDT", "BTTCUSDT")
    buffered: dict[str, list[BinanceDiff]] = {s: [] for s in symbols}
    books: dict[str, dict[str, dict[float, float]]] = {}
    last, applied = {}, dict.fromkeys(symbols, 0)
    for _ in range(3):
        for s, d in market.step().binance_diffs:
            buffered.get(s, []).append(d)
    for symbol in symbols:
        status, _, body = rest_response(hub, "BTCUSDT", f"/api/v3/depth?symbol={symbol}&limit=1000")
        snapshot = json.loads(body)
        assert status == 200 and len(snapshot["asks"]) == 1000 and len(snapshot["bids"]) > 500  # bids end at 0
        books[symbol] = {"bids": {}, "asks": {}}
        _apply(books[symbol], snapshot["bids"], snapshot["asks"])
        last[symbol] = snapshot["lastUpdateId"]
    for _ in range(300):
        for s, d in market.step().binance_diffs:
            buffered.get(s, []).append(d)
        for symbol in symbols:
            for diff in buffered[symbol]:
                if diff.final_id <= last[symbol]:
                    continue
                assert diff.first_id == last[symbol] + 1
                _apply(books[symbol], diff.bids, diff.asks)
                last[symbol], applied[symbol] = diff.final_id, applied[symbol] + 1
            buffered[symbol] = []
            bids, asks = market.books[symbol].top(50)  # as the wire spells sizes: 8 decimals
            assert sorted(books[symbol]["bids"].items(), reverse=True)[:50] == [(p, round(q, 8)) for p, q in bids]
            assert sorted(books[symbol]["asks"].items())[:50] == [(p, round(q, 8)) for p, q in asks]
    assert min(applied.values()) > 10
