"""Every buffer an exchange (or a recording) can fill has a byte budget, in virtual time over the in-memory
network: a message over the limit, the library's message queue, one wake-up's batch, a Binance book's diffs
while its snapshot is awaited, the replay's read-ahead on both paths (docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import attrs
import httpx
import pytest
import trio

from actors.config import BinanceFeedConfig, ReplayConfig, UpbitFeedConfig
from actors.core.budget import ByteBudget, in_words, levels_bytes
from actors.core.kpi import FeedStats
from actors.core.venues.binance_book import BufferOverflow
from actors.core.vocabulary import RestartCause
from actors.feed import run_binance_feed
from actors.feed_snapshot import _http_failure
from actors.net.http import http_client, serve_http
from actors.net.memory import memory_network
from actors.net.seam import use_network
from actors.net.ws import WsClosed, WsLimits, open_ws, serve_ws
from actors.sim.direct import _Conn
from actors.sim.model import BinanceDiff, StepResult
from actors.sim.replay import ReplayHub, step_bytes
from actors.sim.settings import SimConfig

KIB, MIB = 1024, 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def wide_diff(first: int, final: int, levels: int) -> str:
    """A combined-stream diff with ``levels`` bids (an exchange decides how many)."""
    data = {
        "e": "depthUpdate",
        "E": final,
        "s": "BTCUSDT",
        "U": first,
        "u": final,
        "b": [[f"{10 + i / 100:.2f}", "1.0"] for i in range(levels)],
        "a": [["100000.00", "1.0"]],
    }
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data})


async def _server(nursery, frames: list[str], *, rest_answers: bool = True) -> BinanceFeedConfig:
    """A Binance stand-in sending ``frames`` 0.1 s apart; its REST never answers unless ``rest_answers``."""
    memory_network()

    async def handler(request):
        conn = await request.accept()
        for frame in frames:
            await conn.send(frame)
            await trio.sleep(0.1)
        await trio.sleep_forever()

    async def respond(target: str):
        if not rest_answers:
            await trio.sleep_forever()
        return 200, {}, b'{"lastUpdateId":1,"bids":[["9.00","1.0"]],"asks":[["100001.00","1.0"]]}'

    ws_port = await nursery.start(serve_ws, handler, "memory", 0)
    rest_port = await nursery.start(serve_http, respond, "memory", 0)
    return BinanceFeedConfig(
        ws_url=f"ws://memory:{ws_port}", rest_url=f"http://memory:{rest_port}", snapshot_timeout_s=60
    )


async def test_a_message_over_max_message_bytes_ends_the_connection_as_an_overflow(autojump_clock):
    async with trio.open_nursery() as nursery:
        memory_network()

        async def handler(request):
            conn = await request.accept()
            await conn.send("x" * (2 * MIB))  # real frames are under 100 KiB
            await trio.sleep_forever()

        port = await nursery.start(serve_ws, handler, "memory", 0)
        limits = WsLimits(1 * MIB, 16 * MIB, "feeds.binance")
        with pytest.raises(WsClosed) as closed:
            async with open_ws(f"ws://memory:{port}/", limits=limits) as conn:
                await conn.receive()
        assert closed.value.restart_cause is RestartCause.OVERFLOW and closed.value.code == 1009
        assert "a message over 1 MiB (feeds.binance.max_message_bytes) was too big" in str(closed.value)
        nursery.cancel_scope.cancel()


async def test_the_library_queues_at_most_queue_bytes_of_messages(autojump_clock):
    """trio-websocket counts messages: the queue holds queue_bytes // max_message_bytes of them (a canary of the
    library's behaviour too: its reader then stops reading the stream)."""
    limits = WsLimits(64 * KIB, 256 * KIB)
    assert limits.queue_messages == 4
    async with trio.open_nursery() as nursery:
        memory_network()

        async def handler(request):
            conn = await request.accept()
            for _ in range(20):
                await conn.send("y" * (60 * KIB))

        port = await nursery.start(serve_ws, handler, "memory", 0)
        async with open_ws(f"ws://memory:{port}/", limits=limits) as conn:
            await trio.sleep(5)  # nothing read meanwhile
            assert conn._ws._recv_channel.statistics().current_buffer_used == 4
        nursery.cancel_scope.cancel()


class _Burst:
    """A stand-in network whose one connection has ``frames`` queued at once (a reader that fell behind)."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = list(frames)
        self.first = True

    def connect_ws(self, url, connect_timeout_s=10.0, limits=None):
        network = self

        class _Ctx:
            async def __aenter__(self):
                return network

            async def __aexit__(self, *exc):
                return False

        return _Ctx()

    async def receive(self) -> str:
        if not self.frames:
            await trio.sleep_forever()
        await trio.sleep(0.1)
        return self.frames.pop(0)

    def receive_nowait(self) -> str | None:
        return self.frames.pop(0) if self.frames else None

    async def send(self, message) -> None:
        await trio.lowlevel.checkpoint()

    def http_transport(self):
        body = b'{"lastUpdateId":1000,"bids":[["9.00","1.0"]],"asks":[["100001.00","1.0"]]}'
        return httpx.MockTransport(lambda request: httpx.Response(200, content=body))


async def test_one_wake_up_takes_at_most_message_queue_bytes_of_frames(autojump_clock):
    """Five ~100 KB frames queued at once, message_queue_bytes 256 KiB: two wake-ups (3 frames, then 2), each
    decoding no more than the queue could hold, where a count-bounded batch took all five at once."""
    frames = [wide_diff(1001 + i, 1001 + i, 5500) for i in range(5)]
    assert all(90_000 < len(f) < 110_000 for f in frames)
    use_network(_Burst(frames))
    cfg = BinanceFeedConfig(ws_url="ws://b", rest_url="http://b", message_queue_bytes=256 * KIB)
    send, _receive = trio.open_memory_channel(100)
    stats = FeedStats("binance")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_binance_feed, cfg, send, stats)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert stats.messages == 5 and stats.batches == 2


async def test_diffs_buffered_for_a_snapshot_that_never_comes_overflow_three_times_then_the_connection_ends(
    autojump_clock,
):
    """Diffs of 3,000 levels (about 330 KB decoded each), a 1 MiB book budget, a REST that never answers: every
    fourth diff overflows the buffer (counted, logged, started over); the third overflow in a row ends the
    connection as an overflow, and the pool every book shares gets its bytes back."""
    frames = [wide_diff(1000 + i, 1000 + i, 3000) for i in range(1, 20)]
    pool = ByteBudget(4 * MIB, "feeds.binance.diff_buffer_total_bytes")
    stats = FeedStats("binance")
    send, _receive = trio.open_memory_channel(100)
    async with trio.open_nursery() as nursery:
        cfg = await _server(nursery, frames, rest_answers=False)
        cfg = attrs.evolve(cfg, diff_buffer_bytes=1 * MIB)
        with pytest.raises(BufferOverflow) as raised:
            await run_binance_feed(cfg, send, stats, diff_pool=pool)
        nursery.cancel_scope.cancel()
    assert raised.value.restart_cause is RestartCause.OVERFLOW and stats.overflows == 3
    assert "outgrew this book's budget of 1 MiB (feeds.binance.diff_buffer_bytes), 3 times in a row" in str(
        raised.value
    )
    assert stats.messages == 12 and pool.used == 0  # 4 diffs a try: 3 fit, the 4th does not


def test_a_rest_timeout_names_its_deadline_and_key():
    cfg = BinanceFeedConfig(connect_timeout_s=3, snapshot_timeout_s=7)
    url = httpx.URL("https://api.binance.com")
    assert _http_failure(httpx.ReadTimeout(""), url, cfg) == (
        "api.binance.com sent nothing for 7 s while answering (ReadTimeout; feeds.binance.snapshot_timeout_s)"
    )
    assert _http_failure(httpx.ConnectTimeout(""), url, cfg) == (
        "no connection to api.binance.com within 3 s (feeds.binance.connect_timeout_s)"
    )
    client = http_client("http://x", 3, 7)
    assert (client.timeout.connect, client.timeout.read) == (3, 7)  # a read never times out before the deadline


async def test_the_direct_replay_hands_a_feed_at_most_its_queue_bytes_and_ends_on_a_frame_over_the_limit(
    autojump_clock,
):
    conn = _Conn("binance", WsLimits(128 * KIB, 256 * KIB, "feeds.binance"))
    frame = "z" * (100 * KIB)
    put = []

    async def producer() -> None:
        for i in range(4):
            await conn.put(frame)
            put.append(i)
        await conn.put("z" * (129 * KIB))  # over max_message_bytes: the connection ends (1009)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.sleep(1)
        assert put == [0, 1]  # a third frame of 100 KiB would pass 256 KiB: the replay waits
        assert await conn.receive() == frame
        await trio.sleep(1)
        assert put == [0, 1, 2]
        for _ in range(3):
            await conn.receive()
        await trio.sleep(1)
        with pytest.raises(WsClosed) as closed:
            await conn.receive()
    assert closed.value.restart_cause is RestartCause.OVERFLOW and "(feeds.binance.max_message_bytes)" in str(
        closed.value
    )


async def test_the_replay_hub_holds_at_most_read_ahead_bytes_per_client(autojump_clock):
    """Steps of 600-level diffs, a read-ahead of 1,000 levels: one step queued at a time for a slow client."""
    market = SimpleNamespace(books={}, upbit_codes=(), time_ms=0, update_id=0)
    step = StepResult(0, (), BinanceDiff(1, 1, tuple((10.0 + i, 1.0) for i in range(600)), ()))
    hub = ReplayHub(market, SimConfig(), 1, pacer=None, read_ahead_bytes=levels_bytes(1000))
    assert step_bytes(step) == levels_bytes(600)
    held = []

    async def slow_client(step) -> None:
        held.append(max(hub._held.values()))
        await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hub.follow, slow_client)
        await trio.sleep(0.1)
        for _ in range(5):
            await hub._deliver(None, step)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert len(held) == 5 and max(held) <= levels_bytes(1000)


def test_reliability_md_lists_every_byte_budget_with_its_key_and_default():
    """Every ``*_bytes`` key of the config is a row of docs/reliability.md's budget table, with its default."""
    rows = [
        line
        for line in (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8").splitlines()
        if "_bytes`" in line
    ]
    checked = 0
    for section, cls in (
        ("feeds.upbit", UpbitFeedConfig),
        ("feeds.binance", BinanceFeedConfig),
        ("replay", ReplayConfig),
    ):
        for field in attrs.fields(cls):
            if not field.name.endswith("_bytes"):
                continue
            spelled = (f"`{section}.{field.name}`", f"`feeds.*.{field.name}`", f"feeds.binance.{field.name}`")
            mine = [row for row in rows if any(s in row for s in spelled) and f"({in_words(field.default)}" in row]
            assert mine, f"{section}.{field.name} (default {in_words(field.default)}) is not in docs/reliability.md"
            checked += 1
    assert checked == 8
