"""The exchanges' limits: the simulator enforces them as the venues do, and our feeds stay within them
(docs/reliability.md, docs/simulator.md). Hostile first: a client that ignores Retry-After is banned; then
our Binance feed, resyncing every 300 ms for four minutes, never earns a 429. Virtual time, in-memory network
(one client address: "memory")."""

from __future__ import annotations

import functools
import json

import pytest
import trio
from loguru import logger

from actors.config import BinanceFeedConfig
from actors.core.kpi import FeedStats
from actors.core.vocabulary import RestartCause
from actors.feed import run_binance_feed
from actors.feed_snapshot import RestRefused
from actors.net.http import http_client, serve_http
from actors.net.memory import memory_network
from actors.net.rest_budget import RestBudget
from actors.net.ws import WsClosed, WsConnectError, open_ws, serve_ws
from actors.sim.limits import RateWindow, WeightLimiter
from actors.sim.serve import serve_hub, simulated_hub
from actors.sim.settings import FaultConfig, SimConfig

DEPTH_1000 = "/api/v3/depth?symbol=BTCUSDT&limit=1000"  # weight 50: 120 of them a minute


# -- the limiter itself ----------------------------------------------------------------------------


def test_the_weight_limiter_counts_per_client_and_per_clock_minute():
    limiter = WeightLimiter(100)
    assert limiter.check("a", 50, 10.0).status is None
    assert limiter.check("a", 50, 20.0).headers == {"X-MBX-USED-WEIGHT-1M": "100"}
    assert limiter.check("b", 50, 20.0).status is None  # another IP has its own minute
    refused = limiter.check("a", 5, 30.0)
    assert (refused.status, refused.headers) == (429, {"X-MBX-USED-WEIGHT-1M": "100", "Retry-After": "30"})
    assert limiter.check("a", 5, 60.0).headers == {"X-MBX-USED-WEIGHT-1M": "5"}  # the minute turned: waited


def test_a_rate_window_allows_n_events_in_any_second():
    window = RateWindow(5)
    assert [window.allow(t) for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)] == [True] * 5 + [False]
    assert window.allow(1.45) is True  # 0.0 .. 0.4 have left the second; 0.5 and 1.45 are in it
    assert all(RateWindow(0).allow(0.0) for _ in range(100))  # 0: not enforced


# -- Binance REST: 429, then 418 -------------------------------------------------------------------


async def test_a_client_that_ignores_retry_after_is_banned(autojump_clock):
    """120 snapshots of weight 50 fill the minute; the next gets 429 with the seconds to the next minute; asking
    again before them earns a 418 ban of 120 s, during which every request gets 418 with the time left; a second
    offence doubles the ban. Every answer carries the IP's weight this minute."""
    memory_network()
    hub = simulated_hub(SimConfig(), 3)
    answers: list[tuple[float, int, str, str | None]] = []
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        async with http_client(endpoints.binance_rest_url, 5) as http:

            async def get() -> int:
                r = await http.get(DEPTH_1000)
                answers.append(
                    (
                        trio.current_time(),
                        r.status_code,
                        r.headers["X-MBX-USED-WEIGHT-1M"],
                        r.headers.get("Retry-After"),
                    )
                )
                return r.status_code

            await trio.sleep(1.0)  # t = 1
            for _ in range(120):
                assert await get() == 200
                await trio.sleep(0.1)  # t = 13 after these
            assert await get() == 429
            assert answers[-1][1:] == (429, "6000", "47")  # the minute ends at 60
            assert json.loads((await http.get(DEPTH_1000)).content)["code"] == -1003  # asked again: banned
            answers.append((trio.current_time(), 418, "6000", None))
            for _ in range(3):
                await trio.sleep(30)
                assert await get() == 418
            assert [a[3] for a in answers[-3:]] == ["90", "60", "30"]  # the ban's time left
            await trio.sleep(30)  # t = 133: the ban is over, a new minute
            assert await get() == 200 and answers[-1][2] == "50"
            for _ in range(119):
                await get()
            assert await get() == 429 and await get() == 418  # second offence
            assert answers[-1][3] == "240"
        nursery.cancel_scope.cancel()
    s = hub.rest_limiter.statistics()
    assert (s.rate_limited, s.bans) == (2, 2)


# -- our feed stays within the limit -------------------------------------------------------------


def _gaps(every_s: float, for_s: float) -> tuple[FaultConfig, ...]:
    n = int(for_s / every_s)
    return tuple(FaultConfig(round(every_s * i, 3), "binance", "gap") for i in range(1, n + 1))


async def _resync_storm(rest: RestBudget, minutes: float) -> tuple[FeedStats, object, BaseException | None]:
    """Our Binance feed (snapshot limit 1000, weight 50) against the simulator injecting a gap every 300 ms: 200
    resyncs a minute asked for, 120 a minute allowed."""
    memory_network()
    hub = simulated_hub(SimConfig(faults=_gaps(0.3, minutes * 60)), 4)
    stats = FeedStats("binance")
    send, receive = trio.open_memory_channel(1_000_000)
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        cfg = BinanceFeedConfig(ws_url=endpoints.binance_ws_url, rest_url=endpoints.binance_rest_url)
        with trio.move_on_after(minutes * 60 + 5):
            try:
                await run_binance_feed(cfg, send, stats, rest=rest)
            except RestRefused as exc:
                failure = exc
        nursery.cancel_scope.cancel()
    return stats, hub.rest_limiter.statistics(), failure


async def test_our_feed_resyncing_every_300_ms_for_four_minutes_never_earns_a_429(autojump_clock):
    """Four of the server's one-minute windows, each asked for 200 snapshots (measured: 431 resyncs, 113 s waited;
    ten minutes gave 1,127 and 270 s, the same rates)."""
    rest = RestBudget.per_minute(6_000, seed=1)
    stats, served, failure = await _resync_storm(rest, 4)
    assert failure is None and (served.rate_limited, served.banned) == (0, 0)
    assert stats.gaps >= 400 and stats.connects == 1, stats  # a gap while the book waits for its snapshot is none
    budget = rest.statistics()
    assert budget.rate_limited == budget.banned == 0
    # held back, not refused: at most 120 snapshots in any minute, so about 480 in four minutes
    assert 400 <= stats.resyncs <= 496 and stats.rest_weight == budget.granted_weight
    assert stats.rest_wait_s > 45


async def test_without_the_budget_the_same_storm_earns_a_429_and_ends_the_connection(autojump_clock):
    """The test above has teeth: a budget as large as no budget asks 200 times a minute and is refused."""
    stats, served, failure = await _resync_storm(RestBudget.per_minute(1_000_000, seed=1), 2)
    assert isinstance(failure, RestRefused) and failure.restart_cause is RestartCause.RATE_LIMITED
    assert served.rate_limited == 1 and stats.rest_weight > 6_000


async def test_after_a_429_the_next_connection_waits_out_its_retry_after(autojump_clock):
    """A 429 (another process behind the IP spent the minute) ends the connection, cause rate_limited; the budget
    outlives it, so the reconnected feed's snapshot waits for Retry-After instead of earning a ban."""
    memory_network()
    asked: list[float] = []
    u = 2  # the stream's next update id

    async def respond(target: str):
        asked.append(trio.current_time())
        if len(asked) == 1:
            return 429, {"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "6010"}, b'{"code":-1003,"msg":"Too much"}'
        return (
            200,
            {"X-MBX-USED-WEIGHT-1M": "50"},
            b'{"lastUpdateId":%d,"bids":[["9.00","1.0"]],"asks":[["10.00","1.0"]]}' % (u - 1),
        )

    async def handler(request):
        nonlocal u
        conn = await request.accept()
        while True:
            await conn.send(
                json.dumps(
                    {
                        "stream": "btcusdt@depth@100ms",
                        "data": {
                            "e": "depthUpdate",
                            "E": u,
                            "s": "BTCUSDT",
                            "U": u,
                            "u": u,
                            "b": [],
                            "a": [["11.00", "1.0"]],
                        },
                    }
                )
            )
            u += 1
            await trio.sleep(0.1)

    rest = RestBudget.per_minute(6_000, seed=1)
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING", format="{message}")
    async with trio.open_nursery() as nursery:
        ws_port = await nursery.start(serve_ws, handler, "memory", 0)
        rest_port = await nursery.start(serve_http, respond, "memory", 0)
        cfg = BinanceFeedConfig(ws_url=f"ws://memory:{ws_port}", rest_url=f"http://memory:{rest_port}")
        stats = FeedStats("binance")
        send, _receive = trio.open_memory_channel(10_000)
        with pytest.raises(RestRefused) as refused:
            await run_binance_feed(cfg, send, stats, rest=rest)
        assert refused.value.restart_cause is RestartCause.RATE_LIMITED and "HTTP 429" in str(refused.value)
        await nursery.start(functools.partial(run_binance_feed, rest=rest), cfg, send, stats)
        nursery.cancel_scope.cancel()
    logger.remove(sink)
    assert len(asked) == 2 and asked[1] - asked[0] >= 7.0
    assert stats.rest_wait_s >= 6.9
    assert any(w.startswith("depth snapshot held 7 s: Binance's Retry-After") for w in warnings), warnings


# -- per-connection message rates ------------------------------------------------------------------


async def test_binance_closes_a_connection_sending_more_than_5_messages_a_second(autojump_clock):
    memory_network()
    hub = simulated_hub(SimConfig(), 5)
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        async with open_ws(endpoints.binance_ws_url + "/ws") as conn:  # 5 a second for 3 s: answered
            for i in range(15):
                await conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                assert json.loads(await conn.receive())["id"] == i
                await trio.sleep(0.21)
        async with open_ws(endpoints.binance_ws_url + "/ws") as conn:
            for i in range(6):  # six within a second
                await conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            with pytest.raises(WsClosed) as closed:
                while True:
                    await conn.receive()
            assert (closed.value.code, closed.value.reason) == (1008, "Too many requests")
        nursery.cancel_scope.cancel()


async def test_upbit_refuses_a_sixth_subscribe_in_a_second_with_an_error_frame(autojump_clock):
    memory_network()
    hub = simulated_hub(SimConfig(), 6)
    subscribe = json.dumps([{"ticket": "t"}, {"type": "orderbook", "codes": ["KRW-BTC"]}])
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        async with open_ws(endpoints.upbit_url) as conn:
            for _ in range(6):
                await conn.send(subscribe)
            frames = []
            with pytest.raises(WsClosed) as closed:
                while True:
                    frames.append(json.loads(await conn.receive()))
            errors = [f["error"] for f in frames if "error" in f]
            assert errors == [{"name": "TOO_MANY_REQUEST", "message": "Too many requests."}]
            assert closed.value.code in (1000, 1006)  # 1000 over TCP; in memory the server's end goes before its reply
            assert sum(f.get("stream_type") == "SNAPSHOT" for f in frames) == 5  # the five allowed were answered
        nursery.cancel_scope.cancel()


async def test_upbit_refuses_a_sixth_connect_in_a_second_at_the_handshake(autojump_clock):
    memory_network()
    hub = simulated_hub(SimConfig(), 7)
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        for _ in range(5):
            async with open_ws(endpoints.upbit_url):
                pass
        with pytest.raises(WsConnectError, match="HTTP 429"):
            async with open_ws(endpoints.upbit_url):
                pass
        await trio.sleep(1.0)
        async with open_ws(endpoints.upbit_url):  # a second later: welcome again
            pass
        nursery.cancel_scope.cancel()


async def test_limits_set_to_0_are_not_enforced(autojump_clock):
    memory_network()
    cfg = SimConfig(binance_rest_weight_per_min=0, upbit_connects_per_s=0)
    hub = simulated_hub(cfg, 8)
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        for _ in range(10):
            async with open_ws(endpoints.upbit_url):
                pass
        async with http_client(endpoints.binance_rest_url, 5) as http:
            statuses = {(await http.get(DEPTH_1000.replace("1000", "5000"))).status_code for _ in range(30)}
        assert statuses == {200}  # 30 x 250 = 7,500 within a minute
        nursery.cancel_scope.cancel()
