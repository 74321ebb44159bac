"""Depth-aware sizing (against a brute-force search over both books), the participation cap, split entries
that stop when the premium closes, and the slippage each leg was predicted at its decision."""

from __future__ import annotations

import random

import attrs
import pytest

from actors.core.book import BookView
from actors.core.execution import ExecutionParams
from actors.core.fills import Fees, SimpleFillModel
from actors.core.market import MarketState
from actors.core.portfolio import Portfolio
from actors.core.risk import RiskLimits
from actors.core.sizing import entry_scales, largest_clearing_qty
from actors.core.slippage import DriftStats, SlippageModel, bucket_of
from actors.core.strategy import StrategyParams, executable_premiums, vwap
from actors.core.trader import Trader
from actors.core.vocabulary import Direction, Side

FX = 1400.0
FEES = Fees(5.0, 10.0)


def _book(rng: random.Random, best: float, step: float, sign: int, n: int) -> tuple[tuple[float, float], ...]:
    return tuple((best + sign * i * step * rng.uniform(0.5, 1.5), rng.uniform(0.01, 0.8)) for i in range(n))


def _margin(bids, asks, sell_scale, buy_scale, q):
    return sell_scale * vwap(bids, q) * q - buy_scale * vwap(asks, q) * q


@pytest.mark.parametrize("seed", range(40))
def test_largest_clearing_qty_matches_a_brute_force_search(seed):
    rng = random.Random(seed)
    bids = _book(rng, 100.0, 0.02, -1, rng.randint(1, 12))
    asks = _book(rng, 99.7 + rng.uniform(0, 0.5), 0.02, 1, rng.randint(1, 12))
    bids = tuple(sorted(bids, reverse=True))
    asks = tuple(sorted(asks))
    cap = rng.uniform(0.1, 5.0)
    limit = min(cap, sum(s for _, s in bids), sum(s for _, s in asks))
    q = largest_clearing_qty(bids, asks, 1.0, 1.0, cap)
    step = 1e-4
    brute = 0.0
    x = step
    while x <= limit + 1e-12:
        if _margin(bids, asks, 1.0, 1.0, x) >= -1e-9:
            brute = x
        x += step
    assert q == pytest.approx(brute, abs=step * 1.01)
    assert q <= limit + 1e-9
    if q > 1e-9:
        assert _margin(bids, asks, 1.0, 1.0, q) >= -1e-6  # q itself clears


def test_sizing_stops_where_the_walked_premium_meets_the_threshold():
    # KRW bids 80 bps above the USDT asks, falling 5 bps a level; USDT asks rising 1 bp a level
    bids = tuple((140_000_000 * 1.008 * (1 - 5e-4 * i), 0.1) for i in range(20))  # 80 bps above
    asks = tuple((100_000 * (1 + 1e-4 * i), 0.1) for i in range(20))
    sell_scale, buy_scale = entry_scales(Direction.SELL_KRW, 30.0, FX, 5.0, 10.0)
    q = largest_clearing_qty(bids, asks, sell_scale, buy_scale, 2.0)
    premium = executable_premiums(bids, (), (), asks, q, FX, 5.0, 10.0)[0]
    more = executable_premiums(bids, (), (), asks, q + 0.01, FX, 5.0, 10.0)[0]
    assert 0 < q < 2.0 and premium == pytest.approx(30.0, abs=1e-6) and more < 30.0


# -- through the trader --------------------------------------------------------------------------


def _books(t, premium, levels=20, size=0.1, krw_step_bps=5.0, usdt_step_bps=1.0, usdt_mid=100_000.0):
    krw_mid = usdt_mid * FX * (1 + premium / 1e4)
    krw = BookView(
        "upbit",
        "KRW-BTC",
        tuple((krw_mid * (1 - krw_step_bps * (i + 0.5) / 1e4), size) for i in range(levels)),
        tuple((krw_mid * (1 + krw_step_bps * (i + 0.5) / 1e4), size) for i in range(levels)),
        t,
    )
    usdt = BookView(
        "binance",
        "BTCUSDT",
        tuple((usdt_mid * (1 - usdt_step_bps * (i + 0.5) / 1e4), size) for i in range(levels)),
        tuple((usdt_mid * (1 + usdt_step_bps * (i + 0.5) / 1e4), size) for i in range(levels)),
        t,
    )
    fx = BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e6),), ((FX + 0.5, 1e6),), t)
    return krw, usdt, fx


def _trader(**kw) -> Trader:
    params = StrategyParams(
        10.0,
        12.0,
        0.01,
        baseline_halflife_s=1e6,
        warmup_s=1,
        max_hold_s=1e6,
        max_slippage_bps=kw.pop("max_slippage_bps", 50.0),
        sizing=kw.pop("sizing", "depth"),
        max_order_qty_btc=kw.pop("max_qty", 2.0),
        max_depth_share=kw.pop("share", 1.0),
        slices=kw.pop("slices", 1),
        slice_interval_ms=kw.pop("interval_ms", 0.0),
    )
    return Trader(
        params,
        "sid",
        0.0,
        Portfolio.of("upbit", 1e12, 100.0, "binance", 1e9, 100.0),
        SimpleFillModel(),
        ExecutionParams(kw.pop("latency_ms", 0.0), 0.0, "hedge", FEES),
        RiskLimits(),
        seed=1,
        drift=kw.pop("drift", None) or Trader.__attrs_attrs__.drift.default.factory(),
    )


def _run(trader: Trader, script, **books_kw):
    state = MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))
    events = []
    for at, premium in script:
        for b in _books(at, premium, **books_kw):
            state.update(b)
        events += trader.on_view(state.view(at), "2026-01-01T00:00:00+00:00")
    return events


def _brute_force_size(premium, threshold, max_qty, max_slippage_bps, **books_kw):
    krw, usdt, _ = _books(0.0, premium, **books_kw)
    krw = attrs.evolve(krw, bids=tuple(lv for lv in krw.bids if lv[0] >= krw.bids[0][0] * (1 - max_slippage_bps / 1e4)))
    usdt = attrs.evolve(
        usdt, asks=tuple(lv for lv in usdt.asks if lv[0] <= usdt.asks[0][0] * (1 + max_slippage_bps / 1e4))
    )
    best = 0.0
    q = 0.0001
    max_qty = min(max_qty, sum(s for _, s in krw.bids), sum(s for _, s in usdt.asks))  # beyond: a partial fill
    while q <= max_qty + 1e-12:
        sell = executable_premiums(krw.bids, krw.asks, usdt.bids, usdt.asks, q, FX, 5.0, 10.0)[0]
        if sell is not None and sell >= threshold - 1e-9:
            best = q
        q = round(q + 0.0001, 10)
    return best


def test_depth_sizing_takes_the_largest_size_that_clears_against_a_brute_force_reference():
    for max_slippage_bps in (100.0, 30.0):  # the premium bounds the size, then the limit price does
        trader = _trader(max_slippage_bps=max_slippage_bps)
        # baseline learns 0 bps for 2 s, then the premium jumps to 60 bps: entry threshold 0 + 10 bps
        events = _run(trader, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 60.0)])
        entries = [e for e in events if e.leg == "entry"]
        assert len(entries) == 2
        expected = _brute_force_size(60.0, trader.baseline.value + 10.0, 2.0, max_slippage_bps)
        assert entries[0].order_qty == pytest.approx(expected, abs=1.1e-4)
    trader = _trader(max_slippage_bps=100.0)
    events = _run(trader, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 60.0)])
    entries = [e for e in events if e.leg == "entry"]
    assert 0.05 < entries[0].order_qty < 2.0  # limited by the premium, not the cap
    assert {e.qty_planned for e in entries} == {entries[0].order_qty}
    # the walk at the decision predicted what the fill got (no latency, no drift)
    for e in entries:
        assert e.predicted_slippage_bps == pytest.approx(e.slippage_bps, abs=1e-9)
        assert e.predicted_slippage_bps > 0 and e.levels_walked >= 2
        assert (e.parent_id, e.child) == (e.trade_id, 1)
        assert e.predicted_depth_left_btc == pytest.approx(e.available_volume - e.filled_qty, abs=1e-9)


def test_participation_cap_limits_the_share_of_visible_depth():
    capped = _trader(share=0.25, max_slippage_bps=10.0)
    events = _run(capped, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 200.0)])
    qty = next(e for e in events if e.leg == "entry").order_qty
    # within 10 bps of the best: Binance asks rise 1 bp a level (10 levels of 0.1), Upbit bids 5 bps (3 levels)
    krw, usdt, _ = _books(2.1, 200.0)
    krw_within = sum(s for p, s in krw.bids if p >= krw.bids[0][0] * (1 - 10e-4))
    assert qty == pytest.approx(0.25 * krw_within, abs=1e-8)
    free = _trader(share=1.0, max_slippage_bps=10.0)
    events = _run(free, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 200.0)])
    assert next(e for e in events if e.leg == "entry").order_qty == pytest.approx(krw_within, abs=1e-8)


def test_depth_sizing_refuses_below_the_minimum_size():
    trader = _trader()
    _run(trader, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 15.01)])  # fees 15 bps: nothing clears 10 bps
    assert trader.accounts.entries == 0


def test_split_entry_sends_children_while_the_premium_clears_and_stops_when_it_closes():
    trader = _trader(slices=4, interval_ms=500, max_qty=0.4)
    script = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 200.0), (2.6, 200.0), (3.1, 0.0), (3.2, 0.0)]
    events = _run(trader, script)
    entries = [e for e in events if e.leg == "entry"]
    assert sorted({e.child for e in entries}) == [1, 2]  # the third child met a closed premium
    assert trader.accounts.parents_stopped == 1 and trader.accounts.children_sent == 2
    assert all(e.qty_planned == pytest.approx(0.4) and e.order_qty == pytest.approx(0.1) for e in entries)
    assert trader.accounts.entry_filled_btc == pytest.approx(0.4)  # two children, two legs of 0.1 each
    exits = [e for e in events if e.leg == "exit"]  # the closed premium is also a take-profit
    assert exits and all(
        e.order_qty == pytest.approx(0.2, abs=1e-3) for e in exits
    )  # less a BTC fee  # what the two children got


def test_split_entry_sends_every_child_when_the_premium_stays():
    trader = _trader(slices=3, interval_ms=200, max_qty=0.3)
    script = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)] + [(2.1 + 0.1 * i, 200.0) for i in range(10)]
    events = _run(trader, script)
    children = [e.child for e in events if e.leg == "entry"]
    assert children == [1, 1, 2, 2, 3, 3] and trader.accounts.parents_stopped == 0
    assert sum(e.filled_qty for e in events if e.leg == "entry" and e.side == "BUY") == pytest.approx(0.3)


def test_children_meet_the_liquidity_earlier_children_took():
    # one level of 0.1 a side at each price: the second child has to go one level deeper
    trader = _trader(slices=2, interval_ms=100, max_qty=0.2, sizing="depth")
    script = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 300.0), (2.2, 300.0)]
    events = _run(trader, script)
    first, second = (
        [e for e in events if e.leg == "entry" and e.venue == "binance" and e.child == c][0] for c in (1, 2)
    )
    assert second.avg_price > first.avg_price  # the level the first child bought is gone until refreshed
    assert second.predicted_slippage_bps == pytest.approx(second.slippage_bps, abs=1e-9)


def test_drift_model_shrinks_the_size():
    plain = _trader()
    _run(plain, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 60.0)])
    drift = SlippageModel(
        "t",
        {},
        {(v, s): DriftStats(3.0, 50, 1.0, (2.7, 3.3)) for v in ("upbit", "binance") for s in (Side.BUY, Side.SELL)},
    )
    worse = _trader(drift=drift)
    _run(worse, [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.1, 60.0)])
    assert 0 < worse.accounts.planned_qty_btc < plain.accounts.planned_qty_btc
    assert bucket_of(0.005) == 0 and bucket_of(0.01) == 0 and bucket_of(0.011) == 1 and bucket_of(5.0) == 7


def test_drift_model_round_trips_and_judges_buckets():
    from actors.core import slippage

    rng = random.Random(3)

    def legs(n, drift, qty=0.3):
        return [
            {
                "venue": "binance",
                "side": "BUY",
                "order_qty": qty,
                "filled_qty": qty,
                "predicted_slippage_bps": (p := rng.uniform(0, 2)),
                "slippage_bps": p + rng.gauss(drift, 0.2),
            }
            for _ in range(n)
        ]

    model = slippage.build(legs(200, 0.5), "t1", ("a.jsonl",))
    again = slippage.from_dict(slippage.to_dict(model))
    assert again == model and again.expected_bps("binance", Side.BUY, 0.3) == pytest.approx(0.5, abs=0.05)
    assert again.expected_bps("upbit", Side.BUY, 0.3) == 0.0  # nothing measured there
    same = slippage.check(legs(60, 0.5), model)
    shifted = slippage.check(legs(60, 1.0), model)
    few = slippage.check(legs(5, 3.0), model)
    assert [c.agrees for c in same] == [True] and [c.agrees for c in shifted] == [False] and few[0].agrees is None
    assert slippage.check(legs(60, 0.5))[0].agrees is False  # without a model a 0.5 bps drift is a miss
    with pytest.raises(ValueError):
        slippage.from_dict({**slippage.to_dict(model), "kind": "fill_ratio"})
