"""Market view, strategy signals and trader accounting, driven by scripted views."""

import pytest

from actors.core.book import BookView
from actors.core.fills import BUY, SELL, SimpleFillModel
from actors.core.market import MarketState, premium_bps
from actors.core.strategy import BUY_KRW, SELL_KRW, Baseline, StrategyParams, entry_signal, exit_signal
from actors.core.trader import Trader

FX = 1400.0


def books(t: float, premium: float, usdt_mid: float = 50_000.0, depth: float = 1.0):
    krw_mid = usdt_mid * FX * (1 + premium / 1e4)
    krw = BookView("upbit", "KRW-BTC", ((krw_mid - 500, depth),), ((krw_mid + 500, depth),), t)
    usdt = BookView("binance", "BTCUSDT", ((usdt_mid - 0.005, 2 * depth),), ((usdt_mid + 0.005, 2 * depth),), t)
    fx = BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e6),), ((FX + 0.5, 1e6),), t)
    return krw, usdt, fx


def market() -> MarketState:
    return MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))


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
    assert fixed.view(1.0).fx.source == "fixed"


def test_baseline_is_time_aware():
    b = Baseline(halflife_s=10)
    b.update(0.0, 0.0)
    assert b.update(100.0, 10.0) == pytest.approx(50.0)


def test_signals():
    assert entry_signal(12, 10).direction == SELL_KRW
    assert entry_signal(-12, 10).direction == BUY_KRW
    assert entry_signal(5, 10) is None
    p = StrategyParams(10, 12, 0.1, max_hold_s=30)
    assert exit_signal(SELL_KRW, 40, 27, 1, p).reason == "take_profit"
    assert exit_signal(BUY_KRW, 40, 45, 31, p).reason == "max_hold"
    assert exit_signal(BUY_KRW, 40, 45, 1, p) is None


def run(trader: Trader, script):
    state = market()
    events = []
    for t, premium, depth in script:
        for b in books(t, premium, depth=depth):
            state.update(b)
        events += trader.on_view(state.view(t), "2026-01-01T00:00:00+00:00")
    return events


def test_round_trip_produces_two_legs_each_way_and_reconciles_pnl():
    trader = Trader(StrategyParams(10, 12, 0.5, baseline_halflife_s=1000, warmup_s=1), "sid", 0.0)
    script = [(t, 30.0, 1.0) for t in range(0, 5)] + [(5, 45.0, 1.0)] + [(6, 30.0, 0.4)]
    events = run(trader, script)
    assert [(e.leg, e.venue, e.side) for e in events] == [
        ("entry", "upbit", SELL), ("entry", "binance", BUY), ("exit", "upbit", BUY), ("exit", "binance", SELL)]
    entry_krw = events[0]
    assert entry_krw.available_volume == 1.0 and entry_krw.filled_qty == 0.5 and entry_krw.fill_ratio == 1.0
    exit_krw = events[2]
    assert exit_krw.available_volume == pytest.approx(0.4) and exit_krw.filled_qty == pytest.approx(0.4)
    assert exit_krw.exit_reason == "take_profit"
    assert events[-1].trade_pnl_usdt is not None and events[2].trade_pnl_usdt is None
    assert sum(trader.trade_pnls) == pytest.approx(trader.realized_pnl_usdt)
    assert trader.realized_pnl_usdt == pytest.approx(events[-1].trade_pnl_usdt)
    # 0.1 BTC could not be bought back on Upbit: it stays on the balances
    assert trader.balances["upbit"]["BTC"] == pytest.approx(-0.1)
    assert trader.balances["binance"]["BTC"] == pytest.approx(0.0)
    assert trader.entries == trader.exits == 1


def test_refuses_stale_or_crossed_books():
    trader = Trader(StrategyParams(10, 12, 0.5, baseline_halflife_s=1000, warmup_s=0, max_book_age_s=1), "s", 0.0)
    state = market()
    krw, usdt, fx = books(0.0, 30.0)
    for b in (krw, usdt, fx):
        state.update(b)
    trader.on_view(state.view(0.0), "")
    krw2, _, _ = books(5.0, 50.0)
    state.update(krw2)
    assert trader.on_view(state.view(5.0), "") == []  # the Binance book is 5 s old
    assert trader.refusals["stale"] == 1
    crossed = BookView("binance", "BTCUSDT", ((60_000.0, 1.0),), ((50_000.0, 1.0),), 5.0)
    state.update(crossed)
    assert trader.on_view(state.view(5.0), "") == []
    assert trader.refusals["crossed"] == 1


def test_same_views_same_fill_events():
    script = [(t * 0.5, 30 + 15 * ((t // 7) % 2) * (-1) ** (t // 14), 1.0 + (t % 5) / 10) for t in range(120)]
    a = run(Trader(StrategyParams(10, 5, 0.3, 20, 1, 10), "s", 0.0), script)
    b = run(Trader(StrategyParams(10, 5, 0.3, 20, 1, 10), "s", 0.0), script)
    assert len(a) >= 4 and a == b
