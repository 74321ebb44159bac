"""Trades rebuilt from fill events (actors.tools.trades): direction, size, fees in USDT, weighted slippage, how
each trade ended, the session totals, the drawdown of an equity curve and trades_<id>.csv. Synthetic legs
with hand-checked figures; no session."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.core.vocabulary import Direction
from actors.tools.trades import (
    CSV_COLUMNS,
    NOTHING_FILLED,
    OPEN_AT_END,
    FillLine,
    max_drawdown,
    realized_curve,
    rebuild_trades,
    totals,
    write_trades_csv,
)

ROOT = Path(__file__).resolve().parents[2]
FX = 1400.0


def leg(trade_id: int, leg: str, venue: str, side: str, filled: float, price: float, t_s: float, **kw: Any) -> dict:
    """One fill-event line as the collector writes it (docs/file-formats.md), fees as the simulator charges them."""
    krw = venue == "upbit"
    fee, fee_ccy = (
        (filled * price * 0.0005, "KRW")
        if krw
        else (filled * 0.001, "BTC")
        if side == "BUY"
        else (filled * price * 0.001, "USDT")
    )
    line = {
        "t_s": t_s,
        "ts_utc": f"2026-01-01T00:{int(t_s) // 60:02d}:{int(t_s) % 60:02d}.000000+00:00",
        "session_id": "s",
        "trade_id": trade_id,
        "leg": leg,
        "venue": venue,
        "symbol": "KRW-BTC" if krw else "BTCUSDT",
        "side": side,
        "order_qty": kw.pop("order_qty", filled),
        "filled_qty": filled,
        "fill_ratio": 1.0,
        "available_volume": 1.0,
        "limit_price": price,
        "avg_price": price if filled else None,
        "best_price": price,
        "slippage_bps": 0.0,
        "fee": fee if filled else 0.0,
        "fee_ccy": fee_ccy if filled else ("KRW" if krw else "USDT"),
        "quote_ccy": "KRW" if krw else "USDT",
        "zone": "10/12",
        "entry_bps": 10.0,
        "tp_bps": 12.0,
        "fill_model": "simple",
        "l2_source": "multi",
        "decided_t_s": t_s - 0.03,
        "latency_ms": 30.0,
        "book_age_ms": 1.0,
        "fx_krw_per_usdt": FX,
        "fx_source": "upbit:KRW-USDT",
        "fx_age_ms": 1.0,
        "premium_bps": 40.0,
        "exec_premium_bps": 30.0 if leg == "entry" else 5.0,
        "deviation_bps": 20.0,
        "exit_reason": "imbalance" if leg == "hedge" else None,
        "trade_pnl_usdt": None,
        "trade_pnl_krw": None,
    }
    line.update(kw)
    return line


def sample_legs() -> list[dict]:
    """Four trades: 1 sells Upbit, half its Binance leg fills and a hedge buys the rest back, take profit; 2 buys
    Upbit and is still open; 3 fills nothing; 4 buys Upbit and closes at max hold with a loss."""
    return [
        leg(1, "entry", "upbit", "SELL", 0.002, 84_000_000.0, 10.0),
        leg(1, "entry", "binance", "BUY", 0.001, 60_000.0, 10.1, order_qty=0.002, slippage_bps=2.0),
        leg(1, "hedge", "upbit", "BUY", 0.001, 84_010_000.0, 10.05),
        leg(1, "exit", "upbit", "BUY", 0.001, 83_900_000.0, 20.0, exit_reason="take_profit"),
        leg(
            1,
            "exit",
            "binance",
            "SELL",
            0.001,
            60_010.0,
            20.1,
            exit_reason="take_profit",
            trade_pnl_usdt=0.05,
            trade_pnl_krw=70.0,
        ),
        leg(2, "entry", "binance", "SELL", 0.002, 60_100.0, 30.0),
        leg(2, "entry", "upbit", "BUY", 0.002, 84_100_000.0, 30.0),
        leg(3, "entry", "upbit", "SELL", 0.0, 84_000_000.0, 40.0, order_qty=0.002),
        leg(3, "entry", "binance", "BUY", 0.0, 60_000.0, 40.0, order_qty=0.002, trade_pnl_usdt=0.0, trade_pnl_krw=0.0),
        leg(4, "entry", "upbit", "BUY", 0.002, 84_000_000.0, 50.0),
        leg(4, "entry", "binance", "SELL", 0.002, 60_000.0, 50.0),
        leg(4, "exit", "upbit", "SELL", 0.002, 83_800_000.0, 80.0, exit_reason="max_hold"),
        leg(
            4,
            "exit",
            "binance",
            "BUY",
            0.002,
            60_050.0,
            80.0,
            exit_reason="max_hold",
            trade_pnl_usdt=-0.4,
            trade_pnl_krw=-560.0,
        ),
    ]


def lines(dicts: list[dict]) -> list[FillLine]:
    return [msgspec.convert(d, FillLine) for d in dicts]


def test_a_trade_is_rebuilt_from_its_legs():
    one, two, three, four = rebuild_trades(lines(sample_legs()))
    assert one.trade_id == 1 and one.direction is Direction.SELL_KRW
    assert one.direction_words == "buy Binance / sell Upbit" and four.direction_words == "buy Upbit / sell Binance"
    assert (one.opened_t_s, one.opened_utc) == (
        10.0,
        "2026-01-01T00:00:10.000000+00:00",
    )  # the first leg, not the entry
    assert (one.closed_t_s, one.closed_utc) == (20.1, "2026-01-01T00:00:20.000000+00:00")
    # Upbit sold 0.002 and bought 0.001 back; Binance bought 0.001: 0.001 BTC held on each venue
    assert one.order_btc == 0.002 and one.size_btc == pytest.approx(0.001)
    assert (one.entry_premium_bps, one.exit_premium_bps) == (30.0, 5.0)
    # KRW fees at the leg's FX rate, the BTC fee of the Binance BUY at its price, the USDT fee as it is
    krw_fees = (0.002 * 84_000_000 + 0.001 * 84_010_000 + 0.001 * 83_900_000) * 0.0005
    assert one.fees_usdt == pytest.approx(krw_fees / FX + 0.001 * 0.001 * 60_000 + 0.001 * 60_010 * 0.001)
    assert one.slippage_bps == pytest.approx(2.0 * 0.001 / 0.006)  # weighted by filled quantity: 0.006 BTC filled
    assert (one.exit_reason, one.pnl_usdt, one.pnl_krw, one.legs) == ("take_profit", 0.05, 70.0, 5)
    assert one.notional_usdt == pytest.approx(
        (0.002 * 84_000_000 + 0.001 * 84_010_000 + 0.001 * 83_900_000) / FX + 0.001 * 60_000 + 0.001 * 60_010
    )
    assert one.closed
    assert two.exit_reason == OPEN_AT_END and two.pnl_usdt is None and two.closed_t_s is None and not two.closed
    assert two.direction is Direction.BUY_KRW and two.exit_premium_bps is None
    assert three.exit_reason == NOTHING_FILLED and three.pnl_usdt == 0.0 and not three.closed
    assert three.size_btc == 0.0 and three.fees_usdt == 0.0 and three.slippage_bps is None
    assert four.exit_reason == "max_hold" and four.pnl_usdt == -0.4


def test_lines_without_a_trade_id_are_left_out():
    bare = {k: v for k, v in sample_legs()[0].items() if k != "trade_id"}
    assert rebuild_trades(lines([bare])) == ()


def test_totals_over_the_trades():
    t = totals(rebuild_trades(lines(sample_legs())))
    assert (t.trades, t.closed, t.open, t.no_position, t.wins) == (4, 2, 1, 1, 1)
    assert t.win_rate == 0.5 and t.average_usdt == pytest.approx((0.05 - 0.4) / 2)
    assert t.best is not None and t.best.trade_id == 1 and t.worst is not None and t.worst.trade_id == 4
    assert t.realized_usdt == pytest.approx(-0.35)
    trades = rebuild_trades(lines(sample_legs()))
    assert t.fees_usdt == pytest.approx(sum(x.fees_usdt for x in trades)) and t.fees_usdt > 0
    assert t.turnover_usdt == pytest.approx(sum(x.notional_usdt for x in trades))
    empty = totals(())
    assert empty.win_rate is None and empty.best is None and empty.average_usdt is None


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    dd = max_drawdown([(0.0, 0.0), (1.0, 2.0), (2.0, -1.0), (3.0, 3.0), (4.0, 2.5)])
    assert dd is not None and (dd.depth_usdt, dd.peak_t_s, dd.peak_usdt, dd.trough_t_s, dd.trough_usdt) == (
        3.0,
        1.0,
        2.0,
        2.0,
        -1.0,
    )
    rising = max_drawdown([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)])
    assert rising is not None and rising.depth_usdt == 0.0
    assert max_drawdown([]) is None
    # the realized curve: a step from (0, 0) at each finished trade, in closing order
    curve = realized_curve(rebuild_trades(lines(sample_legs())))
    assert curve == [(0.0, 0.0), (20.1, 0.05), (40.0, 0.05), (80.0, pytest.approx(-0.35))]


def _documented_columns() -> list[str]:
    """The columns docs/file-formats.md lists under ``trades_<id>.csv``."""
    doc = (ROOT / "docs" / "file-formats.md").read_text()
    section = doc.split("## `trades_<id>.csv`")[1].split("\n## ")[0]
    cells = re.findall(r"^\| (`[^|]+) \|", section, flags=re.M)
    return [name for cell in cells for name in re.findall(r"`(\w+)`", cell)]


def test_trades_csv_has_a_header_and_a_row_per_trade(tmp_path):
    legs = sample_legs()
    legs[1]["slippage_bps"] = 4.1e-17  # floating-point noise is written as 0
    path = write_trades_csv(tmp_path / "trades_s.csv", rebuild_trades(lines(legs)))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert _documented_columns() == list(CSV_COLUMNS)
    table = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["trade_id"] for r in table] == ["1", "2", "3", "4"]
    assert table[0]["direction"] == "buy Binance / sell Upbit" and table[0]["exit_reason"] == "take_profit"
    assert table[0]["slippage_bps"] == "0.0" and table[0]["size_btc"] == "0.001"
    assert table[1]["exit_reason"] == OPEN_AT_END and table[1]["pnl_usdt"] == "" and table[1]["closed_t_s"] == ""
    assert table[2]["exit_reason"] == NOTHING_FILLED and table[3]["pnl_krw"] == "-560.0"
