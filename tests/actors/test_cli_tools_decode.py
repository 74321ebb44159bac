"""python -m actors.tools.decode over folders and files of mixed frames: order books printed, the venue's
other messages counted by kind and skipped, exit 0 unless nothing decoded or a frame is malformed (2, bad
input); frames that cannot be decoded shown a few per file, then counted."""

from __future__ import annotations

import json
import random
from pathlib import Path

from actors.tools.decode import main

DIFF = json.dumps(
    {
        "stream": "btcusdt@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": 1723161253937,
            "s": "BTCUSDT",
            "U": 50093239189,
            "u": 50093239201,
            "b": [["61000.01", "0.5"], ["60999.99", "0"]],
            "a": [["61000.02", "1.25"]],
        },
    }
)
TRADE = json.dumps(
    {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": 1723161253940, "s": "BTCUSDT", "t": 1, "p": "61000.02", "q": "0.01",
                 "T": 1723161253939, "m": False, "M": True},
    }
)  # fmt: skip
ACK = '{"result":null,"id":1}'
KLINE = json.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}}})
UPBIT_BOOK = json.dumps(
    {
        "type": "orderbook",
        "code": "KRW-BTC",
        "timestamp": 1723161253937,
        "total_ask_size": 1.5,
        "total_bid_size": 2.0,
        "orderbook_units": [{"ask_price": 84000000, "bid_price": 83990000, "ask_size": 1.5, "bid_size": 2.0}],
        "stream_type": "REALTIME",
        "level": 0,
    }
)
UPBIT_TICKER = json.dumps(
    {"type": "ticker", "code": "KRW-BTC", "trade_price": 84000000, "change": "RISE", "timestamp": 1723161253937,
     "stream_type": "REALTIME"}
)  # fmt: skip
UPBIT_STATUS = '{"status":"UP"}'


def _folder(path: Path, frames: dict[str, str]) -> Path:
    path.mkdir()
    for name, frame in frames.items():
        (path / name).write_text(frame + "\n")
    return path


def _decode(capsys, *args: str) -> tuple[int, list[dict], list[str]]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err.splitlines()


def test_a_binance_folder_prints_the_book_and_counts_the_rest(tmp_path, capsys):
    folder = _folder(
        tmp_path / "binance",
        {"1_depth.json": DIFF, "2_trade.json": TRADE, "3_ack.json": ACK, "4_kline.json": KLINE, "notes.md": "x"},
    )
    status, events, err = _decode(capsys, "--venue", "binance", str(folder))
    assert status == 0
    assert [e["event"] for e in events] == ["DepthDiff"] and events[0]["first_id"] == 50093239189
    assert err == [
        "decode: skipped 1 kline frame, 1 subscription ack, 1 trade frame "
        "(not order books; --all prints those the codec decodes)"
    ]
    status, events, err = _decode(capsys, "--venue", "binance", "--all", str(folder))
    assert status == 0 and [e["event"] for e in events] == ["DepthDiff", "Trade", "ControlReply"]
    assert err == ["decode: skipped 1 kline frame (kinds the codec does not decode)"]


def test_an_upbit_folder_prints_the_book_and_counts_the_rest(tmp_path, capsys):
    folder = _folder(
        tmp_path / "upbit", {"book.json": UPBIT_BOOK, "status.json": UPBIT_STATUS, "ticker.json": UPBIT_TICKER}
    )
    status, events, err = _decode(capsys, "--venue", "upbit", str(folder))
    assert status == 0 and [e["event"] for e in events] == ["Orderbook"] and events[0]["code"] == "KRW-BTC"
    assert err == [
        "decode: skipped 1 status frame, 1 ticker frame (not order books; --all prints those the codec decodes)"
    ]


def test_lines_with_timestamps_count_each_kind(tmp_path, capsys):
    lines = tmp_path / "frames.txt"
    frames = [DIFF, TRADE, TRADE, ACK, ACK, ACK, DIFF]
    lines.write_text("".join(f"{1723161253937085768 + i} {frame}\n" for i, frame in enumerate(frames)))
    status, events, err = _decode(capsys, "--venue", "binance", str(lines))
    assert status == 0 and [e["event"] for e in events] == ["DepthDiff", "DepthDiff"]
    assert err == [
        "decode: skipped 3 subscription acks, 2 trade frames (not order books; --all prints those the codec decodes)"
    ]


def test_nothing_decoded_or_a_malformed_frame_fails(tmp_path, capsys):
    only_trades = _folder(tmp_path / "trades", {"a.json": TRADE, "b.json": ACK})
    status, events, err = _decode(capsys, "--venue", "binance", str(only_trades))
    assert status == 2 and events == []
    assert err[0].startswith("decode: skipped 1 subscription ack, 1 trade frame")
    assert err[1] == f"decode: no order-book frame in {only_trades}"
    # a malformed trade is malformed (the codec decodes trades), not a skipped kind
    broken = tmp_path / "broken.txt"
    broken.write_text(f'{DIFF}\n{TRADE.replace("61000.02", "NaN")}\nnot json\n{{"e": 7}}\n{UPBIT_BOOK}\n')
    status, events, err = _decode(capsys, "--venue", "binance", str(broken))
    assert status == 2 and [e["event"] for e in events] == ["DepthDiff"]
    assert [line.split(": cannot decode: ")[0] for line in err[:3]] == [f"{broken}:{n}" for n in (2, 3, 4)]
    assert err[3:] == [f"{broken}: 1 more frame cannot be decoded (4 of 5)"]  # the first three, then a count
    # the other venue's frames are not recognised messages of this one
    status, events, err = _decode(capsys, "--venue", "upbit", str(_folder(tmp_path / "b2", {"d.json": DIFF})))
    assert (
        status == 2 and events == [] and err[0].endswith("not an Upbit server message (no type, status or error field)")
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "capture.bin").write_bytes(b"\0")
    status, _events, err = _decode(capsys, "--venue", "upbit", str(empty))
    assert status == 2 and err == [f"{empty}: is a folder without frame files (.json, .jsonl, .txt)"]


def test_a_megabyte_of_random_bytes_is_one_line_naming_the_file_and_the_problem(tmp_path, capsys):
    """1 MB of random bytes (about 4,000 'lines'): one line, the file, the problem, the first three bad lines and
    the count, where every bad line used to be a line of its own."""
    noise = tmp_path / "capture.txt"
    noise.write_bytes(random.Random(24).randbytes(1_000_000))
    status, events, err = _decode(capsys, "--venue", "binance", str(noise), str(noise))
    assert status == 2 and events == []
    assert len(err) == 2 and err[0] == err[1]  # one line per file
    assert err[0].startswith(f"{noise}: not a file of binance frames: none of its ")
    assert "frames decodes (line 1: not a Binance frame: JSON is malformed" in err[0]
    assert err[0].count("; line ") == 2 and len(err[0]) < 1000
