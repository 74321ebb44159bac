"""The embedded exchange: the pure market model, and both servers over the in-memory network."""

from __future__ import annotations

import statistics

import pytest
import trio

from actors.core.venues import binance, upbit
from actors.net.http import http_client
from actors.net.memory import memory_network
from actors.net.ws import WsClosed, open_ws
from actors.sim import market_file
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, SimMarket
from actors.sim.serve import serve_sim
from actors.sim.settings import SimConfig
from actors.sim.upbit_server import SubscribeError, java_double, parse_subscription


@pytest.mark.parametrize("model", ["default", "ou"])
def test_same_seed_same_market_and_books_behave(model):
    cfg = SimConfig(market_model=model)
    params = market_file.params_of(cfg)
    a, b = SimMarket(cfg, 3, 0, params), SimMarket(cfg, 3, 0, params)
    c = SimMarket(cfg, 4, 0, params)
    prev_final = a.update_id
    for _ in range(600):
        ra, rb, _ = a.step(), b.step(), c.step()
        assert ra == rb
        if ra.binance_diff is not None:
            assert ra.binance_diff.first_id == prev_final + 1  # chained, no gaps
            prev_final = ra.binance_diff.final_id
        for book in a.books.values():
            assert max(book.bids) < min(book.asks)
            assert all(s > 0 for s in list(book.bids.values()) + list(book.asks.values()))
    assert a.books[UPBIT_BTC].top(30) != c.books[UPBIT_BTC].top(30)


def test_the_ou_premium_deviates_by_tens_of_bps_and_depth_varies():
    market = SimMarket(SimConfig(market_model="ou"), 11, 0)
    premiums, depths = [], []
    for i in range(3000):  # 5 minutes
        market.step()
        premiums.append(market.premium_bps)
        if i % 10 == 0:
            depths.append(sum(s for _, s in market.books[BINANCE_BTC].top(20)[1]))
    assert max(premiums) - min(premiums) > 40
    assert statistics.pstdev(depths) / statistics.mean(depths) > 0.1


def test_the_fitted_premium_moves_a_few_bps_a_minute_and_depth_varies():
    """The real premium's 1-minute changes are about 6 bps (RMS), not the OU model's tens of bps: over five
    minutes the fitted model's premium moves as the real one does, and depth varies as before."""
    cfg = SimConfig()
    market = SimMarket(cfg, 11, 0, market_file.params_of(cfg))
    premiums, depths = [], []
    for i in range(3000):
        market.step()
        if i % 600 == 599:
            premiums.append(market.premium_bps)
        if i % 10 == 0:
            depths.append(sum(s for _, s in market.books[BINANCE_BTC].top(20)[1]))
    changes = [b - a for a, b in zip(premiums, premiums[1:])]
    assert 0 < max(abs(c) for c in changes) < 40
    assert statistics.pstdev(depths) / statistics.mean(depths) > 0.1


def test_java_double_spelling():
    assert java_double(116539000.0) == "1.16539E8"
    assert java_double(0.0005) == "5.0E-4"
    assert java_double(127.0) == "127.0"
    assert java_double(1380.5) == "1380.5"


@pytest.mark.parametrize(
    "text, name",
    [
        ("hello", "WRONG_FORMAT"),
        ('{"ticket":"x"}', "WRONG_FORMAT"),
        ('[{"type":"orderbook","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":"x"}]', "NO_TYPE"),
        ('[{"ticket":"x"},{"type":"orderbook"}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"nope","codes":["a"]}]', "INVALID_PARAM"),
    ],
)
def test_upbit_rejects_bad_requests(text, name):
    with pytest.raises(SubscribeError) as info:
        parse_subscription(text)
    assert info.value.name == name


def test_upbit_subscription_rules():
    sub = parse_subscription(
        '[{"ticket":"x"},{"type":"orderbook","codes":["KRW-BTC.5","krw-usdt","KRW-NOPE",'
        '"KRW-USDT.20"],"isOnlyRealtime":true},{"format":"SIMPLE"}]'
    )
    assert sub.units == {"KRW-BTC": 5, "KRW-USDT": 30} and sub.only_realtime and sub.fmt == "SIMPLE"


async def _sim(nursery):
    memory_network()
    return await nursery.start(serve_sim, SimConfig(upbit_idle_timeout_s=60), 5)


async def test_upbit_server_sends_binary_snapshot_then_realtime_books(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints = await _sim(nursery)
        async with open_ws(endpoints.upbit_url) as conn:
            await conn.send(upbit.subscribe_request("t", ("KRW-BTC.5", "KRW-USDT")))
            seen = {}
            while len(seen) < 4:
                frame = await conn.receive()
                assert isinstance(frame, bytes)  # Upbit sends BINARY frames
                (event,) = upbit.decode(frame)
                seen.setdefault((event.code, event.snapshot), event)
            assert seen[("KRW-BTC", True)].asks and len(seen[("KRW-BTC", True)].asks) == 5
            assert len(seen[("KRW-USDT", False)].bids) == 30
            assert b"E8" in frame or event.code == "KRW-USDT"
        nursery.cancel_scope.cancel()


async def test_upbit_error_frame_then_normal_close(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints = await _sim(nursery)
        async with open_ws(endpoints.upbit_url) as conn:
            await conn.send('[{"ticket":"x"},{"type":"nope","codes":["KRW-BTC"]}]')
            (event,) = upbit.decode(await conn.receive())
            assert isinstance(event, upbit.ErrorFrame) and event.name == "INVALID_PARAM"
            with pytest.raises(WsClosed) as info:
                await conn.receive()
            assert info.value.code == 1000
        nursery.cancel_scope.cancel()


async def test_upbit_text_ping_starts_status_frames_that_keep_the_socket_open(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints = await _sim(nursery)
        async with open_ws(endpoints.upbit_url) as conn:
            await conn.send("PING")
            t0 = trio.current_time()
            statuses = []
            with trio.move_on_after(125):  # past two idle limits: the UP frames are traffic (wire: open at 115 s)
                while True:
                    (event,) = upbit.decode(await conn.receive())
                    statuses.append(trio.current_time() - t0)
            assert statuses == pytest.approx([10.0 * i for i in range(13)])  # {"status":"UP"} at 0, 10, ..., 120 s
        nursery.cancel_scope.cancel()


async def test_binance_combined_stream_control_messages_and_rest(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints = await _sim(nursery)
        url = endpoints.binance_ws_url + binance.combined_path(("btcusdt@depth@100ms",))
        async with open_ws(url) as conn, http_client(endpoints.binance_rest_url, 5) as http:
            diffs = []
            while len(diffs) < 20:
                diffs.append(binance.decode(await conn.receive()))
            assert all(d.first_id == p.final_id + 1 for p, d in zip(diffs, diffs[1:]))
            await conn.send('{"method":"SUBSCRIBE","params":["nopeusdt@depth"],"id":7}')
            await conn.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
            await conn.send('{"method":"FOO","id":9}')
            replies = []
            while len(replies) < 3:
                event = binance.decode(await conn.receive())
                if not isinstance(event, binance.DepthDiff):
                    replies.append(event)
            assert replies[0] == binance.ControlReply(7, None)
            assert replies[1].result == ["btcusdt@depth@100ms", "nopeusdt@depth"]
            assert isinstance(replies[2], binance.ErrorReply) and replies[2].code == 2
            response = await http.get(binance.depth_query("BTCUSDT", 1000))
            assert response.status_code == 200 and response.headers["X-MBX-USED-WEIGHT-1M"] == "50"
            snapshot = binance.decode_snapshot(response.content)
            assert len(snapshot.bids) == len(snapshot.asks) == 1000  # as asked (tests/actors/test_sim_protocol.py)
            bad = await http.get("/api/v3/depth?symbol=NOPE")
            assert bad.status_code == 400 and bad.json() == {"code": -1121, "msg": "Invalid symbol."}
            await conn.send("not json")
            with pytest.raises(WsClosed) as info:
                while True:
                    await conn.receive()
            assert (info.value.code, info.value.reason) == (1008, "Invalid request")
        nursery.cancel_scope.cancel()
