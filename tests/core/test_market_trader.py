"""The market's trader (issue 26): one Trader per pair over one portfolio, caps across pairs, statistics per pair,
and a ledger that adds up over every pair (balances after = before + every fill of every pair; each closed trade
flat in its coin), on scripted and on random multi-pair sessions."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.book import BookView
from actors.core.execution import ExecutionParams
from actors.core.fills import Fees, SimpleFillModel
from actors.core.ledger import left_by_trade, not_flat, reconcile, reconcile_fills, unexplained_btc
from actors.core.market import Markets
from actors.core.market_outputs import merged_flows
from actors.core.market_trader import MarketCaps, MarketTrader
from actors.core.pairs import Pair
from actors.core.portfolio import Portfolio
from actors.core.refusals import Refusal
from actors.core.risk import RiskLimits
from actors.core.strategy import StrategyParams
from actors.core.trader import Trader
from actors.core.trader_outputs import FillEvent
from actors.core.vocabulary import Side

FX = 1400.0
FEES = Fees(5.0, 10.0)
NO_CAPS = MarketCaps()
WALL = "2026-01-01T00:00:00+00:00"
BTC, ETH, XRP = Pair.of("BTC"), Pair.of("ETH"), Pair.of("XRP")
USDT_MID = {BTC: 50_000.0, ETH: 2_500.0, XRP: 0.5}
QTY = {BTC: 0.5, ETH: 10.0, XRP: 50_000.0}  # 25,000 USDT each, 35 M KRW


def make_trader(pair: Pair, portfolio: Portfolio, latency_ms: float = 50.0, fees: Fees = FEES, **kw) -> Trader:
    params = StrategyParams(
        kw.pop("entry_bps", 10.0),
        kw.pop("tp_bps", 5.0),
        kw.pop("qty", QTY[pair]),
        baseline_halflife_s=5.0,
        warmup_s=1.0,
        max_hold_s=kw.pop("max_hold_s", 3.0),
        exit_retries=3,
    )
    execution = ExecutionParams(latency_ms, kw.pop("jitter_ms", 0.0), kw.pop("leg_risk", "hedge"), fees)
    return Trader(params, "sid", 0.0, portfolio, SimpleFillModel(), execution, kw.pop("risk", RiskLimits()), seed=1)


def market_portfolio(krw: float = 1e11, usdt: float = 1e8, pairs: tuple[Pair, ...] = (BTC, ETH, XRP)) -> Portfolio:
    return Portfolio.of_market(
        "upbit", krw, "binance", usdt, {p.base: (1e6 / USDT_MID[p], 1e6 / USDT_MID[p]) for p in pairs}
    )


def make_market(pairs=(BTC, ETH), caps: MarketCaps = NO_CAPS, portfolio: Portfolio | None = None, **kw) -> MarketTrader:
    portfolio = portfolio or market_portfolio()
    return MarketTrader({p: make_trader(p, portfolio, **kw) for p in pairs}, caps)


def pair_books(pair: Pair, t: float, premium_bps: float, depth: float = 3.0) -> tuple[BookView, BookView]:
    """A pair's Upbit and Binance books around ``premium_bps``, one level a side of ``depth`` times its size."""
    mid = USDT_MID[pair]
    krw_mid = mid * FX * (1 + premium_bps / 1e4)
    q = QTY[pair] * depth
    krw = BookView("upbit", pair.upbit_code, ((krw_mid * 0.99995, q),), ((krw_mid * 1.00005, q),), t)
    usdt = BookView("binance", pair.binance_symbol, ((mid * 0.99999, q),), ((mid * 1.00001, q),), t)
    return krw, usdt


@attrs.define
class Session:
    """A market trader fed the views of a ``Markets`` and its timers, every fill event kept and checked."""

    market: MarketTrader
    markets: Markets = attrs.field(init=False)
    events: list[FillEvent] = attrs.field(factory=list)
    lowest: dict[tuple[str, str], float] = attrs.field(factory=dict)  # the lowest KRW and USDT seen

    def __attrs_post_init__(self) -> None:
        self.markets = Markets.of(self.market.pairs)

    def step(self, t: float, premiums: dict[Pair, float], depth: float = 3.0) -> None:
        while (due := self.market.due_at()) is not None and due < t:
            self.events += self.market.on_timer(due, WALL)
            self.check()
        for pair, premium in premiums.items():
            for book in pair_books(pair, t, premium, depth):
                self.markets.update(book)
        self.markets.update(BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e9),), ((FX + 0.5, 1e9),), t))
        for view in self.markets.publish(t):
            self.events += self.market.on_view(view, WALL)
            self.check()

    def check(self) -> None:
        m, p = self.market, self.market.portfolio
        assert reconcile_fills(p.initial, p.balances, self.events).ok  # every fill of every pair
        flows = merged_flows(tuple(t.accounts.flows for t in m.traders.values()))
        assert reconcile(p.initial, p.balances, flows).ok  # the traders' own running totals, summed
        for pair, trader in m.traders.items():
            moved = unexplained_btc(p.initial, p.balances, trader.open_btc(), trader.accounts.dust_btc, pair.base)
            assert all(abs(x) < 1e-9 * max(1.0, p.initial["upbit"][pair.base]) for x in moved.values()), (pair, moved)
        finished = sorted({e.trade_id for e in self.events} - {i for t in m.traders.values() for i in t.trades})
        lots = next(iter(m.traders.values())).execution.lots
        assert not_flat(left_by_trade(self.events), finished, lots) == ()  # each closed trade flat in its coin
        for key in (("upbit", "KRW"), ("binance", "USDT")):
            self.lowest[key] = min(self.lowest.get(key, float("inf")), p.balances[key[0]][key[1]])

    def warm(self, until: int = 5) -> None:
        for t in range(until):
            self.step(float(t), dict.fromkeys(self.market.pairs, 0.0))


def test_one_pair_in_a_market_decides_as_the_trader_alone():
    """The same views to a Trader and to a MarketTrader of that one pair: the same fill events."""
    alone = make_trader(BTC, market_portfolio(pairs=(BTC,)))
    market = make_market((BTC,), portfolio=market_portfolio(pairs=(BTC,)))
    s = Session(market)
    views = []
    for t, premium in enumerate([0, 0, 0, 0, 0, -40, -40, 0, 0, 30, 30, 0, 0, 0, 0, 0]):
        s.step(float(t), {BTC: float(premium)})
        views.append(market.last_view)
    events = []
    for view in views:
        while (due := alone.due_at()) is not None and due < view.at:
            events += alone.on_timer(due, WALL)
        events += alone.on_view(view, WALL)
    assert len(events) >= 8 and [e.as_dict() for e in events] == [e.as_dict() for e in s.events]
    assert market.statistics().entries == alone.statistics().entries == 2


def test_two_entries_that_need_more_krw_than_there_is_the_second_is_refused_for_budget():
    """BTC and ETH both signal a cheap Upbit at once: each entry buys 35 M KRW of its coin, there are 50 M KRW.
    BTC's legs are in flight when ETH decides: ETH is refused for its budget (the KRW is held for BTC's legs),
    not overdrawn."""
    market = make_market(caps=MarketCaps(max_open_trades=2), portfolio=market_portfolio(krw=50e6))
    s = Session(market)
    s.warm()
    s.step(5.0, {BTC: -40.0, ETH: -40.0})
    btc, eth = market.traders[BTC], market.traders[ETH]
    assert len(btc.trades) == 1 and not eth.trades
    assert eth.accounts.refusals[Refusal.BUDGET] == 1 and btc.accounts.refusals[Refusal.BUDGET] == 0
    assert market.portfolio.reserved[("upbit", "KRW")] == pytest.approx(0.5 * 50_000 * FX * 0.99, rel=0.02)
    for t in (6.0, 7.0, 8.0, 9.0, 10.0):
        s.step(t, {BTC: 0.0, ETH: 0.0})
    assert s.lowest[("upbit", "KRW")] >= 0.0 and market.portfolio.reserved == {}
    rows = {row.pair: row for row in market.statistics().pairs}
    assert rows[ETH].refusals[Refusal.BUDGET] == 1 and rows[ETH].entries == 0 and rows[BTC].entries == 1
    assert rows[BTC].exits == 1 and rows[BTC].fills == 4 and rows[ETH].fills == 0


def test_max_open_trades_across_pairs_refuses_the_second_pair_and_counts_it_there():
    market = make_market((BTC, ETH, XRP), caps=MarketCaps(max_open_trades=2))
    s = Session(market)
    s.warm()
    s.step(5.0, {BTC: 40.0, ETH: 40.0, XRP: 40.0})
    assert [len(market.traders[p].trades) for p in (BTC, ETH, XRP)] == [1, 1, 0]
    assert market.traders[XRP].accounts.refusals[Refusal.MARKET_CAP] == 1
    assert market.statistics().refusals[Refusal.MARKET_CAP] == 1 and market.open_trades() == 2
    ids = sorted(t for p in (BTC, ETH) for t in market.traders[p].trades)
    assert ids == [1, 2]  # trade ids are the market's
    for t in (6.0, 7.0, 8.0, 9.0):  # both exit on the premium's return
        s.step(t, {BTC: 0.0, ETH: 0.0, XRP: 40.0 if t < 9 else 0.0})
    assert market.statistics().exits == 2 and market.traders[XRP].accounts.entries == 1  # room once one closed
    assert len({e.trade_id for e in s.events}) == 3


@pytest.mark.parametrize(
    ("caps", "entered"),
    [
        (MarketCaps(max_open_trades=3, max_pair_exposure_usdt=20_000.0), [0, 0, 0]),  # each entry is 25,000 USDT
        (MarketCaps(max_open_trades=3, max_pair_exposure_usdt=30_000.0), [1, 1, 1]),
        (MarketCaps(max_open_trades=3, max_total_exposure_usdt=60_000.0), [1, 1, 0]),
    ],
)
def test_exposure_caps_per_pair_and_in_total(caps, entered):
    market = make_market((BTC, ETH, XRP), caps=caps)
    s = Session(market)
    s.warm()
    s.step(5.0, {BTC: 40.0, ETH: 40.0, XRP: 40.0})
    assert [len(market.traders[p].trades) for p in (BTC, ETH, XRP)] == entered
    capped = market.statistics().refusals.get(Refusal.MARKET_CAP, 0)
    assert capped == entered.count(0)


def test_the_market_loss_limit_stops_every_pair():
    market = make_market(caps=MarketCaps(max_open_trades=2), risk=RiskLimits(max_loss_usdt=1e-9))
    s = Session(market)
    s.warm()
    s.step(5.0, {BTC: 40.0, ETH: 0.0})
    s.step(6.0, {BTC: 40.0, ETH: 0.0})  # marked: fees paid, a loss
    s.step(7.0, {BTC: 40.0, ETH: 40.0})
    assert market.risk_stopped is not None and not market.traders[ETH].trades
    assert market.traders[ETH].accounts.refusals[Refusal.RISK_STOPPED] >= 1


def test_statistics_per_pair_and_the_inventory_of_the_shared_balances():
    market = make_market(caps=MarketCaps(max_open_trades=2))
    s = Session(market)
    s.warm()
    for t, p in ((5.0, 40.0), (6.0, 40.0), (7.0, 0.0), (8.0, 0.0), (20.0, 0.0)):
        s.step(t, {BTC: p, ETH: -p})
    stats = market.statistics()
    rows = {row.pair: row for row in stats.pairs}
    assert tuple(rows) == (BTC, ETH)
    assert rows[BTC].views == rows[ETH].views == 10
    assert rows[BTC].premium_bps.mean == pytest.approx(8.0, abs=0.01) and rows[ETH].premium_bps.mean == pytest.approx(
        -8.0, abs=0.01
    )
    assert stats.entries == 2 and stats.exits == 2 and stats.fill_events == len(s.events)
    assert stats.realized_pnl_usdt == pytest.approx(rows[BTC].realized_pnl_usdt + rows[ETH].realized_pnl_usdt)
    assert {e.base_ccy for e in s.events} == {"BTC", "ETH"}
    assert all("base_ccy" not in e.as_dict() for e in s.events if e.base_ccy == "BTC")
    assert stats.inventory_now is not None and len(stats.inventory.samples()) >= 2
    assert set(stats.inventory_now.change["upbit"]) == {"KRW", "BTC", "ETH", "XRP"}
    fill_ratio, _ = market.fill_spreads()
    assert fill_ratio[Side.BUY].count + fill_ratio[Side.SELL].count == len(s.events)


def test_the_executor_interface_routes_timers_to_the_due_pairs_only():
    market = make_market(caps=MarketCaps(max_open_trades=2))
    s = Session(market)
    s.warm()
    s.step(5.0, {BTC: 40.0, ETH: 0.0})
    assert market.due_at() == pytest.approx(5.05)
    assert market.on_timer(5.01, WALL) == []
    events = market.on_timer(5.05, WALL)
    assert {e.symbol for e in events} == {"KRW-BTC", "BTCUSDT"} and market.due_at() == pytest.approx(5.1)  # a hedge
    market.stop_entries("disk: full")
    assert market.risk_stopped == "disk: full" and all(t.risk_stopped == "disk: full" for t in market.traders.values())


def test_a_trader_not_sharing_the_portfolio_is_refused():
    with pytest.raises(ValueError, match="share"):
        MarketTrader({BTC: make_trader(BTC, market_portfolio()), ETH: make_trader(ETH, market_portfolio())})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([-60.0, -25.0, 0.0, 0.0, 25.0, 60.0]),
            st.sampled_from([-60.0, 0.0, 60.0]),
            st.sampled_from([0.3, 1.0, 3.0]),
        ),
        min_size=4,
        max_size=25,
    ),
    latency_ms=st.sampled_from([0.0, 30.0, 400.0]),
    jitter_ms=st.sampled_from([0.0, 20.0]),
    leg_risk=st.sampled_from(["hedge", "carry"]),
    open_trades=st.integers(1, 3),
    krw=st.sampled_from([50e6, 1e11]),
)
def test_random_market_sessions_add_up(steps, latency_ms, jitter_ms, leg_risk, open_trades, krw):
    """Random premiums and depths on three pairs, random latencies, leg risk, caps and KRW: after every view and
    leg, the shared balances are the balances before plus every fill of every pair, each coin's move is what the
    open trades hold plus the dust, and each closed trade is flat in its coin."""
    market = make_market(
        (BTC, ETH, XRP),
        caps=MarketCaps(max_open_trades=open_trades),
        portfolio=market_portfolio(krw=krw),
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        leg_risk=leg_risk,
    )
    s = Session(market)
    s.warm(3)
    for i, (p1, p2, depth) in enumerate(steps):
        s.step(3.0 + i, {BTC: p1, ETH: p2, XRP: -p1}, depth)
    market.stop_entries("settling")
    t = 3.0 + len(steps)
    while any(tr.trades for tr in market.traders.values()) and t < 3.0 + len(steps) + 30:
        t += 1.0
        s.step(t, dict.fromkeys(market.pairs, 0.0), 10.0)
    assert not any(tr.trades for tr in market.traders.values())
    assert market.portfolio.reserved == {}


async def test_the_executor_drives_a_market_trader(autojump_clock):
    """The executor actor takes a MarketTrader as it takes a Trader: views of two pairs in, both pairs' fill
    events out, legs filled at their arrival on the virtual clock."""
    import trio

    from actors.core.market import MarketView
    from actors.executor import ExecutorState, run_executor

    market = make_market(caps=MarketCaps(max_open_trades=2))
    markets = Markets.of(market.pairs)
    views_send, views_recv = trio.open_memory_channel[MarketView](16)
    fills_send, fills_recv = trio.open_memory_channel[FillEvent](1024)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_executor, views_recv, fills_send, ExecutorState(market))
            for t in range(8):
                await trio.sleep_until(float(t))
                premium = 40.0 if t == 5 else 0.0
                for pair in market.pairs:
                    for book in pair_books(pair, float(t), premium):
                        markets.update(book)
                markets.update(BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e9),), ((FX + 0.5, 1e9),), float(t)))
                for view in markets.publish(float(t)):
                    await views_send.send(view)
            await views_send.aclose()
    fills_send.close()  # the executor's supervisor frame closes it in a session
    events = [e async for e in fills_recv]
    assert {e.base_ccy for e in events} == {"BTC", "ETH"}
    assert market.statistics().exits == 2 and market.due_at() is None
    assert all(e.decided_t_s == 5.0 and e.t_s == pytest.approx(5.05) for e in events if e.leg == "entry")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([-60.0, -12.0, -5.0, 0.0, 5.0, 12.0, 60.0]),
            st.sampled_from([-60.0, -9.0, 0.0, 9.0, 60.0]),
            st.sampled_from([0.001, 0.3, 3.0]),
        ),
        min_size=4,
        max_size=25,
    ),
    latency_ms=st.sampled_from([0.0, 30.0]),
    open_trades=st.integers(1, 3),
)
def test_skimming_the_views_no_entry_can_come_of_changes_no_fill(steps, latency_ms, open_trades):
    """A market's pairs refuse a view inside the entry threshold (or in warm-up) before walking its books
    (``Trader.skim``): the same fill events as the full decision on every view, and the same number of refusals,
    a thin book's THIN_BOOKS counted as BELOW_ENTRY at most."""
    runs = []
    for skim in (True, False):
        market = make_market((BTC, ETH, XRP), caps=MarketCaps(max_open_trades=open_trades), latency_ms=latency_ms)
        for trader in market.traders.values():
            trader.skim = skim
        s = Session(market)
        s.warm(3)
        for i, (p1, p2, depth) in enumerate(steps):
            s.step(3.0 + i, {BTC: p1, ETH: p2, XRP: -p1}, depth)
        runs.append((s.events, {pair: t.accounts.refusals for pair, t in market.traders.items()}))
    (skimmed, quick), (full, slow) = runs
    assert [e.as_dict() for e in skimmed] == [e.as_dict() for e in full]
    for pair in quick:
        assert sum(quick[pair].values()) == sum(slow[pair].values())
        moved = {r: quick[pair][r] - slow[pair][r] for r in set(quick[pair]) | set(slow[pair])}
        changed = {r for r, n in moved.items() if n}
        assert changed <= {Refusal.BELOW_ENTRY, Refusal.THIN_BOOKS}, (pair, moved)
        assert moved.get(Refusal.BELOW_ENTRY, 0) == -moved.get(Refusal.THIN_BOOKS, 0) >= 0, (pair, moved)
