"""Positions that add up (issue 22, part 6): the pure Trader driven by scripted and by random market views.

At every step of a session: balances = initial balances + every fill's flows - fees, per venue and asset;
the BTC the balances moved is what the open trades hold plus the dust finished trades left; and every
finished trade is flat (nothing but dust, below the venue's minimum order, on either venue). Random
sessions (hypothesis: random books, premiums, latencies, fill ratios, fees, leg risk) check that on 50
short sessions; scripted ones pin the cases the issue found (an exit cut short booked take_profit, the BTC
fee of a Binance BUY left behind, a calibrated 0.26 fill ratio) and fail on the old code.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.book import BookView
from actors.core.calibration import Calibration, SideStats
from actors.core.execution import ExecutionParams
from actors.core.fills import BUY, SELL, CalibratedFillModel, Fees, FillModel, SimpleFillModel
from actors.core.ledger import left_by_trade, not_flat, reconcile, reconcile_fills, unexplained_btc
from actors.core.market import MarketState
from actors.core.portfolio import Portfolio
from actors.core.risk import RiskLimits
from actors.core.strategy import StrategyParams
from actors.core.trade import TRANSITIONS
from actors.core.trader import Trader
from actors.core.trader_outputs import FillEvent
from actors.core.vocabulary import Leg, TradePhase

FX = 1400.0
USDT_MID = 50_000.0
FEES = Fees(5.0, 10.0)
NO_LIMITS = RiskLimits()
WALL = "2026-01-01T00:00:00+00:00"


def calibrated(buy: float, sell: float) -> CalibratedFillModel:
    """A calibration whose fallback (every zone) fills ``buy`` of a BUY order and ``sell`` of a SELL."""
    return CalibratedFillModel(
        Calibration(
            "test", (), {BUY: SideStats(buy, 10, 0.0, (buy, buy)), SELL: SideStats(sell, 10, 0.0, (sell, sell))}
        )
    )


def make_trader(
    fill_model: FillModel | None = None,
    leg_risk: str = "hedge",
    fees: Fees = FEES,
    qty: float = 0.5,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    exit_retries: int = 3,
    max_hold_s: float = 3.0,
    entry_bps: float = 10.0,
    tp_bps: float = 5.0,
    slices: int = 1,
    risk: RiskLimits = NO_LIMITS,
    seed: int = 1,
) -> Trader:
    params = StrategyParams(
        entry_bps,
        tp_bps,
        qty,
        baseline_halflife_s=5.0,
        warmup_s=1.0,
        max_hold_s=max_hold_s,
        exit_retries=exit_retries,
        slices=slices,
        slice_interval_ms=100.0,
    )
    return Trader(
        params,
        "sid",
        0.0,
        Portfolio.of("upbit", 1e11, 50.0, "binance", 1e8, 50.0),
        fill_model or SimpleFillModel(),
        ExecutionParams(latency_ms, jitter_ms, leg_risk, fees),
        risk,
        seed=seed,
    )


def books(
    t: float, premium_bps: float, krw_sizes: tuple[float, ...], usdt_sizes: tuple[float, ...], fx: float = FX
) -> tuple[BookView, BookView, BookView]:
    """Upbit KRW-BTC and Binance BTCUSDT around a premium, one level per size on each side (1,000 KRW and
    0.01 USDT apart), and the KRW-USDT book of the FX rate."""
    krw_mid = USDT_MID * fx * (1 + premium_bps / 1e4)
    krw_mid = round(krw_mid / 1000) * 1000 + 500
    krw = BookView(
        "upbit",
        "KRW-BTC",
        tuple((krw_mid - 500 - 1000 * i, q) for i, q in enumerate(krw_sizes)),
        tuple((krw_mid + 500 + 1000 * i, q) for i, q in enumerate(krw_sizes)),
        t,
    )
    usdt = BookView(
        "binance",
        "BTCUSDT",
        tuple((USDT_MID - 0.005 - 0.01 * i, q) for i, q in enumerate(usdt_sizes)),
        tuple((USDT_MID + 0.005 + 0.01 * i, q) for i, q in enumerate(usdt_sizes)),
        t,
    )
    rate = BookView("upbit", "KRW-USDT", ((fx - 0.5, 1e6),), ((fx + 0.5, 1e6),), t)
    return krw, usdt, rate


@attrs.define
class Session:
    """A trader fed views and timers, every fill event kept, the ledger checked after each step."""

    trader: Trader
    state: MarketState = attrs.field(
        factory=lambda: MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))
    )
    events: list[FillEvent] = attrs.field(factory=list)
    t: float = 0.0

    def view(self, t: float, premium_bps: float, krw: tuple[float, ...], usdt: tuple[float, ...]) -> None:
        while (due := self.trader.due_at()) is not None and due < t:  # legs arriving between views
            self.events += self.trader.on_timer(due, WALL)
            self.check()
        for book in books(t, premium_bps, krw, usdt):
            self.state.update(book)
        self.events += self.trader.on_view(self.state.view(t), WALL)
        self.t = t
        self.check()

    def finished(self) -> list[int]:
        """Trades with fill events that the trader no longer holds."""
        return sorted({e.trade_id for e in self.events} - set(self.trader.trades))

    def check(self) -> None:
        t, p = self.trader, self.trader.portfolio
        recomputed = reconcile_fills(p.initial, p.balances, self.events)
        assert recomputed.ok, recomputed.failures()
        assert reconcile(p.initial, p.balances, t.accounts.flows).ok  # the trader's own running totals agree
        for venue, x in unexplained_btc(p.initial, p.balances, t.open_btc(), t.accounts.dust_btc).items():
            assert abs(x) < 1e-9, (venue, x)
        assert not_flat(left_by_trade(self.events), self.finished(), t.execution.lots) == ()
        assert all(trade.phase is not TradePhase.DONE for trade in t.trades.values())
        assert t.carried_imbalance_btc == pytest.approx(sum(x for x in t.open_btc().values()), abs=1e-12)

    def settle(self, until: float) -> None:
        """No new entries; deep, calm books once a second until every trade is out."""
        self.trader.stop_entries("settling")
        t = self.t
        while t < until and self.trader.trades:
            t += 1.0
            self.view(t, 0.0, (100.0,), (100.0,))


def test_transitions_lead_every_exiting_phase_to_done_only_through_closed():
    exiting = {TradePhase.CLOSING, TradePhase.WORKING, TradePhase.UNWINDING}
    into_done = {(phase, step) for (phase, step), to in TRANSITIONS.items() if to is TradePhase.DONE}
    assert {phase for phase, _ in into_done} == exiting | {TradePhase.OPENING}
    assert all(step.name == "CLOSED" for phase, step in into_done if phase in exiting)
    assert all(to is not TradePhase.OPEN for (phase, _), to in TRANSITIONS.items() if phase in exiting)


def test_an_exit_cut_short_is_worked_until_flat_not_booked_take_profit():
    """d85_x trade 4: an Upbit exit BUY of 0.995 BTC filled 0.70 and the trade was booked take_profit +72.79
    with 0.30 BTC short. Here the Upbit asks hold 0.35 of the 0.5 to buy back: the trade stays `working`,
    the rest is re-sent on the next view, and the trade is booked once both venues are flat."""
    s = Session(make_trader(leg_risk="carry"))
    for at in range(5):
        s.view(float(at), 0.0, (2.0,), (2.0,))
    s.view(5.0, 40.0, (2.0,), (2.0,))  # rich Upbit: sell Upbit, buy Binance
    s.view(6.0, 0.0, (0.35,), (2.0,))  # take-profit; the Upbit asks are thin
    exits = [e for e in s.events if e.leg is Leg.EXIT]
    assert {e.exit_reason for e in exits} == {"take_profit"}
    upbit = next(e for e in exits if e.venue == "upbit")
    assert upbit.filled_qty == pytest.approx(0.35) and upbit.position_btc == pytest.approx(-0.15)
    assert all(e.trade_pnl_usdt is None for e in s.events) and s.trader.accounts.exits == 0
    assert s.trader.trades[1].phase is TradePhase.WORKING
    s.view(7.0, 0.0, (0.1,), (2.0,))  # still thin: re-sent, 0.1 of 0.15
    s.view(8.0, 0.0, (2.0,), (2.0,))
    resent = [e for e in s.events if e.leg is Leg.EXIT and e.attempt > 1]
    assert [(e.attempt, round(e.order_qty, 9), round(e.filled_qty, 9)) for e in resent] == [
        (2, 0.15, 0.1),
        (3, 0.05, 0.05),
    ]
    assert resent[-1].trade_pnl_usdt is not None and not s.trader.trades and s.trader.accounts.trades_worked == 1
    assert s.trader.portfolio.balances["upbit"]["BTC"] == pytest.approx(50.0)


def test_the_btc_fee_of_a_binance_buy_is_bought_too_so_nothing_is_left():
    """Covering a Binance short with a BUY of exactly the short left the fee (0.1 % of it) short: the order
    asks for short / (1 - fee) now."""
    s = Session(make_trader(leg_risk="carry"))
    for at in range(5):
        s.view(float(at), 0.0, (2.0,), (2.0,))
    s.view(5.0, -40.0, (2.0,), (2.0,))  # cheap Upbit: buy Upbit, sell Binance
    s.view(6.0, 0.0, (2.0,), (2.0,))
    buy = next(e for e in s.events if e.leg is Leg.EXIT and e.venue == "binance")
    assert buy.side == BUY and buy.order_qty == pytest.approx(0.5 / (1 - 10e-4))
    assert buy.position_btc == pytest.approx(0.0, abs=1e-15) and not s.trader.trades
    assert s.trader.portfolio.balances["binance"]["BTC"] == pytest.approx(50.0, abs=1e-12)


def test_a_calibrated_buy_ratio_of_0_26_leaves_nothing_behind():
    """d84_2's zone 10/12 (BUY 0.2615, SELL 1.0): each trade left 0.000385 BTC on Upbit. The exit is now
    re-sent (26 % of the rest each time), then the rest hedged on the depth: the balances come back."""
    s = Session(make_trader(calibrated(0.2615, 1.0), qty=0.002, entry_bps=10.0, tp_bps=1.0))
    for at in range(5):
        s.view(float(at), 0.0, (2.0,), (2.0,))
    s.view(5.0, 150.0, (2.0,), (2.0,))  # beyond the entry threshold and the expected hedge cost
    assert s.trader.accounts.entries == 1
    s.settle(until=60.0)
    assert not s.trader.trades and s.trader.accounts.exits == 1
    legs = [(e.leg, e.venue, e.attempt) for e in s.events if e.leg is not Leg.ENTRY]
    assert ("exit", "upbit", 4) in legs and legs[-1][0] == "hedge"  # three re-sends, then the unwind
    assert s.events[-1].exit_reason == "unfilled_exit" and s.events[-1].trade_pnl_usdt is not None
    for venue in ("upbit", "binance"):
        assert s.trader.portfolio.balances[venue]["BTC"] == pytest.approx(50.0, abs=1e-4)  # dust at most


def test_an_entry_whose_hedge_would_eat_the_premium_is_refused_and_counted():
    """With a BUY ratio of 0.26 the SELL leg's 0.74 is hedged back: ~2.8 x (spread + 2 fees) of cost per unit
    held. A 30 bps deviation pays the simple model's threshold, not this one's."""
    plain = Session(make_trader(qty=0.002))
    costly = Session(make_trader(calibrated(0.26, 1.0), qty=0.002))
    for s in (plain, costly):
        for at in range(5):
            s.view(float(at), 0.0, (2.0,), (2.0,))
        s.view(5.0, 30.0, (2.0,), (2.0,))
    assert plain.trader.accounts.entries == 1 and plain.events[0].hedge_cost_bps == 0.0
    assert costly.trader.accounts.entries == 0 and costly.trader.accounts.refusals["hedge_cost"] == 1
    costly.view(6.0, 120.0, (2.0,), (2.0,))  # far enough beyond the baseline to pay for it
    entry = costly.events[0]  # the Upbit SELL, 1.0 of it filled: its surplus is bought back across the spread
    assert entry.venue == "upbit" and entry.side == SELL and entry.avg_price is not None
    spread_bps = 1000 / entry.avg_price * 1e4  # one 1,000 KRW tick
    assert costly.trader.accounts.entries == 1 and entry.hedge_cost_bps == pytest.approx(
        0.74 / 0.26 * (spread_bps + 2 * 5)
    )
    assert costly.trader.trades[1].entry_exec_bps == pytest.approx(entry.exec_premium_bps)


def test_an_imbalance_below_the_minimum_order_is_carried_and_the_exit_takes_it():
    """An imbalance of 0.00004 BTC (2 USDT) cannot be hedged on Binance (5 USDT minimum): it is carried, and
    the exit, which flattens each venue, takes it back."""
    s = Session(make_trader(fees=Fees(0.0, 0.0), qty=0.01))
    for at in range(5):
        s.view(float(at), 0.0, (2.0,), (2.0,))
    s.view(5.0, 40.0, (0.00996,), (2.0,))  # Upbit sells 0.00996 of 0.01, Binance buys 0.01
    assert [e.leg for e in s.events] == [Leg.ENTRY, Leg.ENTRY] and s.trader.trades[1].phase is TradePhase.OPEN
    assert s.trader.carried_imbalance_btc == pytest.approx(0.00004)
    s.view(6.0, 0.0, (2.0,), (2.0,))
    assert not s.trader.trades and s.trader.carried_imbalance_btc == 0.0
    assert s.trader.portfolio.balances["binance"]["BTC"] == pytest.approx(50.0)


# -- random sessions ---------------------------------------------------------------------------------

sizes = st.lists(st.floats(0.01, 1.5), min_size=1, max_size=3).map(tuple)
steps = st.lists(st.tuples(st.floats(0.05, 1.5), st.floats(-80.0, 80.0), sizes, sizes), min_size=10, max_size=40)
fill_models = st.one_of(
    st.just(SimpleFillModel()),
    st.builds(calibrated, st.floats(0.05, 1.0), st.floats(0.05, 1.0)),
)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    script=steps,
    fill_model=fill_models,
    leg_risk=st.sampled_from(["hedge", "carry"]),
    fees=st.builds(Fees, st.floats(0.0, 10.0), st.floats(0.0, 15.0)),
    latency=st.sampled_from([(0.0, 0.0), (30.0, 20.0), (400.0, 300.0)]),
    qty=st.floats(0.02, 1.0),
    exit_retries=st.integers(0, 3),
    max_notional=st.sampled_from([float("inf"), 30_000.0]),
    seed=st.integers(0, 1000),
)
def test_random_sessions_always_add_up_and_close_flat(
    script, fill_model, leg_risk, fees, latency, qty, exit_retries, max_notional, seed
):
    """50 random short sessions: the ledger checks hold after every view and every leg (``Session.check``),
    and once the market calms down every trade is out, flat, with its PnL on the leg that finished it."""
    trader = make_trader(
        fill_model,
        leg_risk,
        fees,
        qty,
        *latency,
        exit_retries=exit_retries,
        entry_bps=8.0,
        tp_bps=3.0,
        risk=RiskLimits(max_notional_usdt=max_notional),
        seed=seed,
    )
    s = Session(trader)
    t = 0.0
    for dt, premium, krw, usdt in script:
        t += dt
        s.view(t, premium, krw, usdt)
    s.settle(until=t + 60.0)
    assert not trader.trades and not trader.legs.pending
    booked = [e.trade_pnl_usdt for e in s.events if e.trade_pnl_usdt is not None]
    assert len(booked) == len(s.finished()) and sum(booked) == pytest.approx(
        trader.accounts.realized_pnl_usdt, abs=1e-6
    )
    for venue, amount in trader.portfolio.balances.items():
        dust = trader.accounts.dust_btc.get(venue, 0.0)
        assert amount["BTC"] - trader.portfolio.initial[venue]["BTC"] == pytest.approx(dust, abs=1e-9)
