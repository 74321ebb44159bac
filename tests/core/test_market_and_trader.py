"""Market view, strategy signals and the trader, driven by scripted views (plain sync tests)."""

import attrs
import pytest

from actors.core.book import BookView
from actors.core.execution import ExecutionParams
from actors.core.fills import BUY, SELL, Fees, SimpleFillModel
from actors.core.market import MarketState, premium_bps
from actors.core.portfolio import Portfolio
from actors.core.risk import RiskLimits
from actors.core.strategy import (
    BUY_KRW,
    SELL_KRW,
    Baseline,
    StrategyParams,
    entry_signal,
    executable_premiums,
    exit_signal,
    vwap,
)
from actors.core.trader import Trader

FX = 1400.0
NO_FEES = Fees(0.0, 0.0)


def books(t: float, premium: float, usdt_mid: float = 50_000.0, krw_depth: float = 1.0, usdt_depth: float = 2.0):
    krw_mid = usdt_mid * FX * (1 + premium / 1e4)
    krw = BookView("upbit", "KRW-BTC", ((krw_mid - 500, krw_depth),), ((krw_mid + 500, krw_depth),), t)
    usdt = BookView("binance", "BTCUSDT", ((usdt_mid - 0.005, usdt_depth),), ((usdt_mid + 0.005, usdt_depth),), t)
    fx = BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e6),), ((FX + 0.5, 1e6),), t)
    return krw, usdt, fx


def market() -> MarketState:
    return MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))


def portfolio() -> Portfolio:
    return Portfolio.of("upbit", 1e10, 10.0, "binance", 1e7, 10.0)


def trader(entry=10.0, tp=12.0, qty=0.5, fees=NO_FEES, **kw) -> Trader:
    params = StrategyParams(
        entry,
        tp,
        qty,
        baseline_halflife_s=1000,
        warmup_s=1,
        max_hold_s=kw.pop("max_hold_s", 60),
        max_book_age_s=kw.pop("max_book_age_s", 5.0),
        zones=kw.pop("zones", ()),
    )
    execution = ExecutionParams(kw.pop("latency_ms", 0.0), 0.0, kw.pop("leg_risk", "hedge"), fees)
    return Trader(
        params,
        "sid",
        0.0,
        kw.pop("portfolio", portfolio()),
        SimpleFillModel(),
        execution,
        kw.pop("risk", RiskLimits()),
        seed=1,
    )


def run(t: Trader, script):
    state = market()
    events = []
    for at, premium, krw_depth in script:
        for b in books(at, premium, krw_depth=krw_depth):
            state.update(b)
        events += t.on_view(state.view(at), "2026-01-01T00:00:00+00:00")
    return events


def test_premium_uses_the_fx_book_or_a_fixed_rate():
    state = market()
    for b in books(1.0, 25.0):
        state.update(b)
    view = state.view(1.5)
    assert view.premium_bps == pytest.approx(25.0, abs=1e-6)
    assert view.fx.source == "upbit:KRW-USDT" and view.fx_age_s() == 0.5
    fixed = MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), None, 1386.0)
    krw, usdt, _ = books(1.0, 0.0)
    fixed.update(krw)
    assert fixed.view(1.0).premium_bps is None  # one leg missing
    fixed.update(usdt)
    assert fixed.view(1.0).premium_bps == pytest.approx(premium_bps(krw.mid, usdt.mid, 1386.0))


def test_newest_input_of_a_view_includes_the_fx_book():
    """A view built because the FX book arrived counts wire-to-decision from the FX book, not from the
    older leg books (the latency KPI once measured from the legs only)."""
    state = market()
    krw, usdt, fx = books(1.0, 25.0)
    state.update(krw)
    state.update(usdt)
    state.update(attrs.evolve(fx, received_at=1.2))
    assert state.view(1.25).newest_received_at == 1.2
    state.update(attrs.evolve(krw, received_at=1.3))
    assert state.view(1.35).newest_received_at == 1.3


def test_executable_premium_walks_the_books_and_pays_both_fees():
    assert vwap(((10.0, 1.0), (11.0, 1.0)), 1.5) == pytest.approx(31 / 3)
    assert vwap(((10.0, 1.0),), 2.0) == 10.0  # capped by the visible depth
    assert vwap((), 1.0) is None
    krw, usdt, _ = books(0.0, 30.0)
    sell, buy = executable_premiums(krw.bids, krw.asks, usdt.bids, usdt.asks, 0.5, FX, 5.0, 10.0)
    expected_sell = ((krw.bids[0][0] * (1 - 5e-4)) / FX / (usdt.asks[0][0] * (1 + 1e-3)) - 1) * 1e4
    assert sell == pytest.approx(expected_sell)
    assert sell < 30 - 14.9 and buy > 30 + 14.9  # fees (15 bps) cost on both directions
    assert executable_premiums((), krw.asks, usdt.bids, (), 0.5, FX, 5, 10)[0] is None


def test_baseline_is_time_aware():
    b = Baseline(halflife_s=10)
    b.update(0.0, 0.0)
    assert b.update(100.0, 10.0) == pytest.approx(50.0)


def test_signals():
    assert entry_signal(30, 42, 50, 10).direction == SELL_KRW
    assert entry_signal(30, 10, 18, 10).direction == BUY_KRW
    assert entry_signal(30, 35, 36, 10) is None
    assert exit_signal(SELL_KRW, 42, 20, 29, 1, 12, 30).reason == "take_profit"  # 42 - 29 >= 12
    assert exit_signal(BUY_KRW, 18, 25, 40, 31, 12, 30).reason == "max_hold"
    assert exit_signal(BUY_KRW, 18, 25, 40, 1, 12, 30) is None


def test_round_trip_two_legs_each_way_with_depth_limited_exit_and_reconciled_pnl():
    """An exit leg the depth cuts short leaves the trade working, not closed: the rest is re-sent on the next
    view and the trade is booked once both venues are flat (it was once booked take_profit with 0.1 BTC left
    on Upbit's balances)."""
    t = trader(leg_risk="carry")
    script = [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 1.0)] + [(6, 30.0, 0.4)]
    events = run(t, script)
    assert [(e.leg, e.venue, e.side) for e in events] == [
        ("entry", "upbit", SELL),
        ("entry", "binance", BUY),
        ("exit", "upbit", BUY),
        ("exit", "binance", SELL),
    ]
    assert events[0].available_volume == 1.0 and events[0].filled_qty == 0.5
    exit_krw = events[2]
    assert exit_krw.available_volume == pytest.approx(0.4) and exit_krw.filled_qty == pytest.approx(0.4)
    assert exit_krw.exit_reason == "take_profit" and exit_krw.zone == "10/12"
    assert exit_krw.position_btc == pytest.approx(-0.1) and events[3].position_btc == pytest.approx(0.0)
    assert all(e.trade_pnl_usdt is None for e in events)  # 0.1 BTC still short on Upbit: not booked
    (trade,) = t.trades.values()
    assert trade.phase == "working" and t.accounts.exits == 0 and t.carried_imbalance_btc == pytest.approx(-0.1)
    events += run(t, [(7, 30.0, 1.0)])  # the book refreshed: the rest is sent again
    resent = events[4]
    assert (resent.leg, resent.venue, resent.side, resent.attempt) == ("exit", "upbit", BUY, 2)
    assert resent.order_qty == pytest.approx(0.1) and resent.position_btc == pytest.approx(0.0)
    assert (
        resent.trade_pnl_usdt is not None and not t.trades and t.accounts.exits == 1 and t.accounts.trades_worked == 1
    )
    assert (
        t.accounts.trade_pnls.total
        == pytest.approx(t.accounts.realized_pnl_usdt)
        == pytest.approx(resent.trade_pnl_usdt)
    )
    assert resent.trade_pnl_krw == pytest.approx(resent.trade_pnl_usdt * resent.fx_krw_per_usdt)
    assert t.portfolio.balances["upbit"]["BTC"] == pytest.approx(10.0)
    assert t.portfolio.balances["binance"]["BTC"] == pytest.approx(10.0)
    assert t.accounts.entries == t.accounts.exits == 1 and t.carried_imbalance_btc == 0.0


def test_fees_are_charged_in_the_right_currency_and_balances_are_conserved():
    fees = Fees(5.0, 10.0)
    t = trader(entry=2.0, tp=1.0, fees=fees, leg_risk="carry")
    events = run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 60.0, 1.0)] + [(6, 20.0, 1.0)])
    assert len(events) == 4
    by = {(e.leg, e.venue): e for e in events}
    assert by[("entry", "binance")].side == BUY and by[("entry", "binance")].fee_ccy == "BTC"
    assert by[("entry", "binance")].fee == pytest.approx(0.5 * 10e-4)
    assert by[("entry", "upbit")].fee_ccy == "KRW" and by[("exit", "binance")].fee_ccy == "USDT"
    # conservation: final = initial + flows - fees, per venue and asset
    expected = {v: dict(a) for v, a in t.portfolio.initial.items()}
    for e in events:
        quote = e.quote_ccy
        sign = 1 if e.side == BUY else -1
        expected[e.venue]["BTC"] += sign * e.filled_qty
        expected[e.venue][quote] -= sign * e.filled_qty * e.avg_price
        expected[e.venue][e.fee_ccy] -= e.fee
    for venue, assets in expected.items():
        for asset, amount in assets.items():
            assert t.portfolio.balances[venue][asset] == pytest.approx(amount, rel=1e-12)
    # the exit sold what the entry bought net of the BTC fee: no BTC left on Binance from this trade
    assert t.portfolio.balances["binance"]["BTC"] == pytest.approx(10.0)


def test_an_imbalance_is_hedged_on_the_venue_of_the_larger_leg():
    t = trader(qty=0.5)
    events = run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 0.3)])  # Upbit shows only 0.3
    legs = [(e.leg, e.venue, e.side, round(e.filled_qty, 9)) for e in events]
    assert legs == [("entry", "upbit", SELL, 0.3), ("entry", "binance", BUY, 0.5), ("hedge", "binance", SELL, 0.2)]
    assert events[-1].exit_reason == "imbalance"
    (trade,) = t.trades.values()
    assert trade.phase == "open" and trade.krw_btc + trade.usdt_btc == pytest.approx(0.0)


def test_carry_keeps_the_imbalance():
    t = trader(qty=0.5, leg_risk="carry")
    run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 0.3)])
    assert t.carried_imbalance_btc == pytest.approx(0.2)


def test_latency_meets_the_book_as_it_is_on_arrival():
    t = trader(qty=0.5, latency_ms=50)
    state = market()
    for s in range(5):
        for b in books(s, 30.0):
            state.update(b)
        t.on_view(state.view(float(s)), "")
    for b in books(5.0, 45.0):
        state.update(b)
    assert t.on_view(state.view(5.0), "") == []  # decided; legs in flight
    assert t.due_at() == pytest.approx(5.05)
    for b in books(5.02, 45.0, krw_depth=0.2):  # the book thins before the legs arrive
        state.update(b)
    t.on_view(state.view(5.02), "")
    events = t.on_timer(5.05, "")
    krw = next(e for e in events if e.venue == "upbit")
    assert krw.filled_qty == pytest.approx(0.2) and krw.latency_ms == pytest.approx(50)
    assert krw.t_s == pytest.approx(5.05) and krw.decided_t_s == 5.0


def test_liquidity_taken_is_not_available_again_until_refreshed():
    t = trader(qty=0.4, entry=10, tp=1000, max_hold_s=1, leg_risk="carry")
    state = market()
    views = [(s, 30.0) for s in range(5)] + [(5, 45.0), (6, 45.0)]
    events = []
    for at, premium in views:
        for b in books(at, premium, krw_depth=1.0):
            state.update(b)
        if at == 6:  # the same Upbit book object again: not refreshed
            state.update(books(5, 45.0, krw_depth=1.0)[0])
        events += t.on_view(state.view(float(at)), "")
    exit_krw = next(e for e in events if e.leg == "exit" and e.venue == "upbit")
    entry_krw = next(e for e in events if e.leg == "entry" and e.venue == "upbit")
    assert entry_krw.available_volume == pytest.approx(1.0)
    # the exit buys on the asks; the entry sold into the bids: different sides, nothing taken there
    assert exit_krw.available_volume == pytest.approx(1.0)


def test_refuses_stale_or_crossed_books_and_budget_shortfalls():
    t = trader(entry=10, tp=12, qty=0.5, max_book_age_s=1)
    state = market()
    for b in books(0.0, 30.0):
        state.update(b)
    t.on_view(state.view(0.0), "")
    state.update(books(5.0, 50.0)[0])
    assert t.on_view(state.view(5.0), "") == [] and t.accounts.refusals["stale"] == 1
    state.update(BookView("binance", "BTCUSDT", ((60_000.0, 1.0),), ((50_000.0, 1.0),), 5.0))
    assert t.on_view(state.view(5.0), "") == [] and t.accounts.refusals["crossed"] == 1
    poor = trader(qty=0.5, portfolio=Portfolio.of("upbit", 1e10, 0.1, "binance", 1e7, 10.0))
    run(poor, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 1.0)])  # must sell 0.5 BTC on Upbit
    assert poor.accounts.refusals["budget"] == 1 and poor.accounts.entries == 0


def test_risk_limits_stop_new_entries_and_say_so():
    t = trader(qty=0.5, risk=RiskLimits(max_notional_usdt=1000.0))
    run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 1.0)])
    assert t.accounts.entries == 0 and t.accounts.refusals["max_notional"] == 1
    t = trader(qty=0.5, risk=RiskLimits(max_loss_usdt=1e-9), max_hold_s=1, leg_risk="carry")
    run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, 45.0, 1.0), (6.5, 60.0, 1.0), (7, 10.0, 1.0), (8, 60.0, 1.0)])
    assert t.accounts.entries == 1 and t.risk_stopped is not None and "max_loss" in t.risk_stopped


def test_zone_sweep_cycles_zones_per_trade():
    t = trader(zones=((5.0, 1.0), (8.0, 1.0)), leg_risk="carry", max_hold_s=0.5)
    script = [(s, 30.0, 1.0) for s in range(0, 5)]
    for k in range(4):
        script += [(5 + 2 * k, 50.0, 1.0), (6 + 2 * k, 30.0, 1.0)]
    events = run(t, script)
    assert [e.zone for e in events if e.leg == "entry"][::2] == ["5/1", "8/1", "5/1", "8/1"]


def test_same_views_same_fill_events():
    script = [(s * 0.5, 30 + 15 * ((s // 7) % 2) * (-1) ** (s // 14), 1.0 + (s % 5) / 10) for s in range(120)]
    a = run(trader(5, 3, 0.3, max_hold_s=10), script)
    b = run(trader(5, 3, 0.3, max_hold_s=10), script)
    assert len(a) >= 4 and a == b


def test_latency_histogram_percentiles_within_two_percent():
    import random as _random

    from actors.core.kpi import LatencyHistogram

    rng = _random.Random(3)
    samples = [rng.lognormvariate(-7, 1.0) for _ in range(20_000)]  # ~1 ms median
    hist = LatencyHistogram()
    for x in samples:
        hist.add(x)
    ordered = sorted(samples)
    for q in (0.5, 0.99, 0.999):
        exact = ordered[max(0, int(q * len(ordered)) - 1)]
        assert exact <= hist.percentile(q) <= exact * 1.0201
    assert hist.percentile(1.0) == max(samples) and LatencyHistogram().percentile(0.5) is None
    assert hist.as_dict_ms()["count"] == 20_000 and len(hist._buckets) < 700


def test_a_premium_beyond_the_sanity_band_is_bad_data_and_never_traded():
    """Upbit 50 % off Binance is a broken feed, not a 5,000 bps opportunity: refused and counted, no fill."""
    t = trader(risk=RiskLimits(max_premium_bps=1500.0))
    events = run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5 + s, -5000.0, 1.0) for s in range(5)])
    assert events == [] and t.accounts.entries == 0 and t.accounts.refusals["premium_band"] == 5
    # the same move inside the band is an ordinary entry
    t = trader(risk=RiskLimits(max_premium_bps=1500.0))
    assert run(t, [(s, 30.0, 1.0) for s in range(0, 5)] + [(5, -1000.0, 1.0)]) != [] and t.accounts.entries == 1


def test_a_book_out_of_price_order_is_refused_and_never_walked():
    t = trader(entry=10, tp=12, qty=0.5)
    state = market()
    for at in range(5):
        for b in books(float(at), 30.0):
            state.update(b)
        t.on_view(state.view(float(at)), "")
    krw, usdt, fx = books(5.0, 45.0)
    # a second bid level 39,000 KRW above the best ask, placed last: the best bid/ask alone look fine
    bad = BookView("upbit", "KRW-BTC", krw.bids + ((krw.asks[0][0] + 39_000, 1.0),), krw.asks, 5.0)
    for b in (bad, usdt, fx):
        state.update(b)
    assert t.on_view(state.view(5.0), "") == [] and t.accounts.entries == 0 and t.accounts.refusals["unsorted"] == 1
    state.update(krw)
    assert t.on_view(state.view(5.0), "") != [] and t.accounts.entries == 1


def test_a_hedge_is_decided_when_the_legs_it_follows_fill_not_before():
    """Entry legs that arrive on a timer, between two views, fill against the view before them; the hedge
    of their imbalance is decided at their arrival and arrives a latency later (it once took the earlier
    view's time: decided before the fills it follows, and filled before them)."""
    t = trader(latency_ms=50.0)
    state = market()
    events = []
    for at in (0.0, 1.0, 2.0):
        for b in books(at, 0.0, krw_depth=0.2):
            state.update(b)
        events += t.on_view(state.view(at), "2026-01-01T00:00:00+00:00")
    for b in books(2.1, 60.0, krw_depth=0.2):  # the premium jumps: entry, KRW leg short of depth
        state.update(b)
    events += t.on_view(state.view(2.1), "2026-01-01T00:00:00+00:00")
    while (due := t.due_at()) is not None and due < 3.0:
        events += t.on_timer(due, "2026-01-01T00:00:00+00:00")
    entries = [e for e in events if e.leg == "entry"]
    hedges = [e for e in events if e.leg == "hedge"]
    assert len(entries) == 2 and len(hedges) == 1
    last_entry = max(e.t_s for e in entries)
    assert last_entry == pytest.approx(2.15)  # arrived on the timer, after the view of 2.1
    assert hedges[0].decided_t_s == pytest.approx(last_entry) and hedges[0].t_s == pytest.approx(2.2)
