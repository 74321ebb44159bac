"""The simulator against the exchanges' real wire behaviour (PROTOCOLS.md): Upbit's idle rule and SIMPLE number
spelling; Binance's deep REST snapshots, bookTicker on every change of the touch, and overlapping diffs."""

from __future__ import annotations

import functools
import gzip
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors import config
from actors.config import BinanceFeedConfig
from actors.core.kpi import FeedStats
from actors.core.venues import binance
from actors.feed import run_binance_feed
from actors.net.http import http_client
from actors.net.memory import memory_network
from actors.net.ws import WsClosed, open_ws
from actors.records.paths import SessionPaths
from actors.sim.binance_server import depth_weight, diff_payload, rest_response
from actors.sim.exchange import SimHub
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, UPBIT_USDT, SimBook, SimMarket
from actors.sim.serve import serve_hub, serve_sim, simulated_hub
from actors.sim.settings import SimConfig
from actors.sim.upbit_server import orderbook_frame, plain_number, simple_size

ROOT = Path(__file__).resolve().parents[2]
IDLE_S = 60.0  # the simulator's default: the wire's ~60 s (PROTOCOLS.md §1.6)


# -- Upbit: what keeps a socket open ---------------------------------------------------------------


async def test_upbit_protocol_pings_alone_keep_the_socket_open(autojump_clock):
    """A client that never sends a message, only RFC 6455 pings every 10 s, stays connected past the idle limit
    (PROTOCOLS.md §1.6: a ping frame keeps the socket open); once it stops, it is dropped at the limit."""
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_sim, SimConfig(), 5)
        async with open_ws(endpoints.upbit_url) as conn:
            with trio.fail_after(1000):  # virtual seconds
                for _ in range(20):  # 200 s, more than three idle limits
                    await trio.sleep(10)
                    await conn.ping(b"keep-alive")  # raises WsClosed if the server dropped us
                last_ping = trio.current_time()
                with pytest.raises(WsClosed) as info:
                    await conn.receive()  # no subscription: nothing comes, and nothing goes
            assert trio.current_time() - last_ping == pytest.approx(IDLE_S)
            assert info.value.restart_cause == "dropped"  # no close frame (1006)
        nursery.cancel_scope.cancel()


async def test_upbit_silent_client_is_dropped_at_the_idle_limit(autojump_clock):
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_sim, SimConfig(upbit_idle_timeout_s=IDLE_S), 5)
        async with open_ws(endpoints.upbit_url) as conn:
            t0 = trio.current_time()
            with trio.fail_after(1000), pytest.raises(WsClosed) as info:
                await conn.receive()
            assert trio.current_time() - t0 == pytest.approx(IDLE_S)
            assert info.value.restart_cause == "dropped"
        nursery.cancel_scope.cancel()


# -- Upbit: SIMPLE number spelling -----------------------------------------------------------------

# A real SIMPLE frame of 2026 (trimmed to 2 units by its author): nemanull/arbitrage-observatory
# docs/profiles/upbit/websocket.md §6, commit 11b37323; PROTOCOLS.md §1.3 quotes its spelling.
REAL_SIMPLE_2026 = (
    '{"ty":"orderbook","cd":"KRW-BTC","tms":1790134773006,"tas":0.48514983,"tbs":2.2403413,"obu":['
    '{"ap":116606000,"bp":116534000,"as":0.06288509,"bs":7.9276E-4},'
    '{"ap":116609000,"bp":116521000,"as":5.0E-4,"bs":0.01624318}],"st":"SNAPSHOT","lv":0}'
)
_NUMBER = re.compile(r'"(ap|bp|as|bs|tas|tbs)":([^,}\]]+)')


def _numbers(frame: str) -> list[tuple[str, str]]:
    """(key, number as spelled) of every price and size in a SIMPLE frame."""
    return _NUMBER.findall(frame)


def _spelled(key: str, text: str) -> str:
    return plain_number(float(text)) if key in ("ap", "bp") else simple_size(float(text))


def test_simple_spelling_matches_a_real_2026_frame():
    numbers = _numbers(REAL_SIMPLE_2026)
    assert len(numbers) == 10
    assert [_spelled(key, text) for key, text in numbers] == [text for _, text in numbers]


def test_simple_sizes_match_every_size_of_real_frames(fixtures):
    """The 2021 SIMPLE frames (cryptofeed's recording): every size and total spelled exactly as Upbit did.
    (Their prices are in the 2021 spelling, ``127.0``; today's are plain, as in the 2026 frame above.)"""
    sizes = []
    for path in sorted((fixtures / "upbit").glob("orderbook_simple_*.json")):
        sizes += [(k, t) for k, t in _numbers(path.read_text()) if k not in ("ap", "bp")]
    assert len(sizes) >= 60
    assert [simple_size(float(text)) for _, text in sizes] == [text for _, text in sizes]


def test_simple_frames_carry_no_float_noise():
    """Over many steps, every number of the simulator's SIMPLE frames is spelled as Upbit spells it: prices
    plain (no ``.0``, no exponent), sizes and totals with at most 8 decimals in Java's spelling."""
    hub = SimHub(SimConfig(), 7, epoch_ms=1_790_000_000_000)
    seen = 0
    for _ in range(1500):
        hub.market.step()
        for code in (UPBIT_BTC, UPBIT_USDT):
            frame = orderbook_frame(hub, code, 30, False, "SIMPLE").decode()
            for key, text in _numbers(frame):
                seen += 1
                if key in ("ap", "bp"):
                    assert re.fullmatch(r"[1-9][0-9]*", text), (code, key, text)
                else:
                    assert re.fullmatch(r"[0-9]\.[0-9]+E-?[0-9]+|[0-9]+\.[0-9]+", text), (code, key, text)
                    decimals = -Decimal(text).normalize().as_tuple().exponent  # type: ignore[operator]
                    assert decimals <= 8, (code, key, text)
                assert _spelled(key, text) == text, (code, key, text)  # the shortest spelling: no noise
    assert seen == 1500 * 2 * 122  # 30 units of 4 numbers and 2 totals per frame


# -- Binance: deep REST snapshots that the diffs continue -------------------------------------------


class _ClientBook:
    """A client's book from a REST snapshot and the diffs after it (the documented update rule), levels as the
    wire spells them. ``low``/``high``: the prices the snapshot covered; inside them the book is complete."""

    def __init__(self, snapshot: binance.DepthSnapshot) -> None:
        self.bids, self.asks = dict(snapshot.bids), dict(snapshot.asks)
        self.update_id = snapshot.last_update_id
        self.low, self.high = snapshot.bids[-1][0], snapshot.asks[-1][0]

    def updates(self, diff: binance.DepthDiff) -> list[tuple[int, dict[float, float], float, float]]:
        """(update id, side, price, size) of each level of ``diff`` in the simulator's documented order (bid
        removals, ask removals, bid updates, ask updates, best first). A diff the book has is skipped; one that
        overlaps it (``U`` <= its id) is applied whole, at its ``u`` (the documented update rule)."""
        assert diff.first_id <= self.update_id + 1, f"gap: U={diff.first_id} after {self.update_id}"
        if diff.final_id <= self.update_id:
            return []
        bids, asks = sorted(diff.bids, reverse=True), sorted(diff.asks)
        order = (
            [(self.bids, p, q) for p, q in bids if q == 0]
            + [(self.asks, p, q) for p, q in asks if q == 0]
            + [(self.bids, p, q) for p, q in bids if q > 0]
            + [(self.asks, p, q) for p, q in asks if q > 0]
        )
        if diff.first_id <= self.update_id:
            return [(diff.final_id, *u) for u in order]
        return [(diff.first_id + i, *u) for i, u in enumerate(order)]

    def apply(self, side: dict[float, float], price: float, size: float, update_id: int) -> None:
        if size:
            side[price] = size
        else:
            side.pop(price, None)
        self.update_id = update_id

    def top(self) -> tuple[tuple[float, float], tuple[float, float]]:
        bid, ask = max(self.bids), min(self.asks)
        assert bid < ask, f"crossed at {self.update_id}: {bid} >= {ask}"
        return (bid, self.bids[bid]), (ask, self.asks[ask])

    def agrees_with(self, served: tuple[list[tuple[float, float]], list[tuple[float, float]]]) -> None:
        """Inside the prices the snapshot covered, this book is the simulator's ``top(n)`` exactly."""
        bids, asks = served
        for mine, theirs, inside in (
            (self.bids, bids, lambda p: p >= self.low),
            (self.asks, asks, lambda p: p <= self.high),
        ):
            assert {p: q for p, q in mine.items() if inside(p)} == {p: round(q, 8) for p, q in theirs if inside(p)}


def _depth(hub: SimHub, limit: int) -> tuple[dict[str, str], binance.DepthSnapshot]:
    status, headers, body = rest_response(hub, "BTCUSDT", f"/api/v3/depth?symbol=BTCUSDT&limit={limit}")
    assert status == 200
    return headers, binance.decode_snapshot(body)


def _follow(hub: SimHub, book: _ClientBook, steps: int, prices: list[float] | None = None) -> int:
    """Step the market, apply each diff as the wire carries it, and compare with the simulator: the top
    every step and at every id of a bookTicker (``BinanceDiff.touches``), all the snapshot covered every tenth
    step. ``prices``: BTC/USDT pinned at each step (as a replay pins it). Returns the number of steps whose diff
    crossed the whole maintained side of the book (and went on into the far book, which only the deep snapshot
    holds)."""
    market = hub.market
    assert isinstance(market, SimMarket)
    deep = 0
    for i in range(steps):
        step = market.step(prices[i] if prices else None)
        assert step.binance_diff is not None and step.binance_diff.walks is not None
        deep += any(len(w.removed) > 500 for w in step.binance_diff.walks)
        diff = binance.decode(diff_payload("BTCUSDT", step.time_ms, step.binance_diff))
        assert isinstance(diff, binance.DepthDiff)
        touches = {u: ((b[0], round(b[1], 8)), (a[0], round(a[1], 8))) for u, b, a in step.binance_diff.touches()}
        for update_id, side, price, size in book.updates(diff):
            book.apply(side, price, size, update_id)
            if update_id in touches:  # what bookTicker would say: the client's top at that id
                assert touches.pop(update_id) == book.top(), update_id
        assert not touches
        sim_book = market.books[BINANCE_BTC]
        assert book.top() == tuple((s[0][0], round(s[0][1], 8)) for s in sim_book.top(1))
        if i % 10 == 9 or i == steps - 1:
            book.agrees_with(_out_to(sim_book, book.low, book.high))
    return deep


def _out_to(sim_book: SimBook, low: float, high: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The simulator's ``top(n)``, deep enough to reach ``low`` and ``high`` (or all it has)."""
    n = 2048
    while True:
        bids, asks = sim_book.top(n)
        if (bids[-1][0] < low or len(bids) < n) and (asks[-1][0] > high or len(asks) < n):
            return bids, asks
        n *= 2


@pytest.mark.parametrize("limit, weight", [(1000, "50"), (5000, "250")])
def test_rest_depth_answers_the_levels_asked_for_and_the_diffs_continue_them(limit, weight):
    hub = SimHub(SimConfig(), 11, epoch_ms=1_790_000_000_000)
    for _ in range(30):
        hub.market.step()
    headers, snapshot = _depth(hub, limit)
    assert headers["X-MBX-USED-WEIGHT-1M"] == weight
    assert len(snapshot.bids) == len(snapshot.asks) == limit
    assert [p for p, _ in snapshot.bids] == sorted({p for p, _ in snapshot.bids}, reverse=True)
    assert [p for p, _ in snapshot.asks] == sorted({p for p, _ in snapshot.asks})
    assert snapshot.bids[0][0] < snapshot.asks[0][0]
    assert snapshot.last_update_id == hub.market.update_id
    assert _depth(hub, limit)[1] == snapshot  # asked again, answered the same (the far book is fixed)
    _follow(hub, _ClientBook(snapshot), 150)


def test_deep_snapshot_stays_right_when_jumps_cross_the_whole_maintained_book():
    """Jumps larger than the 500 maintained levels cross into the far book: the diffs remove what a 5000-level
    snapshot holds there, and the book stays the simulator's."""
    hub = SimHub(
        SimConfig(market_model="ou", jumps_per_hour=3000, jump_bps=30), 6, epoch_ms=0
    )  # the OU model jumps on demand
    _, snapshot = _depth(hub, 5000)
    assert _follow(hub, _ClientBook(snapshot), 150) >= 2


def test_deep_snapshot_stays_right_when_the_price_trends_away_and_back():
    """A price that runs 500 levels and more one way, then back: levels made near the touch reach the far end
    of the maintained book and are trimmed there (the far book shows through again), then crossed."""
    hub = SimHub(SimConfig(), 6, epoch_ms=0)
    assert isinstance(hub.market, SimMarket)
    start = hub.market.btc_usdt
    _, snapshot = _depth(hub, 5000)
    path = [start + 8 * i for i in range(80)] + [start + 8 * (80 - i) for i in range(80)]
    _follow(hub, _ClientBook(snapshot), len(path), path)


def test_same_seed_same_deep_answers():
    a, b = SimHub(SimConfig(), 3, epoch_ms=0), SimHub(SimConfig(), 3, epoch_ms=0)
    for _ in range(50):
        assert a.market.step() == b.market.step()
    assert rest_response(a, "BTCUSDT", "/api/v3/depth?symbol=BTCUSDT&limit=5000") == rest_response(
        b, "BTCUSDT", "/api/v3/depth?symbol=BTCUSDT&limit=5000"
    )


def test_depth_weights_are_binances_table_and_the_limit_is_capped_at_5000():
    """PROTOCOLS.md §2.5 (since 2023-10-19): 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250."""
    limits = (1, 100, 101, 500, 501, 1000, 1001, 5000)
    assert [depth_weight(n) for n in limits] == [5, 5, 25, 25, 50, 50, 250, 250]
    headers, snapshot = _depth(SimHub(SimConfig(), 2, epoch_ms=0), 9999)
    assert len(snapshot.bids) == len(snapshot.asks) == 5000 and headers["X-MBX-USED-WEIGHT-1M"] == "250"
    assert len(_depth(SimHub(SimConfig(), 2, epoch_ms=0), 100)[1].bids) == 100


# -- Binance: bookTicker on every change of the touch ----------------------------------------------


async def test_book_ticker_follows_every_touch_change_and_agrees_with_the_synced_book(autojump_clock):
    """A client of depth@100ms and bookTicker on one connection, synced from a REST snapshot: several tickers per
    step, each one the top of its book at the ticker's update id (inside a diff's U..u: the documented order)."""
    memory_network()
    # the OU model moves the price every step, so every step changes the touch several times; on the fitted
    # model the price is still in most steps (docs/simulator.md: fewer tickers than the real stream)
    hub = simulated_hub(SimConfig(market_model="ou"), 5)
    events: list[binance.Event] = []
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        url = endpoints.binance_ws_url + binance.combined_path(("btcusdt@depth@100ms", "btcusdt@bookTicker"))
        async with open_ws(url) as conn, http_client(endpoints.binance_rest_url, 5) as http:
            with trio.fail_after(60):
                events.append(binance.decode(await conn.receive()))  # buffering, as the procedure says
                response = await http.get(binance.depth_query("BTCUSDT", 1000))
                snapshot = binance.decode_snapshot(response.content)
                while sum(isinstance(e, binance.DepthDiff) for e in events) < 200:
                    events.append(binance.decode(await conn.receive()))
            served = _out_to(hub.market.books["BTCUSDT"], snapshot.bids[-1][0], snapshot.asks[-1][0])
            served_id = hub.market.update_id  # as of the last diff received
        nursery.cancel_scope.cancel()
    diffs = [e for e in events if isinstance(e, binance.DepthDiff) and e.final_id > snapshot.last_update_id]
    tickers = {e.update_id: e for e in events if isinstance(e, binance.BookTicker)}
    assert diffs[0].first_id <= snapshot.last_update_id + 1 and len(diffs) >= 190
    book = _ClientBook(snapshot)
    checked = 0
    for diff in diffs:
        for update_id, side, price, size in book.updates(diff):
            book.apply(side, price, size, update_id)
            ticker = tickers.get(update_id)
            if ticker is not None:
                assert (ticker.bid, ticker.ask) == book.top(), update_id
                checked += 1
    after = [u for u in tickers if u > snapshot.last_update_id]
    assert checked == len(after)  # every ticker's id is an update of a diff the client applied
    assert checked >= 3 * len(diffs)  # several per step (the real stream: ~8 per diff)
    assert served_id == diffs[-1].final_id
    book.agrees_with(served)


# -- Binance: overlapping diffs --------------------------------------------------------------------


class _Frames:
    """A feed's recorder that keeps what it read."""

    def __init__(self) -> None:
        self.read: list[tuple[str, bytes | str]] = []

    def write(self, venue: str, kind: str, at: float, frame: bytes | str) -> None:
        self.read.append((kind, frame))


async def test_an_overlapping_diff_right_after_the_snapshot_keeps_the_feed_in_sync(autojump_clock):
    """As the real stream was seen doing: after a REST snapshot the next diff's U is below the previous diff's u.
    The feed applies it (the documented rule): no gap, no second snapshot, and its book stays the market's."""
    memory_network()
    hub = simulated_hub(SimConfig(binance_overlap_after_snapshot=True), 8)
    send, receive = trio.open_memory_channel(10_000)
    stats, frames = FeedStats("binance"), _Frames()
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        cfg = BinanceFeedConfig(ws_url=endpoints.binance_ws_url, rest_url=endpoints.binance_rest_url)
        with trio.fail_after(30):
            await nursery.start(functools.partial(run_binance_feed, recorder=frames), cfg, send, stats)
        await trio.sleep(5.05)  # between two steps: the feed has published the last diff it read
        nursery.cancel_scope.cancel()
    kinds = [kind for kind, _ in frames.read]
    assert kinds.count("rest") == 1
    diffs = [binance.decode(f) for kind, f in frames.read if kind == "ws"]
    read_before = kinds[: kinds.index("rest")].count("ws")  # diffs read before the snapshot arrived
    overlapping = [i for i in range(1, len(diffs)) if diffs[i].first_id <= diffs[i - 1].final_id]
    assert len(overlapping) == 1 and overlapping[0] in (read_before, read_before + 1)  # right after the snapshot
    assert all(diffs[i].first_id == diffs[i - 1].final_id + 1 for i in range(1, len(diffs)) if i not in overlapping)
    assert stats.gaps == 0 and stats.resyncs == 1 and stats.connects == 1
    views = []
    while True:
        try:
            views.append(receive.receive_nowait())
        except trio.WouldBlock:
            break
    assert len(views) >= 40 and views[-1].update_id == diffs[-1].final_id
    snapshot = binance.decode_snapshot(next(f for kind, f in frames.read if kind == "rest"))
    book = _ClientBook(snapshot)
    for diff in diffs:
        for update_id, side, price, size in book.updates(diff):
            book.apply(side, price, size, update_id)
    assert views[-1].bids == tuple(sorted(book.bids.items(), reverse=True)[:20])
    assert views[-1].asks == tuple(sorted(book.asks.items())[:20])


def test_the_overlap_fault_in_a_session_is_applied_without_a_resync(tmp_path, run_virtual):
    """``[[sim.faults]]`` of kind ``overlap``: the session's feed reads three overlapping diffs (its recording
    shows them) and counts no gap, no resync, no reconnect."""
    raw = config.unparse(config.load(ROOT / "config" / "demo.toml"))
    raw["session"].update(duration_s=20, logs_dir=str(tmp_path), record=True)
    raw["sim"]["faults"] = [{"at_s": at_s, "venue": "binance", "kind": "overlap"} for at_s in (5, 9.95, 14)]
    paths = SessionPaths(tmp_path, "20260101_000011")
    result = run_virtual(config.parse(raw), paths)
    assert result.status == "completed" and result.kpi["fatal_exceptions"] == 0
    feed = result.kpi["feeds"]["binance"]
    assert feed["gaps"] == 0 and feed["resyncs"] == 1 and feed["reconnects"] == 0
    assert feed["book_age_s"] is not None and feed["book_age_s"] < 1.0
    with gzip.open(paths.recording, "rt") as f:
        records = [json.loads(line) for line in f]
    diffs = [json.loads(r["frame"])["data"] for r in records if r["venue"] == "binance" and r["kind"] == "ws"]
    assert sum(b["U"] <= a["u"] for a, b in zip(diffs, diffs[1:])) == 3
