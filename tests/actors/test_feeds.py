"""Feed actors against scripted exchanges on the in-memory network, in virtual time."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from actors.config import BinanceFeedConfig, UpbitFeedConfig
from actors.core.kpi import FeedStats
from actors.feed import FeedError, FeedStale, run_binance_feed, run_upbit_feed
from actors.net.http import serve_http
from actors.net.memory import memory_network
from actors.net.seam import use_network
from actors.net.ws import serve_ws
from actors.sim.serve import serve_sim
from actors.sim.settings import SimConfig


def diff(first: int, final: int, bid: float = 100.0) -> str:
    data = {
        "e": "depthUpdate",
        "E": final,
        "s": "BTCUSDT",
        "U": first,
        "u": final,
        "b": [[f"{bid:.2f}", "1.0"]],
        "a": [["101.00", "2.0"]],
    }
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data})


class ScriptedBinance:
    """A Binance stand-in: the test scripts each frame; the REST snapshot is at the last id sent."""

    def __init__(self, script):
        self.script = script
        self.last_id = 1000
        self.snapshots = 0

    async def respond(self, target: str):
        self.snapshots += 1
        body = json.dumps({"lastUpdateId": self.last_id, "bids": [["99.00", "1.0"]], "asks": [["102.00", "1.0"]]})
        return 200, {}, body.encode()

    async def handler(self, request):
        conn = await request.accept()
        for item in self.script:
            if isinstance(item, (int, float)):
                await trio.sleep(item)
                continue
            if item.startswith("{") and '"u":' in item:
                self.last_id = json.loads(item)["data"]["u"]
            await conn.send(item)
        await trio.sleep_forever()

    async def start(self, nursery) -> BinanceFeedConfig:
        memory_network()
        ws_port = await nursery.start(serve_ws, self.handler, "memory", 0)
        rest_port = await nursery.start(serve_http, self.respond, "memory", 0)
        return BinanceFeedConfig(
            ws_url=f"ws://memory:{ws_port}", rest_url=f"http://memory:{rest_port}", stale_after_s=5.0
        )


async def _views_of_binance_feed(server: ScriptedBinance, stats: FeedStats, run_for_s: float) -> list:
    """Run the Binance feed against ``server`` for ``run_for_s``; every view it published, in order."""
    send, receive = trio.open_memory_channel(100)
    async with trio.open_nursery() as nursery:
        cfg = await server.start(nursery)
        await nursery.start(run_binance_feed, cfg, send, stats)
        await trio.sleep(run_for_s)
        nursery.cancel_scope.cancel()
    views = []
    while True:
        try:
            views.append(receive.receive_nowait())
        except trio.WouldBlock:
            return views


async def test_binance_gap_forces_a_counted_resync_and_garbage_is_skipped(autojump_clock):
    script = [
        diff(1001, 1001),
        0.1,
        diff(1002, 1003),
        0.1,
        "garbage{",
        0.1,
        diff(1004, 1004, bid=100.5),
        0.1,
        diff(1010, 1012, bid=99.5),
        0.1,
        diff(1013, 1013),
        0.1,
        diff(1014, 1015),
    ]
    server = ScriptedBinance(script)
    stats = FeedStats("binance")
    views = await _views_of_binance_feed(server, stats, run_for_s=2)
    assert stats.gaps == 1 and stats.resyncs == 2 and server.snapshots == 2
    assert stats.bad_frames == 1
    assert [v.update_id for v in views][-1] == 1015
    assert all(not v.crossed for v in views)


class QueuedNetwork:
    """A stand-in network (actors.ws.use_network) whose connection delivers frames in groups: every frame
    of a group is queued at once, as on a socket whose reader fell behind."""

    def __init__(self, groups: list[list[str]], snapshot_id: int, gap_s: float = 0.1) -> None:
        self._groups, self._snapshot_id, self._gap_s = [list(g) for g in groups], snapshot_id, gap_s
        self._queued: list[str] = []

    @asynccontextmanager
    async def connect_ws(self, url: str, connect_timeout_s: float = 10.0, limits=None):
        yield self

    async def receive(self) -> str:
        if not self._queued:
            if not self._groups:
                await trio.sleep_forever()
            await trio.sleep(self._gap_s)
            self._queued = self._groups.pop(0)
        return self._queued.pop(0)

    def receive_nowait(self) -> str | None:
        return self._queued.pop(0) if self._queued else None

    def http_transport(self):
        body = json.dumps({"lastUpdateId": self._snapshot_id, "bids": [["99.00", "1.0"]], "asks": [["102.00", "1.0"]]})
        return httpx.MockTransport(lambda request: httpx.Response(200, content=body.encode()))


async def test_binance_frames_queued_together_are_all_applied_and_published_as_one_view(autojump_clock):
    """A burst (30 diffs queued at once): every diff is applied in order, one view is published for the
    burst, the others are counted as superseded."""
    burst = [diff(i, i, bid=100.0 - (i - 1001) * 0.01) for i in range(1002, 1032)]
    use_network(QueuedNetwork([[diff(1001, 1001)], burst], snapshot_id=1001))
    send, receive = trio.open_memory_channel(100)
    stats = FeedStats("binance")
    async with trio.open_nursery() as nursery:
        await nursery.start(run_binance_feed, BinanceFeedConfig(ws_url="ws://q", rest_url="http://q"), send, stats)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    views = [receive.receive_nowait() for _ in range(stats.books)]
    assert stats.messages == 31 and stats.batches == 2  # the burst took one wake-up
    # diff 1001 only led to the snapshot (a snapshot alone is not published: the stream must continue it);
    # every diff of the burst was published or superseded by a newer one
    assert stats.books == len(views) == 1 and stats.books + stats.books_superseded == 30
    last = views[-1]
    assert last.update_id == 1031
    # each diff of the burst added a bid level 0.01 lower than the one before: the view holds the best 20
    assert [p for p, _ in last.bids] == [round(100.0 - k * 0.01, 2) for k in range(1, 21)]


async def test_binance_feed_gives_up_on_a_silent_stream_after_exactly_stale_after_s(autojump_clock):
    server = ScriptedBinance([diff(1001, 1001), 0.1, diff(1002, 1002)])
    send, _receive = trio.open_memory_channel(100)
    stats = FeedStats("binance")
    async with trio.open_nursery() as nursery:
        cfg = await server.start(nursery)
        t0 = trio.current_time()
        with pytest.raises(FeedStale):
            await run_binance_feed(cfg, send, stats)
        assert trio.current_time() - t0 == pytest.approx(0.1 + 5.0)
        assert not stats.connected
        nursery.cancel_scope.cancel()


async def test_upbit_feed_is_ready_once_both_books_arrived(autojump_clock):
    memory_network()
    send, receive = trio.open_memory_channel(1000)
    stats = FeedStats("upbit")
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_sim, SimConfig(), 1)
        cfg = UpbitFeedConfig(url=endpoints.upbit_url, ping_interval_s=20)
        await nursery.start(run_upbit_feed, cfg, send, stats)
        assert stats.connected
        await trio.sleep(130)  # past two idle timeouts of the server: our PINGs keep it open
        nursery.cancel_scope.cancel()
    codes = set()
    while True:
        try:
            codes.add(receive.receive_nowait().symbol)
        except trio.WouldBlock:
            break
    assert codes == {"KRW-BTC", "KRW-USDT"}
    assert stats.connects == 1 and stats.pings_sent == 7
    assert stats.books == 1000 and stats.books + stats.books_dropped > 2500  # a full inbox conflates


async def test_upbit_error_frame_ends_the_connection_with_cause_error(autojump_clock):
    memory_network()

    async def handler(request):
        conn = await request.accept()
        await conn.receive()
        await conn.send(b'{"error":{"name":"INVALID_PARAM","message":"bad"}}')
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ws, handler, "memory", 0)
        send, _ = trio.open_memory_channel(10)
        with pytest.raises(FeedError) as info:
            await run_upbit_feed(UpbitFeedConfig(url=f"ws://memory:{port}/websocket/v1"), send, FeedStats("upbit"))
        assert info.value.restart_cause == "error" and "INVALID_PARAM" in str(info.value)
        nursery.cancel_scope.cancel()
