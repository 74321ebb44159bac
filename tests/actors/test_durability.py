"""Data files survive crashes: per-line flushing, torn-line repair, atomic KPI replacement."""

import json
import os

import pytest

from actors.core.trader_outputs import FillEvent
from actors.records.files import FillWriter, write_json_atomic


def event(trade_id: int) -> FillEvent:
    return FillEvent(
        t_s=0.0,
        ts_utc="",
        session_id="s",
        trade_id=trade_id,
        leg="entry",
        venue="binance",
        symbol="BTCUSDT",
        side="BUY",
        order_qty=1.0,
        filled_qty=1.0,
        fill_ratio=1.0,
        available_volume=2.0,
        limit_price=101.0,
        avg_price=100.0,
        best_price=100.0,
        slippage_bps=0.0,
        fee=0.001,
        fee_ccy="BTC",
        quote_ccy="USDT",
        zone="10/12",
        entry_bps=10.0,
        tp_bps=12.0,
        fill_model="simple",
        l2_source="multi",
        decided_t_s=0.0,
        latency_ms=0.0,
        book_age_ms=0.0,
        fx_krw_per_usdt=1380.0,
        fx_source="fixed",
        fx_age_ms=0.0,
        premium_bps=20.0,
        exec_premium_bps=5.0,
        deviation_bps=10.0,
    )


def test_every_line_is_readable_while_the_file_is_open(tmp_path):
    writer = FillWriter(tmp_path / "f.jsonl", fsync="every_line")
    for i in range(3):
        writer.write(event(i))
        lines = (tmp_path / "f.jsonl").read_text().splitlines()
        assert len(lines) == i + 1 and json.loads(lines[-1])["trade_id"] == i  # flushed per line
    writer.close()


def test_a_torn_last_line_is_cut_and_good_lines_kept(tmp_path):
    path = tmp_path / "f.jsonl"
    writer = FillWriter(path)
    for i in range(3):
        writer.write(event(i))
    writer.close()
    with open(path, "ab") as f:
        f.write(b'{"t_s":1.0,"trade_')  # a crash in the middle of a line
    writer = FillWriter(path)
    assert writer.repaired_bytes == len(b'{"t_s":1.0,"trade_')
    writer.write(event(9))
    writer.close()
    ids = [json.loads(line)["trade_id"] for line in path.read_text().splitlines()]
    assert ids == [0, 1, 2, 9]


def test_a_torn_first_line_leaves_an_empty_file(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"half')
    writer = FillWriter(path)
    writer.close()
    assert path.read_bytes() == b"" and writer.repaired_bytes == 6


def test_interval_fsync_policy(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    now = [0.0]
    writer = FillWriter(tmp_path / "f.jsonl", fsync="interval", fsync_interval_s=1.0, clock=lambda: now[0])
    writer.write(event(1))
    now[0] = 0.5
    writer.write(event(2))
    assert synced == []
    now[0] = 1.2
    writer.write(event(3))
    assert len(synced) == 1
    writer.close()
    assert len(synced) == 2  # and at close


def test_kpi_replacement_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "kpi.json"
    write_json_atomic(path, {"v": 1})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["kpi.json"]  # no temp file left behind
