"""From a checked config and the universe of pairs (``actors.core.pairs.Universe``, from both venues' listings) to
a market session's runtime objects (issue 26): the market of every pair (``Markets``), the trader of every pair
over one portfolio (``MarketTrader``), the feeds' statistics (Upbit's one connection, one per Binance shard) and
the Binance shard plan. ``actors.wiring`` builds the one-pair session; this module the many-pair one.

Sizes. ``[strategy]`` and ``[risk]`` state their quantities in BTC; a market trades coins whose prices differ by
seven orders of magnitude, so each pair's trader is sized when its first whole view gives its coin's price:
``order_qty_btc`` becomes ``[market] order_usdt`` worth of the coin, and every other BTC quantity
(``max_order_qty_btc``, ``min_order_qty_btc``, ``max_position_btc``) keeps its ratio to it. Each venue's minimum
order is the coin's: Binance's LOT_SIZE and NOTIONAL from exchangeInfo, Upbit's 5,000 KRW (``[lots]``).
The coin inventory each venue starts with (to sell on either side) is ``[market] coin_inventory_usdt`` worth of
the coin at that first price, deposited before the pair trades (balances "before" include it).
"""

from __future__ import annotations

from typing import Callable

import attrs

from actors.config import Config, Inputs
from actors.conventions import feed_key
from actors.core.fills import Lots
from actors.core.kpi import FeedStats
from actors.core.market import Markets, MarketView
from actors.core.market_trader import MarketCaps, MarketTrader
from actors.core.pairs import Pair, PairRules, Universe
from actors.core.portfolio import Portfolio
from actors.core.rules import Limit
from actors.core.shards import ShardPlan, plan_shards
from actors.core.sizing import NoDrift
from actors.core.trader import Trader
from actors.core.vocabulary import Currency, Venue
from actors.net.rest_budget import RestBudget
from actors.sim.exchange import SimEndpoints

BTC = Currency.BTC  # the coin the BTC-denominated settings and fields are about
PAIR_SEED_STRIDE = 7919  # each pair's latency jitter: its own stream (seed + MARKET + index x this)


@attrs.frozen
class MarketSetup:
    """What a market session knows before its frame opens: the pairs (from the listings), how Binance's books are
    spread over connections, the process's REST weight budget (the listings spent from it already) and the
    embedded exchange's endpoints (None: live)."""

    universe: Universe
    plan: ShardPlan
    rest: RestBudget
    endpoints: SimEndpoints | None


def priority(trader: MarketTrader, universe: Universe) -> Callable[[str], int]:
    """A Binance book's place in the snapshot queues: books of a pair with an open trade first (0), then the rest."""
    by_symbol = {pair.binance_symbol: pair for pair in universe.pairs}

    def of(symbol: str) -> int:
        pair = by_symbol.get(symbol)
        return 0 if pair is not None and trader.holds(pair) else 1

    return of


def markets(cfg: Config, universe: Universe, opened_at: float) -> Markets:
    fx_key = (Venue.UPBIT, cfg.feeds.upbit.fx_market) if cfg.fx.source == Venue.UPBIT else None
    return Markets.of(universe.pairs, fx_key, cfg.fx.fixed_krw_per_usdt, started_at=opened_at)


def shard_plan(cfg: Config, universe: Universe, opened_at: float) -> ShardPlan:
    b = cfg.feeds.binance
    return plan_shards(
        (p.binance_symbol for p in universe.pairs), b.streams_per_connection, b.scheduled_cut_s, origin_s=opened_at
    )


def feed_stats(plan: ShardPlan) -> dict[str, FeedStats]:
    """Upbit's one connection, then one per Binance shard ("binance", "binance-2", ...)."""
    stats = {str(Venue.UPBIT): FeedStats(Venue.UPBIT)}
    for shard in plan.shards:
        key = feed_key(Venue.BINANCE, shard.index)
        stats[key] = FeedStats(key)
    return stats


def upbit_codes(cfg: Config, universe: Universe) -> tuple[str, ...]:
    """Every pair's Upbit code, then the FX market's (one subscription carries them all)."""
    codes = tuple(p.upbit_code for p in universe.pairs)
    fx = cfg.feeds.upbit.fx_market
    return codes if cfg.fx.source != Venue.UPBIT or fx in codes else (*codes, fx)


def market_trader(
    cfg: Config, session_id: str, opened_at: float, inputs: Inputs, universe: Universe, base: Trader
) -> MarketTrader:
    """One trader per pair over one portfolio (KRW and USDT from [portfolio]; the coins deposited as each pair is
    sized). ``base``: the one-pair trader the config builds (its fill model, execution, risk and seeds), the
    template of every pair's."""
    p = cfg.portfolio
    portfolio = Portfolio.of_market(Venue.UPBIT, p.upbit_krw, Venue.BINANCE, p.binance_usdt, {})
    traders = {pair: _trader(base, portfolio, index) for index, pair in enumerate(universe.pairs)}
    rules = universe.rules_by_pair()
    m = cfg.market
    caps = MarketCaps(m.max_open_trades, m.max_pair_exposure_usdt, m.max_total_exposure_usdt)

    def resize(pair: Pair, old: Trader, view: MarketView) -> Trader:
        return sized_trader(cfg, old, pair, rules.get(pair, PairRules()), view)

    return MarketTrader(traders, caps, resize)


def _trader(base: Trader, portfolio: Portfolio, index: int) -> Trader:
    """Pair ``index``'s trader before its first whole view: ``base``'s settings, its own latency stream."""
    return Trader(
        base.params,
        base.session_id,
        base.started_at,
        portfolio,
        base.fill_model,
        base.execution,
        base.risk,
        seed=base.seed + index * PAIR_SEED_STRIDE,
        l2_source=base.l2_source,
        mock_seed=base.mock_seed + index * PAIR_SEED_STRIDE,
        drift=base.drift,
    )


def sized_trader(cfg: Config, old: Trader, pair: Pair, rules: PairRules, view: MarketView) -> Trader:
    """``old``'s pair, sized at ``view``'s USDT price (module docstring), with its coin deposited."""
    assert view.usdt_leg is not None and view.usdt_leg.mid, "a whole view has both legs"
    mid = view.usdt_leg.mid
    s = old.params
    factor = cfg.market.order_usdt / (s.order_qty_btc * mid)
    params = attrs.evolve(
        s,
        order_qty_btc=s.order_qty_btc * factor,
        max_order_qty_btc=s.max_order_qty_btc * factor,
        min_order_qty_btc=s.min_order_qty_btc * factor,
    )
    risk = attrs.evolve(old.risk, max_position_btc=Limit(old.risk.max_position_btc * factor))
    lots = coin_lots(cfg.lots, rules)
    execution = attrs.evolve(old.execution, lots=lots)
    portfolio = old.accounts.portfolio
    held = cfg.market.coin_inventory_usdt / mid
    for venue in (Venue.UPBIT, Venue.BINANCE):
        if pair.base not in portfolio.balances[venue]:  # deposited once, before the pair's first trade
            portfolio.balances[venue][pair.base] = held
            portfolio.initial[venue][pair.base] = held
    trader = Trader(
        params,
        old.session_id,
        old.started_at,
        portfolio,
        old.fill_model,
        execution,
        risk,
        seed=old.seed,
        l2_source=old.l2_source,
        mock_seed=old.mock_seed,
        drift=old.drift if pair.base == BTC else NoDrift(),  # the slippage calibration is BTC's
    )
    trader.next_trade_id = old.next_trade_id
    return trader


def coin_lots(lots: Lots, rules: PairRules) -> Lots:
    """A coin's minimum orders: Upbit's value minimum ([lots]) and 8 decimals; Binance's LOT_SIZE step and its
    NOTIONAL minimum from exchangeInfo (the [lots] values where the symbol has no such filter)."""
    step = rules.step_size_coin or rules.min_qty_coin
    return attrs.evolve(
        lots,
        binance_btc=step if step > 0 else lots.binance_btc,
        binance_min_usdt=rules.min_notional_usdt if rules.min_notional_usdt > 0 else lots.binance_min_usdt,
    )
