"""Feeds for many books (issue 26) against small fake exchanges on the in-memory network, in virtual time: a
Binance connection carrying a shard of symbols (each book synced, resynced alone, paced by the weight budget in
the order of the books' priority, rotated on its shard's own schedule) and an Upbit connection carrying 30 codes
(one subscription, a quiet code that does not reconnect the feed)."""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from urllib.parse import parse_qs, urlsplit

import pytest
import trio

from actors.config import BinanceFeedConfig, UpbitFeedConfig
from actors.core.kpi import FeedStats
from actors.core.shards import plan_shards
from actors.core.venues.binance_weight import depth_weight
from actors.core.vocabulary import RestartCause
from actors.feed import FeedError, FeedStale, run_binance_feed, run_upbit_feed
from actors.feed_snapshot import SnapshotSlots
from actors.net.http import serve_http
from actors.net.memory import memory_network
from actors.net.rest_budget import RestBudget
from actors.net.ws import serve_ws
from actors.sim.limits import WeightLimiter


def _symbols(n: int) -> tuple[str, ...]:
    return tuple(f"C{i:02d}USDT" for i in range(n))


class FakeBinance:
    """Every symbol's diff stream (one diff per symbol every ``tick_s``, ids contiguous unless a gap is asked
    for) on any combined-stream connection that names it; REST depth snapshots at the symbol's last id, each
    counted per symbol with its time and weight, and refused with 429 past ``weight_per_min`` in a clock minute
    (the simulator's own limiter: Binance's rule)."""

    def __init__(self, tick_s: float = 0.25, weight_per_min: int = 6_000) -> None:
        self.tick_s = tick_s
        self.last_id: dict[str, int] = defaultdict(lambda: 1000)
        self.gap_next: set[str] = set()
        self.snapshots: Counter[str] = Counter()
        self.asked: list[tuple[float, str, int]] = []  # (time, symbol, weight) of every depth request
        self.limiter = WeightLimiter(weight_per_min)
        self.refused = 0
        self.connections: list[tuple[str, ...]] = []

    def gap(self, *symbols: str) -> None:
        self.gap_next.update(symbols)

    def _frame(self, symbol: str) -> str:
        first = self.last_id[symbol] + 1 + (symbol in self.gap_next)  # a gap skips one id
        self.gap_next.discard(symbol)
        self.last_id[symbol] = first
        bid = 100.0 + (first % 7) * 0.01
        data = {"e": "depthUpdate", "E": first, "s": symbol, "U": first, "u": first}
        data |= {"b": [[f"{bid:.2f}", "1.0"]], "a": [["101.00", "2.0"]]}
        return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data})

    async def handler(self, request) -> None:
        streams = parse_qs(urlsplit(request.path).query)["streams"][0].split("/")
        symbols = tuple(s.split("@")[0].upper() for s in streams)
        self.connections.append(symbols)
        conn = await request.accept()
        while True:
            for symbol in symbols:
                await conn.send(self._frame(symbol))
            await trio.sleep(self.tick_s)

    async def respond(self, target: str):
        query = parse_qs(urlsplit(target).query)
        symbol, weight = query["symbol"][0], depth_weight(int(query["limit"][0]))
        now = trio.current_time()
        self.asked.append((now, symbol, weight))
        verdict = self.limiter.check("memory", weight, now)
        if verdict.status is not None:
            self.refused += 1
            return verdict.status, verdict.headers, b'{"code":-1003,"msg":"Too much request weight used"}'
        self.snapshots[symbol] += 1
        body = json.dumps(
            {"lastUpdateId": self.last_id[symbol], "bids": [["99.00", "1.0"]], "asks": [["102.00", "1.0"]]}
        )
        return 200, verdict.headers, body.encode()

    async def start(self, nursery, **cfg) -> BinanceFeedConfig:
        memory_network()
        ws_port = await nursery.start(serve_ws, self.handler, "memory", 0)
        rest_port = await nursery.start(serve_http, self.respond, "memory", 0)
        return BinanceFeedConfig(ws_url=f"ws://memory:{ws_port}", rest_url=f"http://memory:{rest_port}", **cfg)

    def max_weight_in_any_60_s(self) -> int:
        times = [(t, w) for t, _, w in self.asked]
        return max((sum(w for u, w in times if t - 60.0 < u <= t) for t, _ in times), default=0)


def _views(receive: trio.MemoryReceiveChannel) -> list:
    views = []
    while True:
        try:
            views.append(receive.receive_nowait())
        except trio.WouldBlock:
            return views


async def test_a_shard_syncs_every_book_and_a_gap_resyncs_only_its_symbol(autojump_clock):
    symbols = _symbols(12)
    server = FakeBinance()
    stats = FeedStats("binance")
    send, receive = trio.open_memory_channel(100_000)
    async with trio.open_nursery() as nursery:
        cfg = await server.start(nursery)
        with trio.fail_after(10):
            await nursery.start(functools.partial(run_binance_feed, symbols=symbols), cfg, send, stats)
        assert stats.connected and server.connections == [symbols]  # one connection for the shard
        assert set(server.snapshots) == set(symbols) and set(server.snapshots.values()) == {1}
        synced = {v.symbol for v in _views(receive) if v.bids}
        assert synced == set(symbols)  # every book published, ready only once they all were
        await trio.sleep(5)
        _views(receive)
        server.gap("C03USDT")
        await trio.sleep(5)
        views = _views(receive)
        nursery.cancel_scope.cancel()
    assert server.snapshots == Counter({s: 1 + (s == "C03USDT") for s in symbols})  # that symbol's snapshot, +1
    assert stats.gaps == 1 and stats.resyncs == 13
    withdrawn = [v for v in views if not v.bids]
    assert [v.symbol for v in withdrawn] == ["C03USDT"]  # withdrawn at once, the others never
    for symbol in symbols:  # every book went on publishing (the lost one again once resynced)
        assert sum(v.symbol == symbol and bool(v.bids) for v in views) >= 15, symbol
    per = stats.statistics(trio.current_time()).per_symbol
    assert per["C03USDT"].gaps == 1 and per["C03USDT"].resyncs == 2
    assert all(per[s].gaps == 0 and per[s].resyncs == 1 for s in symbols if s != "C03USDT")
    # each book was untrusted until its first view, and the lost one for its resync on top
    assert per["C03USDT"].untrusted_s > max(per[s].untrusted_s for s in symbols if s != "C03USDT")


async def test_one_symbol_keeps_no_per_symbol_counters():
    stats = FeedStats("binance")
    assert stats.statistics(0.0).per_symbol == {}


async def test_50_books_resyncing_together_stay_within_the_weight_and_open_trades_go_first(autojump_clock):
    """50 books at snapshot_limit 1000 (weight 50) synced at once, lost together 3 s later and again 3 s after
    that: 7,500 weight asked within 6 s against 6,000 a minute. The budget holds the third wave back, so no 60 s
    window ever holds more than 6,000 and the exchange refuses nothing; the books with an open trade, lost last,
    are resynced before every book that had to wait."""
    symbols = _symbols(50)
    open_trades = set(symbols[:5])
    server = FakeBinance(tick_s=1.0)
    stats = FeedStats("binance")
    rest = RestBudget.per_minute(6_000, seed=1)
    send, _receive = trio.open_memory_channel(1_000_000)
    feed = functools.partial(
        run_binance_feed, symbols=symbols, rest=rest, priority=lambda s: 0 if s in open_trades else 1
    )
    async with trio.open_nursery() as nursery:
        cfg = await server.start(nursery, snapshot_limit=1000)
        with trio.fail_after(10):
            await nursery.start(feed, cfg, send, stats)
        await trio.sleep(3)
        server.gap(*symbols)
        await trio.sleep(3)
        third_wave = trio.current_time()
        server.gap(*(s for s in symbols if s not in open_trades))
        await trio.sleep(0.7)  # every other book has asked (jitter 0.5 s at most) before the open ones are lost
        server.gap(*open_trades)
        await trio.sleep(75)
        nursery.cancel_scope.cancel()
    assert server.refused == 0 and rest.statistics().rate_limited == 0
    assert len(server.asked) == 150 and set(server.snapshots.values()) == {3}  # every book, three times
    assert server.max_weight_in_any_60_s() <= 6_000
    late = [(t, s) for t, s, _ in server.asked if t > third_wave + 5]  # in the order served
    assert len(late) >= 25  # the budget did bind: these waited for the first wave's weight to leave the window
    # the open books, lost last, went before every waiting book but those already holding one of the connection's
    # snapshot slots (4): first come, they would have been last. Books served at the same virtual instant reach
    # the server in an order Trio's scheduler picks, so "before" is by time: no other book strictly earlier
    assert {s for _, s in late} >= open_trades
    last_open = max(t for t, s in late if s in open_trades)
    assert len([s for t, s in late if t < last_open and s not in open_trades]) <= cfg.snapshots_in_flight
    assert rest.statistics().waited >= cfg.snapshots_in_flight  # the slots' holders found no room


async def test_each_shard_rotates_at_its_own_time_and_resyncs_only_its_books(autojump_clock):
    """Six symbols in two shards of three; a cut of 100 s gives rotations at 45 s (shard 0) and 90 s (shard 1):
    each ends its own connection (cause scheduled) and resyncs its own three books, the other shard untouched."""
    symbols = _symbols(6)
    server = FakeBinance()
    rest = RestBudget.per_minute(6_000, seed=1)
    ended: list[tuple[float, int, str]] = []
    async with trio.open_nursery() as nursery:
        cfg = await server.start(nursery, scheduled_cut_s=100.0)
        origin = trio.current_time()
        plan = plan_shards(symbols, 3, cfg.scheduled_cut_s, origin_s=origin)
        assert [s.symbols for s in plan.shards] == [symbols[:3], symbols[3:]]

        async def shard(index: int) -> None:
            stats = FeedStats(f"binance#{index}")
            send, _ = trio.open_memory_channel(100_000)
            while True:
                feed = functools.partial(
                    run_binance_feed, symbols=plan.shards[index].symbols, rest=rest, rotate_at=plan.rotation(index)
                )
                with pytest.raises(FeedError) as info:
                    await feed(cfg, send, stats)
                ended.append((trio.current_time() - origin, index, info.value.restart_cause))

        for index in range(2):
            nursery.start_soon(shard, index)
        await trio.sleep(46)
        assert ended == [(pytest.approx(45.0), 0, RestartCause.SCHEDULED)]
        assert server.snapshots == Counter({s: 1 + (s in symbols[:3]) for s in symbols})
        await trio.sleep(45)
        assert ended[1:] == [(pytest.approx(90.0), 1, RestartCause.SCHEDULED)]
        assert set(server.snapshots.values()) == {2}
        nursery.cancel_scope.cancel()
    assert len(server.connections) == 4


# -- Upbit: many codes on one connection ------------------------------------------------------------


class FakeUpbit:
    """Answers a subscription with a book of every code it names, every 0.5 s, but for ``quiet`` codes."""

    def __init__(self, quiet: set[str]) -> None:
        self.quiet = quiet
        self.requests: list[list] = []
        self.connects = 0

    @staticmethod
    def frame(code: str, now_ms: int) -> str:
        unit = {"ask_price": 101.0, "bid_price": 100.0, "ask_size": 1.0, "bid_size": 1.0}
        return json.dumps(
            {
                "type": "orderbook",
                "code": code,
                "timestamp": now_ms,
                "total_ask_size": 1.0,
                "total_bid_size": 1.0,
                "orderbook_units": [unit],
                "stream_type": "REALTIME",
                "level": 0,
            }
        )

    async def handler(self, request) -> None:
        self.connects += 1
        conn = await request.accept()
        codes: list[str] = []

        async def read() -> None:
            nonlocal codes
            while True:
                message = await conn.receive()
                if message != "PING":
                    self.requests.append(json.loads(message))
                    codes = self.requests[-1][1]["codes"]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            while True:
                for code in codes:
                    if code not in self.quiet:
                        await conn.send(self.frame(code, int(trio.current_time() * 1000)))
                await trio.sleep(0.5)


class ReadyAt:
    """A task status that notes when the feed said it was ready."""

    def __init__(self) -> None:
        self.at: float | None = None

    def started(self, value=None) -> None:
        assert self.at is None, "started() twice"
        self.at = trio.current_time()


async def _run_upbit(server: FakeUpbit, codes: tuple[str, ...], run_s: float, stats: FeedStats, ready: ReadyAt):
    memory_network()
    send, receive = trio.open_memory_channel(1_000_000)
    failure = None
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ws, server.handler, "memory", 0)
        cfg = UpbitFeedConfig(url=f"ws://memory:{port}/websocket/v1", stale_after_s=30.0)
        with trio.move_on_after(run_s):
            try:
                await run_upbit_feed(cfg, send, stats, codes=codes, task_status=ready)
            except FeedStale as exc:
                failure = exc
        statistics = stats.statistics(trio.current_time())
        nursery.cancel_scope.cancel()
    return _views(receive), failure, statistics


async def test_upbit_subscribes_30_codes_in_one_message_and_a_quiet_code_does_not_reconnect(autojump_clock):
    codes = tuple(f"KRW-C{i:02d}" for i in range(29)) + ("KRW-USDT",)
    server = FakeUpbit(quiet={"KRW-C07"})
    stats, ready = FeedStats("upbit"), ReadyAt()
    start = trio.current_time()
    views, failure, statistics = await _run_upbit(server, codes, 70.0, stats, ready)
    assert failure is None and server.connects == stats.connects == 1  # 70 s, over two stale_after_s: no reconnect
    assert len(server.requests) == 1 and server.requests[0][1]["codes"] == list(codes)
    assert {v.symbol for v in views if v.bids} == set(codes) - {"KRW-C07"}
    assert [(v.symbol, v.received_at) for v in views if not v.bids] == [("KRW-C07", pytest.approx(30.0, abs=0.1))]
    per = statistics.per_symbol
    assert per["KRW-C07"].quiet == 1 and per["KRW-C07"].untrusted_s >= 70.0  # never had a book
    assert per["KRW-C01"].quiet == 0 and per["KRW-C01"].untrusted_s <= 1.0  # before its first book and after the close
    assert ready.at == pytest.approx(start + 30.0, abs=0.01)  # ready once the quiet code was withdrawn


async def test_upbit_with_many_codes_still_reconnects_when_the_fx_code_is_quiet(autojump_clock):
    codes = tuple(f"KRW-C{i:02d}" for i in range(29)) + ("KRW-USDT",)
    server = FakeUpbit(quiet={"KRW-USDT"})
    ready = ReadyAt()
    views, failure, _ = await _run_upbit(server, codes, 70.0, FeedStats("upbit"), ready)
    assert ready.at is None  # never ready without the FX code
    assert isinstance(failure, FeedStale) and "KRW-USDT" in str(failure)
    assert not any(not v.bids for v in views)  # the coins were fine: none withdrawn


async def test_snapshot_slots_serve_the_lower_priority_first_and_a_cancelled_waiter_leaks_no_slot(autojump_clock):
    slots = SnapshotSlots(1)
    order: list[str] = []

    async def ask(name: str, priority: int, hold_s: float = 1.0) -> None:
        async with slots.slot(priority):
            order.append(name)
            await trio.sleep(hold_s)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "first", 5)
        await trio.sleep(0.1)
        for name, priority in (("watched-a", 1), ("open-trade", 0), ("watched-b", 1)):
            nursery.start_soon(ask, name, priority)
            await trio.sleep(0.1)
        with trio.move_on_after(0.1):  # gives up while waiting
            await ask("impatient", 0)
        assert slots.waiting == 3 and slots.busy == 1
    assert order == ["first", "open-trade", "watched-a", "watched-b"]
    assert slots.busy == 0 and slots.waiting == 0
