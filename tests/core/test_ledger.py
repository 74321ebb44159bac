"""The ledger's arithmetic (actors.core.ledger), the venues' minimum orders and the fee a Binance BUY pays in
BTC (actors.core.fills), and the expected hedge cost of an entry (actors.core.strategy): plain values, no
trader."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.fills import Fees, Lots
from actors.core.ledger import (
    InventoryLog,
    LedgerError,
    inventory_sample,
    left_by_trade,
    not_flat,
    reconcile_fills,
    unexplained_btc,
)
from actors.core.strategy import hedge_cost_bps, round_trip_bps
from actors.core.vocabulary import Side, Venue


@attrs.frozen
class Line:
    """A fill as the ledger reads it (the fields FillEvent and the report's FillLine share)."""

    venue: Venue | None
    side: Side
    filled_qty: float
    avg_price: float | None
    quote_ccy: str
    fee: float
    fee_ccy: str
    trade_id: int | None = 1


BEFORE = {"upbit": {"KRW": 1e8, "BTC": 1.0}, "binance": {"USDT": 1e5, "BTC": 1.0}}


def test_a_fill_moves_btc_one_way_and_the_quote_the_other_and_its_fee_leaves_its_currency():
    fills = [
        Line(Venue.UPBIT, Side.SELL, 0.5, 9e7, "KRW", 22_500.0, "KRW"),
        Line(Venue.BINANCE, Side.BUY, 0.5, 6e4, "USDT", 0.0005, "BTC"),
    ]
    after = {"upbit": {"KRW": 1e8 + 4.5e7 - 22_500.0, "BTC": 0.5}, "binance": {"USDT": 1e5 - 3e4, "BTC": 1.4995}}
    r = reconcile_fills(BEFORE, after, fills)
    assert r.ok and r.fills == 2
    rows = {(row.venue, row.asset): row for row in r.rows}
    assert rows[("upbit", "KRW")].flows == 4.5e7 and rows[("upbit", "KRW")].fees == 22_500.0
    assert rows[("binance", "BTC")].flows == 0.5 and rows[("binance", "BTC")].fees == 0.0005
    assert rows[("binance", "USDT")].flows == -3e4


def test_a_balance_the_fills_do_not_explain_is_a_residual():
    fills = [Line(Venue.UPBIT, Side.BUY, 0.3, 9e7, "KRW", 0.0, "KRW")]
    after = {"upbit": {"KRW": 1e8 - 2.7e7, "BTC": 1.3}, "binance": {"USDT": 1e5, "BTC": 1.0}}
    assert reconcile_fills(BEFORE, after, fills).ok
    lost = {"upbit": {"KRW": 1e8 - 2.7e7, "BTC": 1.0}, "binance": {"USDT": 1e5, "BTC": 1.0}}  # the BTC went missing
    r = reconcile_fills(BEFORE, lost, fills)
    assert not r.ok
    (row,) = r.failures()
    assert (row.venue, row.asset) == ("upbit", "BTC") and row.residual == pytest.approx(-0.3)
    # a hair of float rounding is not a residual, a satoshi on 1 BTC is
    assert reconcile_fills(BEFORE, {**after, "binance": {"USDT": 1e5 + 1e-8, "BTC": 1.0}}, fills).ok
    assert not reconcile_fills(BEFORE, {**after, "binance": {"USDT": 1e5, "BTC": 1.0 + 1e-8}}, fills).ok


def test_a_fill_the_ledger_cannot_account_for_is_a_named_error():
    with pytest.raises(LedgerError, match="needs a venue, a price and a quote"):
        reconcile_fills(BEFORE, BEFORE, [Line(Venue.UPBIT, Side.BUY, 0.1, None, "KRW", 0.0, "KRW")])
    with pytest.raises(LedgerError, match="quote"):
        reconcile_fills(BEFORE, BEFORE, [Line(Venue.UPBIT, Side.BUY, 0.1, 9e7, "EUR", 0.0, "KRW")])
    with pytest.raises(LedgerError, match="fee"):
        reconcile_fills(BEFORE, BEFORE, [Line(Venue.UPBIT, Side.BUY, 0.1, 9e7, "KRW", 1.0, "DOGE")])
    assert reconcile_fills(BEFORE, BEFORE, [Line(Venue.UPBIT, Side.BUY, 0.0, None, "", 0.0, "")]).ok  # nothing filled


def test_what_a_trade_left_is_judged_against_the_venue_minimum_order():
    lots = Lots()
    fills = [
        Line(Venue.UPBIT, Side.SELL, 0.5, 9e7, "KRW", 0.0, "KRW", trade_id=1),
        Line(Venue.BINANCE, Side.BUY, 0.5, 6e4, "USDT", 0.0005, "BTC", trade_id=1),
        Line(Venue.UPBIT, Side.BUY, 0.49997, 9e7, "KRW", 0.0, "KRW", trade_id=1),  # 0.00003 BTC = 2,700 KRW: dust
        Line(Venue.BINANCE, Side.SELL, 0.4995, 6e4, "USDT", 0.0, "USDT", trade_id=1),
        Line(Venue.UPBIT, Side.SELL, 0.2, 9e7, "KRW", 0.0, "KRW", trade_id=2),
        Line(Venue.UPBIT, Side.BUY, 0.1, 9e7, "KRW", 0.0, "KRW", trade_id=2),  # 0.1 BTC short: not flat
    ]
    left = left_by_trade(fills)
    assert left[1]["upbit"].btc == pytest.approx(-0.00003) and left[1]["binance"].btc == pytest.approx(0.0, abs=1e-15)
    assert not_flat(left, [1], lots) == ()
    (short,) = not_flat(left, [1, 2], lots)
    assert (short.trade_id, short.venue, short.btc) == (2, "upbit", pytest.approx(-0.1))
    assert lots.min_order_btc(Venue.UPBIT, 9e7) == pytest.approx(5000 / 9e7)
    assert lots.min_order_btc(Venue.BINANCE, 6e4) == pytest.approx(5 / 6e4)
    assert lots.min_order_btc(Venue.BINANCE, 1e9) == 1e-5  # the lot, where the minimum value is less
    assert lots.is_dust(Venue.UPBIT, 0.0, 0.0)  # nothing is dust, even without a price


@given(net=st.floats(1e-6, 10.0), rate_bps=st.floats(0.0, 30.0))
def test_a_binance_buy_asks_for_what_delivers_the_btc_net_of_its_fee(net, rate_bps):
    fees = Fees(5.0, rate_bps)
    qty = fees.order_for(Venue.BINANCE, Side.BUY, net)
    fee, ccy = fees.charge(Venue.BINANCE, Side.BUY, qty, 6e4)
    assert ccy == "BTC" and qty - fee == pytest.approx(net, rel=1e-12)
    assert fees.order_for(Venue.BINANCE, Side.SELL, net) == net == fees.order_for(Venue.UPBIT, Side.BUY, net)


def test_unexplained_btc_is_what_neither_open_trades_nor_dust_hold():
    after = {"upbit": {"KRW": 0.0, "BTC": 0.7}, "binance": {"USDT": 0.0, "BTC": 1.3}}
    assert unexplained_btc(BEFORE, after, {"upbit": -0.3, "binance": 0.3}, {}) == pytest.approx(
        {"upbit": 0.0, "binance": 0.0}
    )
    lost = unexplained_btc(BEFORE, after, {"upbit": 0.0, "binance": 0.3}, {"upbit": 1e-5})
    assert lost["upbit"] == pytest.approx(-0.30001) and lost["binance"] == pytest.approx(0.0)


def test_inventory_is_marked_to_market_and_its_log_stays_bounded_and_evenly_spaced():
    after = {"upbit": {"KRW": 1e8 + 9e6, "BTC": 0.9}, "binance": {"USDT": 1e5 - 6e3, "BTC": 1.1}}
    # Upbit's BTC at 62,000 USDT (its mid through the FX rate: a 3.3 % premium), Binance's at 60,000
    marks = {
        ("upbit", "KRW"): 1 / 1500,
        ("upbit", "BTC"): 9.3e7 / 1500,
        ("binance", "USDT"): 1.0,
        ("binance", "BTC"): 6e4,
    }
    sample = inventory_sample(12.0, BEFORE, after, marks)
    assert sample.change["upbit"]["BTC"] == pytest.approx(-0.1) and sample.net_btc == pytest.approx(0.0)
    assert sample.value_usdt == pytest.approx(6000 - 0.1 * 62_000 - 6000 + 0.1 * 60_000)  # -200
    with pytest.raises(LedgerError, match="no mark for BTC on binance"):
        inventory_sample(12.0, BEFORE, after, {k: v for k, v in marks.items() if k != ("binance", "BTC")})
    log = InventoryLog(interval_s=1.0, max_samples=10)
    for t in range(1000):
        if log.due(float(t)):
            log.add(inventory_sample(float(t), BEFORE, BEFORE, marks))
    times = [s.t_s for s in log.samples]
    assert len(times) <= 10 and times[0] == 0.0 and times[-1] >= 1000 - 2 * log.interval_s
    gaps = {b - a for a, b in zip(times, times[1:])}
    assert gaps == {log.interval_s} and log.interval_s == 128.0  # 1 s doubled 7 times


def test_the_expected_hedge_cost_is_the_unmatched_share_times_the_round_trip():
    # a BUY leg expected to fill 0.26, its SELL partner 1.0 on the KRW venue: 0.74 is bought back there
    assert hedge_cost_bps(1.0, 0.26, 12.0, 99.0) == pytest.approx(0.74 / 0.26 * 12.0)
    assert hedge_cost_bps(0.26, 1.0, 99.0, 21.0) == pytest.approx(0.74 / 0.26 * 21.0)
    assert hedge_cost_bps(0.9, 0.9, 12.0, 21.0) == 0.0
    assert hedge_cost_bps(0.0, 1.0, 12.0, 21.0) == math.inf  # the entry would hold nothing
    # the round trip: the spread crossed and the fee twice, in bps of the entry's price
    bids, asks = ((99.0, 1.0),), ((101.0, 1.0),)
    assert round_trip_bps(bids, asks, 0.5, 5.0) == pytest.approx(2.0 / 99.0 * 1e4 + 10.0)
    assert round_trip_bps((), asks, 0.5, 5.0) == math.inf


@settings(max_examples=50, deadline=None)
@given(
    fills=st.lists(
        st.tuples(
            st.sampled_from([Venue.UPBIT, Venue.BINANCE]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.floats(0.0, 5.0),
            st.floats(1e3, 1e8),
        ),
        max_size=40,
    )
)
def test_balances_applied_fill_by_fill_always_reconcile(fills):
    """Whatever the fills, applying each to the balances as the portfolio does leaves no residual."""
    from actors.core.portfolio import Portfolio

    fees = Fees(5.0, 10.0)
    portfolio = Portfolio.of("upbit", 1e8, 1.0, "binance", 1e5, 1.0)
    lines = []
    for venue, side, qty, price in fills:
        quote = venue.quote
        fee, ccy = fees.charge(venue, side, qty, price)
        if qty:
            portfolio.apply(venue, side, qty, price, quote, fee, ccy)
        lines.append(Line(venue, side, qty, price if qty else None, quote, fee if qty else 0.0, ccy))
    assert reconcile_fills(portfolio.initial, portfolio.balances, lines).ok
