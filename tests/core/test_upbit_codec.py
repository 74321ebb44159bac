"""Upbit codec: conformance over real captures, plus bad input."""

from __future__ import annotations

import ast
import json

import pytest

from actors.core.venues import FrameError
from actors.core.venues.upbit import ErrorFrame, Orderbook, Status, Trade, decode, subscribe_request


def one(frame):
    events = decode(frame)
    assert len(events) == 1
    return events[0]


def test_default_frames_with_java_number_spelling(fixtures):
    book = one((fixtures / "upbit" / "orderbook_default_snapshot_KRW-BTC_probe_2026_trimmed.json").read_bytes())
    assert isinstance(book, Orderbook) and book.snapshot and book.code == "KRW-BTC"
    assert book.asks[0] == (116539000.0, 0.02054761)  # 1.16539E8 on the wire
    assert book.bids[0] == (116538000.0, 0.08120946)
    assert book.level == 0
    realtime = one((fixtures / "upbit" / "orderbook_default_realtime_KRW-BTC_probe_2026_trimmed.json").read_bytes())
    assert not realtime.snapshot


def test_simple_frames_and_trades(fixtures):
    book = one((fixtures / "upbit" / "orderbook_simple_realtime_KRW-LAMB_15units_cryptofeed_2021_1.json").read_bytes())
    assert len(book.asks) == len(book.bids) == 15 and book.level is None
    trade = one((fixtures / "upbit" / "trade_simple_realtime_KRW-LAMB_cryptofeed_2021.json").read_bytes())
    assert isinstance(trade, Trade) and trade.price == 127.0 and trade.ask_bid == "BID"


def test_status_and_error_frames(fixtures):
    assert one((fixtures / "upbit" / "status_up_keepalive.json").read_bytes()) == Status("UP")
    for name in ("NO_TICKET", "INVALID_PARAM", "WRONG_FORMAT"):
        error = one((fixtures / "upbit" / f"error_{name}_probe_2026.json").read_bytes())
        assert isinstance(error, ErrorFrame) and error.name == name


def test_every_orderbook_frame_of_the_recording_is_sorted(fixtures):
    frames = 0
    for line in (fixtures / "recorded" / "cryptofeed" / "UPBIT.ws.62.0").read_text().splitlines()[1:]:
        _, _, payload = line.partition(": ")
        if not payload.startswith("b'"):
            continue
        for event in decode(ast.literal_eval(payload)):
            if isinstance(event, Orderbook):
                frames += 1
                assert all(a[0] < b[0] for a, b in zip(event.asks, event.asks[1:]))
                assert all(a[0] > b[0] for a, b in zip(event.bids, event.bids[1:]))
                if event.asks and event.bids:
                    assert event.bids[0][0] < event.asks[0][0]
    assert frames == 145


def test_zero_padded_units_are_dropped_and_counted():
    frame = json.dumps(
        {
            "type": "orderbook",
            "code": "BTC-X",
            "timestamp": 1,
            "stream_type": "REALTIME",
            "orderbook_units": [
                {"ask_price": 2.0, "bid_price": 1.0, "ask_size": 1.0, "bid_size": 1.0},
                {"ask_price": 3.0, "bid_price": 0, "ask_size": 1.0, "bid_size": 0},
            ],
        }
    )
    book = one(frame.encode())
    assert book.bids == ((1.0, 1.0),) and book.asks == ((2.0, 1.0), (3.0, 1.0))
    assert book.padded_levels == 1


def test_microsecond_timestamps_become_milliseconds():
    frame = b'{"ty":"orderbook","cd":"USDT-ETC","tms":1691530805062000,"obu":[]}'
    assert one(frame).timestamp_ms == 1691530805062


def test_list_format_carries_several_events():
    frame = b'[{"status":"UP"},{"ty":"orderbook","cd":"KRW-BTC","tms":1,"obu":[{"ap":2,"bp":1,"as":1,"bs":1}]}]'
    events = decode(frame)
    assert [type(e) for e in events] == [Status, Orderbook]


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"\x00\x01", "not an Upbit frame"),
        (
            b'{"type":"orderbook","code":"X","timestamp":1,"orderbook_units":[{"ask_price":-1,"bid_price":1,'
            b'"ask_size":1,"bid_size":1}]}',
            "bad ask level",
        ),
        (
            b'{"type":"orderbook","code":"X","timestamp":1,"orderbook_units":[{"ask_price":1e999,"bid_price":1,'
            b'"ask_size":1,"bid_size":1}]}',
            "not an Upbit frame",
        ),
        (b'{"type":"orderbook","code":"X","orderbook_units":[]}', "missing timestamp"),
        (b'{"type":"ticker","code":"X","timestamp":1}', "unsupported Upbit message type 'ticker'"),
        (b'[{"ticket":"x"},{"type":"orderbook","codes":["KRW-BTC"]}]', "not an Upbit server message"),
    ],
)
def test_bad_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        decode(frame)


def test_subscribe_request_shape():
    request = json.loads(subscribe_request("t-1", ("KRW-BTC", "KRW-USDT")))
    assert request == [
        {"ticket": "t-1"},
        {"type": "orderbook", "codes": ["KRW-BTC", "KRW-USDT"]},
        {"format": "DEFAULT"},
    ]


def _units(pairs):
    return [{"ask_price": a, "bid_price": b, "ask_size": 1.0, "bid_size": 1.0} for a, b in pairs]


@pytest.mark.parametrize(
    "pairs, message",
    [
        # a bid 39,000 KRW above the best ask, placed last: the first pair alone looks uncrossed
        (
            [(100_000_000, 99_999_000), (100_001_000, 99_998_000), (100_002_000, 100_039_000)],
            "bids out of order: level 3 at 1.00039e\\+08 after 9.9998e\\+07",
        ),
        ([(100_000_000, 99_999_000), (99_990_000, 99_998_000)], "asks out of order: level 2"),
        ([(100_000_000, 99_999_000), (100_000_000, 99_998_000)], "asks out of order"),  # a repeated price
    ],
)
def test_units_out_of_order_are_refused(pairs, message):
    for fmt in ("DEFAULT", "SIMPLE"):
        units = (
            _units(pairs)
            if fmt == "DEFAULT"
            else [{"ap": u["ask_price"], "bp": u["bid_price"], "as": 1.0, "bs": 1.0} for u in _units(pairs)]
        )
        frame = json.dumps(
            {
                "type" if fmt == "DEFAULT" else "ty": "orderbook",
                "code" if fmt == "DEFAULT" else "cd": "KRW-BTC",
                "timestamp" if fmt == "DEFAULT" else "tms": 1,
                "orderbook_units" if fmt == "DEFAULT" else "obu": units,
            }
        )
        with pytest.raises(FrameError, match=message):
            decode(frame.encode())
