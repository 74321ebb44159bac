"""The many-coin simulated market ([sim] coins = N) over the servers, on the in-memory network in virtual time:
the listing endpoints, depth snapshots and diffs of coins on one combined connection, one Upbit subscription for
many codes, and Binance's 1024 streams per connection."""

from __future__ import annotations

import pytest
import trio

from actors.core.venues import binance, upbit
from actors.net.http import http_client
from actors.net.memory import memory_network
from actors.net.ws import WsClosed, open_ws
from actors.sim.coin_market import CoinsMarket
from actors.sim.exchange import SimEndpoints, SimHub
from actors.sim.serve import serve_hub, simulated_hub
from actors.sim.settings import SimConfig


async def _sim(nursery: trio.Nursery, coins: int = 12, **cfg: object) -> tuple[SimEndpoints, SimHub]:
    memory_network()
    hub = simulated_hub(SimConfig(coins=coins, **cfg), 5)  # type: ignore[arg-type]
    return await nursery.start(serve_hub, hub), hub


async def test_the_listings_over_http_with_their_weight_and_rate(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints, _ = await _sim(nursery)
        async with http_client(endpoints.upbit_rest_url, 5) as up, http_client(endpoints.binance_rest_url, 5) as bn:
            markets = await up.get("/v1/market/all?isDetails=true")
            assert markets.status_code == 200 and markets.headers["Remaining-Req"].endswith("sec=9")
            rows = markets.json()
            assert {"market": "KRW-ETH", "korean_name": "이더리움", "english_name": "ETH"}.items() <= rows[2].items()
            assert rows[2]["market_event"]["warning"] is False and len(rows) == 2 + 12 + 2 + 3 + 2 + 3
            codes = [(await up.get("/v1/market/all")).status_code for _ in range(10)]
            assert codes == [200] * 9 + [429]  # the market group: 10 a second per IP
            await trio.sleep(1.0)
            assert (await up.get("/v1/market/all")).status_code == 200
            info = await bn.get("/api/v3/exchangeInfo")
            assert info.status_code == 200 and info.headers["X-MBX-USED-WEIGHT-1M"] == "20"
            symbols = {s["symbol"]: s for s in info.json()["symbols"]}
            assert symbols["BTTCUSDT"]["baseAsset"] == "BTTC" and symbols["WAVESUSDT"]["status"] == "BREAK"
            assert info.json()["rateLimits"][0]["limit"] == 6_000
            depth = await bn.get(binance.depth_query("SOLUSDT", 500))
            assert depth.status_code == 200 and depth.headers["X-MBX-USED-WEIGHT-1M"] == "45"  # 20 + 25
            snapshot = binance.decode_snapshot(depth.content)
            assert len(snapshot.asks) == 500 and snapshot.bids[0][0] < snapshot.asks[0][0]
            for listed_only in ("WAVESUSDT", "ETHBTC"):  # listed, no book served: an empty one
                empty = await bn.get(binance.depth_query(listed_only, 100))
                assert empty.status_code == 200 and empty.json()["bids"] == empty.json()["asks"] == []
            for unknown in ("BTTUSDT", "BORAUSDT", "NOPE"):
                bad = await bn.get(binance.depth_query(unknown, 100))
                assert bad.status_code == 400 and bad.json()["code"] == -1121
        nursery.cancel_scope.cancel()


async def test_one_combined_connection_carries_many_coins_diffs_that_continue_their_snapshots(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints, hub = await _sim(nursery)
        market = hub.market
        assert isinstance(market, CoinsMarket)
        first = ("ethusdt@depth@100ms", "xrpusdt@depth@100ms", "dogeusdt@depth@100ms")
        url = endpoints.binance_ws_url + binance.combined_path(first)
        async with open_ws(url) as conn, http_client(endpoints.binance_rest_url, 5) as http:
            await conn.send('{"method":"SUBSCRIBE","params":["solusdt@depth@100ms","bttcusdt@depth@100ms"],"id":1}')
            books: dict[str, tuple[int, dict[float, float], dict[float, float]]] = {}
            chained, compared = dict.fromkeys(("ETHUSDT", "XRPUSDT", "DOGEUSDT", "SOLUSDT", "BTTCUSDT"), 0), 0
            with trio.fail_after(60):
                while min(chained.values()) < 5 or compared < 20:
                    event = binance.decode(await conn.receive())
                    if not isinstance(event, binance.DepthDiff):
                        assert event == binance.ControlReply(1, None)
                        continue
                    symbol = event.symbol
                    if symbol not in books:
                        snap = binance.decode_snapshot((await http.get(binance.depth_query(symbol, 1000))).content)
                        books[symbol] = (snap.last_update_id, dict(snap.bids), dict(snap.asks))
                        assert event.first_id <= snap.last_update_id + 1  # the snapshot is not ahead of the stream
                    last, bids, asks = books[symbol]
                    if event.final_id <= last:
                        continue
                    assert event.first_id == last + 1
                    for side, levels in ((bids, event.bids), (asks, event.asks)):
                        for price, size in levels:
                            if size == 0:
                                side.pop(price, None)
                            else:
                                side[price] = size
                    books[symbol] = (event.final_id, bids, asks)
                    chained[symbol] += 1
                    if market.coins.update_ids[symbol] == event.final_id:  # the server's book as of this diff
                        top_bids, top_asks = market.books[symbol].top(20)
                        assert sorted(bids.items(), reverse=True)[:20] == [(p, round(q, 8)) for p, q in top_bids]
                        assert sorted(asks.items())[:20] == [(p, round(q, 8)) for p, q in top_asks]
                        compared += 1
        nursery.cancel_scope.cancel()


async def test_one_upbit_subscription_carries_many_codes(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints, hub = await _sim(nursery, coins=30)
        codes = tuple(c for c in hub.market.upbit_codes)
        assert len(codes) == 2 + 30 + 2 + 3 + 2 and "KRW-BTT" in codes
        async with open_ws(endpoints.upbit_url) as conn:
            await conn.send(upbit.subscribe_request("t", tuple(f"{c}.5" for c in codes)))
            snapshots: dict[str, upbit.Orderbook] = {}
            realtime: set[str] = set()
            with trio.fail_after(60):
                while len(snapshots) < len(codes) or len(realtime) < 10:
                    (event,) = upbit.decode(await conn.receive())
                    assert isinstance(event, upbit.Orderbook) and len(event.asks) == 5
                    if event.snapshot:
                        snapshots[event.code] = event
                    else:
                        assert event.code in snapshots
                        realtime.add(event.code)
            assert snapshots["KRW-ETH"].bids[0][0] % 1000 == 0  # ETH's KRW tick
        nursery.cancel_scope.cancel()


def _subscribe(streams: tuple[str, ...], request_id: int) -> str:
    return '{"method":"SUBSCRIBE","params":[' + ",".join(f'"{n}"' for n in streams) + f'],"id":{request_id}}}'


async def test_binance_refuses_a_1025th_stream_on_a_connection(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints, _ = await _sim(nursery, coins=0)
        names = tuple(f"c{i}usdt@depth" for i in range(1025))
        async with open_ws(endpoints.binance_ws_url + binance.combined_path(names)) as conn:
            with pytest.raises(WsClosed) as info, trio.fail_after(5):
                await conn.receive()
            assert info.value.code == 1008 and "at most 1024" in (info.value.reason or "")
        async with open_ws(endpoints.binance_ws_url + binance.combined_path(names[:1000])) as conn:
            await conn.send(_subscribe(names[1000:], 1))  # 1025 in all: refused, none added
            await conn.send(_subscribe(names[1000:1024], 2))  # 1024: taken
            await conn.send('{"method":"LIST_SUBSCRIPTIONS","id":3}')
            replies: list[binance.Event] = []
            with trio.fail_after(5):
                while len(replies) < 3:
                    event = binance.decode(await conn.receive())
                    if isinstance(event, (binance.ControlReply, binance.ErrorReply)):
                        replies.append(event)
            assert isinstance(replies[0], binance.ErrorReply) and replies[0].code == 2 and "1024" in replies[0].msg
            assert replies[1] == binance.ControlReply(2, None)
            assert isinstance(replies[2], binance.ControlReply) and len(replies[2].result) == 1024
        nursery.cancel_scope.cancel()
