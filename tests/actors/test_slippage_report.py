"""The report's slippage section: the PnL attribution on a trade whose parts are known, the bucket table and
criterion against a drift model, and the plot."""

from __future__ import annotations

import msgspec
import pytest

from actors.core import slippage
from actors.tools.slippage_report import attribute, section, verdict
from actors.tools.trades import FillLine

FX = 1400.0


def _leg(**kw) -> FillLine:
    base = dict(
        t_s=1.0,
        fill_ratio=1.0,
        available_volume=5.0,
        decided_t_s=1.0,
        premium_bps=0.0,
        trade_id=1,
        leg="entry",
        order_qty=1.0,
        filled_qty=1.0,
        slippage_bps=0.0,
        fee=0.0,
        fx_krw_per_usdt=FX,
        predicted_slippage_bps=0.0,
    )
    return FillLine(**{**base, **kw})


def test_attribution_of_a_trade_with_known_parts():
    # entry: sell 1 BTC on Upbit, decided at 140.7M KRW, the touch fell to 140.6M, filled at 140.5M; buy 1 BTC
    # on Binance decided at 100,000, touch unchanged, filled at 100,010. Exit at the decision prices, no slippage.
    legs = [
        _leg(
            venue="upbit",
            side="SELL",
            quote_ccy="KRW",
            decision_price=140.7e6,
            best_price=140.6e6,
            avg_price=140.5e6,
            fee=70_250.0,
            fee_ccy="KRW",
        ),
        _leg(
            venue="binance",
            side="BUY",
            quote_ccy="USDT",
            decision_price=100_000.0,
            best_price=100_000.0,
            avg_price=100_010.0,
            fee=0.001,
            fee_ccy="BTC",
        ),
        _leg(
            leg="exit",
            venue="upbit",
            side="BUY",
            quote_ccy="KRW",
            decision_price=140.0e6,
            best_price=140.0e6,
            avg_price=140.0e6,
            fee=0.0,
            fee_ccy="KRW",
        ),
        _leg(
            leg="exit",
            venue="binance",
            side="SELL",
            quote_ccy="USDT",
            decision_price=100_000.0,
            best_price=100_000.0,
            avg_price=100_000.0,
            fee=0.0,
            fee_ccy="USDT",
            trade_pnl_usdt=123.0,
        ),
    ]
    a = attribute(legs)
    assert a is not None and a.trades == 1 and a.pnl_usdt == 123.0
    assert a.latency_usdt == pytest.approx(-0.1e6 / FX)  # the Upbit touch fell 100,000 KRW before the sale
    assert a.slippage_usdt == pytest.approx(-0.1e6 / FX - 10.0)
    assert a.fees_usdt == pytest.approx(-70_250.0 / FX - 0.001 * 100_010.0)
    assert a.premium_usdt + a.fees_usdt + a.slippage_usdt + a.latency_usdt == pytest.approx(123.0)
    assert (
        attribute(
            [
                _leg(
                    venue="upbit",
                    side="SELL",
                    quote_ccy="KRW",
                    best_price=1.0,
                    avg_price=1.0,
                    fee_ccy="KRW",
                    trade_pnl_usdt=1.0,
                )
            ]
        )
        is None
    )  # no decision prices: no attribution


def test_section_judges_buckets_against_the_model(tmp_path):
    legs = [
        _leg(
            trade_id=i,
            venue="binance",
            side="BUY",
            quote_ccy="USDT",
            best_price=1.0,
            avg_price=1.0,
            fee_ccy="BTC",
            order_qty=0.3,
            predicted_slippage_bps=1.0,
            slippage_bps=1.0 + (0.5 if i % 2 else 0.7),
        )
        for i in range(30)
    ]
    model = slippage.build([msgspec.structs.asdict(leg) for leg in legs], "m1")
    lines = section(legs, model, "m1 (drift.json)", tmp_path / "slip.png")
    text = "\n".join(lines)
    assert "Criterion S1" in text and "1 of 1 buckets (100%) agree: PASS" in text
    assert "| binance | BUY | 0.25-0.5 | 30 |" in text and "0.600" in text
    assert (tmp_path / "slip.png").read_bytes()[:4] == b"\x89PNG"
    no_model = "\n".join(section(legs, None, None, None))
    assert "0 of 1 buckets (0%) agree: **FAIL**" in no_model  # a 0.6 bps drift the predictions did not expect
    assert verdict([]).passed is None
