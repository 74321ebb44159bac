"""Binance codec and sync procedure: conformance over real captures, plus bad input."""

from __future__ import annotations

import gzip

import pytest

from actors.core.venues import FrameError
from actors.core.venues.binance import (
    BookSync,
    BookTicker,
    ControlReply,
    DepthDiff,
    DepthSnapshot,
    ErrorReply,
    Outcome,
    ServerShutdown,
    SyncState,
    Trade,
    decode,
    decode_snapshot,
)


def read(fixtures, name: str) -> bytes:
    return (fixtures / "binance" / name).read_bytes()


def test_decodes_every_kind_of_captured_frame(fixtures):
    diff = decode(read(fixtures, "depth_diff_100ms_combined_BTCUSDT_hftbacktest_2024_1.json"))
    assert isinstance(diff, DepthDiff)
    assert (diff.symbol, diff.first_id, diff.final_id) == ("BTCUSDT", 50093239189, 50093239202)
    assert diff.bids[0] == (61737.63, 0.0)  # zero quantity = remove the level
    ticker = decode(read(fixtures, "bookTicker_combined_BTCUSDT_hftbacktest_2024.json"))
    assert isinstance(ticker, BookTicker) and ticker.bid == (61837.63, 3.78826)
    trade = decode(read(fixtures, "trade_combined_BTCUSDT_hftbacktest_2024.json"))
    assert isinstance(trade, Trade) and trade.kind == "trade" and trade.buyer_is_maker
    agg = decode(read(fixtures, "aggTrade_combined_cryptofeed_2021.json"))
    assert isinstance(agg, Trade) and agg.kind == "aggTrade"
    snap = decode_snapshot(read(fixtures, "rest_depth_snapshot_BTCUSDT_limit1000_hftbacktest_2024.json"))
    assert snap.last_update_id == 50093239218 and len(snap.bids) == len(snap.asks) == 1000
    assert all(a[0] > b[0] for a, b in zip(snap.bids, snap.bids[1:]))  # bids descending
    partial = decode(read(fixtures, "partial_depth20_100ms_combined_BTCUSDT_probe_2026_trimmed.json"))
    assert isinstance(partial, DepthSnapshot) and partial.stream == "btcusdt@depth20@100ms"
    ack = decode(read(fixtures, "subscribe_ack_probe_2026.json"))
    assert isinstance(ack, ControlReply) and ack.result is None
    listed = decode(read(fixtures, "list_subscriptions_result_probe_2026.json"))
    assert isinstance(listed, ControlReply) and "BTCUSDT@depth@100ms" in listed.result
    error = decode(read(fixtures, "error_unknown_method_probe_2026.json"))
    assert isinstance(error, ErrorReply) and error.code == 2 and error.request_id == 20
    for name in ("serverShutdown_raw.json", "serverShutdown_combined.json"):
        assert isinstance(decode(read(fixtures, f"doc_examples/{name}")), ServerShutdown)


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"{not json", "not a Binance frame"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":2,"u":1,"b":[],"a":[]}', "u 1 < U 2"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["NaN","1"]],"a":[]}', "price must be finite"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["-5","1"]],"a":[]}', "price must be finite and > 0"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["5","-1"]],"a":[]}', "size must be finite"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["5","abc"]],"a":[]}', "not a pair of decimal strings"),
        (b'{"e":"depthUpdate","E":1,"s":"X","u":1,"b":[],"a":[]}', "missing field U"),
        (b'{"lastUpdateId":1,"bids":[["1","0"]],"asks":[]}', "size must be finite and > 0"),
        (b'{"stream":"x@kline_1m","data":{"e":"kline","E":1}}', "unsupported Binance message type 'kline'"),
        (b'{"method":"SUBSCRIBE","params":[],"id":1}', "not a Binance server message"),
    ],
)
def test_bad_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        decode(frame)


def diff(first: int, final: int, bids=(), asks=()) -> DepthDiff:
    return DepthDiff("T", first, final, 0, tuple(bids), tuple(asks))


def test_sync_follows_the_documented_procedure():
    sync = BookSync("T")
    assert sync.on_diff(diff(90, 95)) is Outcome.BUFFERED
    assert sync.on_diff(diff(96, 101, bids=[(10.0, 1.0)])) is Outcome.BUFFERED
    assert sync.on_snapshot(DepthSnapshot(80, ((9.0, 1.0),), ((11.0, 1.0),))) is Outcome.REFETCH  # 80 < first U
    assert sync.on_snapshot(DepthSnapshot(98, ((9.0, 1.0),), ((11.0, 1.0),))) is Outcome.SYNCED
    assert sync.book.update_id == 101 and sync.book.best_bid == (10.0, 1.0)
    assert sync.on_diff(diff(99, 101)) is Outcome.IGNORED  # u <= local id
    assert sync.on_diff(diff(102, 103, asks=[(11.0, 0.0), (12.0, 2.0)])) is Outcome.APPLIED
    assert sync.book.best_ask == (12.0, 2.0)
    assert sync.on_diff(diff(105, 106)) is Outcome.GAP  # U > id + 1
    assert sync.gaps == 1 and not sync.synced and len(sync.book) == 0


def test_first_event_may_start_right_after_the_snapshot(fixtures):
    """The real NKNUSDT boundary: snapshot 499869752, first applied diff U = 499869753."""
    sync = BookSync("NKNUSDT")
    first = decode(read(fixtures, "depth_diff_100ms_combined_NKNUSDT_cryptofeed_2021_1.json"))
    second = decode(read(fixtures, "depth_diff_100ms_combined_NKNUSDT_cryptofeed_2021_2.json"))
    snap = decode_snapshot(read(fixtures, "rest_depth_snapshot_NKNUSDT_limit1000_cryptofeed_2021.json"))
    sync.on_diff(first)
    sync.on_diff(second)
    assert sync.on_snapshot(snap) is Outcome.SYNCED
    assert sync.book.update_id == second.final_id


def test_recorded_btcusdt_stream_syncs_without_gaps_and_matches_every_book_ticker(fixtures):
    path = fixtures / "recorded" / "hftbacktest" / "btcusdt_20240808.gz"
    sync = BookSync("BTCUSDT")
    best_at: dict[int, tuple] = {}
    tickers: list[BookTicker] = []
    applied = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            event = decode(line.split(b" ", 1)[1])
            if isinstance(event, DepthDiff):
                outcome = sync.on_diff(event)
                assert outcome is not Outcome.GAP
                if sync.synced and outcome is Outcome.APPLIED:
                    applied += 1
                    assert not sync.book.crossed
                    best_at[event.final_id] = (sync.book.best_bid, sync.book.best_ask)
            elif isinstance(event, DepthSnapshot):
                assert sync.on_snapshot(event) is Outcome.SYNCED
            elif isinstance(event, BookTicker):
                tickers.append(event)
    assert sync.gaps == 0 and applied > 3000
    matched = [t for t in tickers if t.update_id in best_at]
    assert len(matched) == 564  # counted in this recording: tickers whose u is some diff's final u
    for t in matched:
        assert best_at[t.update_id] == (t.bid, t.ask)


def test_cryptofeed_recording_syncs_all_four_symbols(fixtures):
    base = fixtures / "recorded" / "cryptofeed"
    events: list[tuple[float, str, bytes]] = []
    for line in (base / "BINANCE.ws.1.0").read_bytes().splitlines()[1:]:
        if not line.strip():
            continue
        ts, _, payload = line.partition(b": ")
        events.append((float(ts), "ws", payload))
    for line in (base / "BINANCE.http.0.0").read_bytes().splitlines():
        if not line.strip():
            continue
        head, _, body = line.partition(b": ")
        url, _, ts = head.partition(b" -> ")
        events.append((float(ts), url.decode().split("symbol=")[1].split("&")[0], body))
    events.sort(key=lambda e: e[0])
    syncs: dict[str, BookSync] = {}
    for _, kind, payload in events:
        if kind == "ws":
            if b"@kline_" in payload[:40]:
                continue  # klines are not decoded (not market depth)
            event = decode(payload)
            if isinstance(event, DepthDiff):
                sync = syncs.setdefault(event.symbol, BookSync(event.symbol))
                assert sync.on_diff(event) is not Outcome.GAP
                assert not (sync.synced and sync.book.crossed)
        else:
            assert syncs[kind].on_snapshot(decode_snapshot(payload)) is Outcome.SYNCED
    assert sorted(syncs) == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]
    assert all(s.synced and s.gaps == 0 for s in syncs.values())


def test_a_book_is_trusted_only_once_the_stream_advanced_it_past_its_snapshot():
    sync = BookSync("T")
    sync.on_diff(diff(90, 95))
    assert sync.on_snapshot(DepthSnapshot(95, ((9.0, 1.0),), ((11.0, 1.0),))) is Outcome.SYNCED
    assert sync.synced and not sync.trusted  # one REST answer; nothing has continued it yet
    assert sync.on_diff(diff(96, 96)) is Outcome.APPLIED
    assert sync.trusted


def test_a_snapshot_ahead_of_every_diff_is_stuck_after_max_ignored_diffs_and_discarded():
    """A server whose snapshot lastUpdateId is far ahead of the stream: every diff is 'old', the book would
    stay frozen at the snapshot while the market moves."""
    sync = BookSync("T", max_ignored=5)
    sync.on_diff(diff(90, 95))
    assert sync.on_snapshot(DepthSnapshot(10**9, ((9.0, 1.0),), ((11.0, 1.0),))) is Outcome.SYNCED
    outcomes = [sync.on_diff(diff(96 + i, 96 + i)) for i in range(5)]
    assert outcomes == [Outcome.IGNORED] * 4 + [Outcome.STUCK]
    assert not sync.synced and not sync.trusted and len(sync.book) == 0
    assert sync.state is SyncState.NEEDS_SNAPSHOT  # the stuck diff is buffered for the next snapshot
    assert sync.on_snapshot(DepthSnapshot(100, ((9.0, 1.0),), ((11.0, 1.0),))) is Outcome.SYNCED
    assert sync.on_diff(diff(101, 101)) is Outcome.APPLIED and sync.trusted


def test_a_few_old_diffs_after_a_snapshot_are_normal_and_reset_by_an_applied_one():
    sync = BookSync("T", max_ignored=3)
    sync.on_diff(diff(90, 95))
    sync.on_snapshot(DepthSnapshot(100, ((9.0, 1.0),), ((11.0, 1.0),)))
    assert sync.on_diff(diff(96, 97)) is Outcome.IGNORED
    assert sync.on_diff(diff(98, 99)) is Outcome.IGNORED  # two in a row: below max_ignored
    assert sync.on_diff(diff(100, 101)) is Outcome.APPLIED
    assert sync.on_diff(diff(90, 91)) is Outcome.IGNORED and sync.on_diff(diff(92, 93)) is Outcome.IGNORED
    assert sync.on_diff(diff(102, 102)) is Outcome.APPLIED and sync.synced
