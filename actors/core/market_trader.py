"""A trader for the whole market (issue 26): one ``Trader`` per pair over ONE portfolio, with caps across pairs.

Each pair's decisions are its own ``Trader``'s (baseline, entries, exits, legs in flight), so a pair decides
exactly as a one-pair session would on the same views; what they share is the balances: KRW on the KRW venue,
USDT on the USDT venue, each coin on both (``Portfolio.of_market``). A leg in flight holds what it may spend of
them (``Portfolio.reserved``, ``Execution.shared``), so two pairs' entries cannot both count on the same KRW: the
second is refused for its budget (``Refusal.BUDGET``), never overdrawn.

Before an entry, the market's caps (``MarketCaps``) are asked through the trader's gate: at most
``max_open_trades`` trades open across pairs, an entry's notional at most ``max_pair_exposure_usdt`` for its pair
and the open trades' notional at most ``max_total_exposure_usdt`` in total (0: no cap); a refused entry is
counted on its pair as ``Refusal.MARKET_CAP``. The loss limit (``[risk] max_loss_usdt``) is the market's: once
the PnL of every pair, realized and marked, reaches it, no pair opens a trade (a pair's own loss stops that
pair too, as in a one-pair session).

The executor drives it as it drives a ``Trader`` (``Decider``): a view goes to its pair's trader
(``view.pair``); ``due_at`` is the earliest over pairs, kept per pair so a view costs one pair's work whatever the
number of pairs; ``on_timer`` runs the pairs that are due, earliest first. Trade ids are numbered across the
market (each pair's trader takes the next one), so a fill event's ``trade_id`` names one trade of one pair.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Protocol

import attrs

from actors.core.kpi import RunningStats, Spread, Values
from actors.core.ledger import InventoryLog, InventorySample, Key, inventory_sample, marks_of
from actors.core.market import MarketView
from actors.core.pairs import Pair
from actors.core.portfolio import Portfolio
from actors.core.refusals import Refusal
from actors.core.trader import Trader
from actors.core.trader_outputs import FillEvent, TraderStatistics
from actors.core.vocabulary import Side


class Decider(Protocol):
    """What the executor drives: a ``Trader`` (one pair) or a ``MarketTrader`` (many)."""

    @property
    def risk_stopped(self) -> str | None: ...
    def due_at(self) -> float | None: ...
    def on_view(self, view: MarketView, wall_now: str) -> list[FillEvent]: ...
    def on_timer(self, now: float, wall_now: str) -> list[FillEvent]: ...
    def stop_entries(self, reason: str) -> None: ...
    def statistics(self) -> TraderStatistics: ...
    def fill_spreads(self) -> tuple[Mapping[Side, Spread], Mapping[Side, Spread]]: ...


@attrs.frozen
class MarketCaps:
    """Caps across the pairs of a market, checked before an entry (0: no cap)."""

    max_open_trades: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    max_pair_exposure_usdt: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    max_total_exposure_usdt: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


def exposure_usdt(trader: Trader) -> float:
    """The notional of a pair's open trades: their planned sizes at its latest view's USDT mid."""
    view = trader.last_view
    mid = None if view is None or view.usdt_leg is None else view.usdt_leg.mid
    return sum((t.planned_qty for t in trader.trades.values()), 0.0) * (mid or 0.0)


@attrs.define
class MarketTrader:
    traders: dict[Pair, Trader]  # one per pair, in the pairs' order, all over one portfolio
    caps: MarketCaps = attrs.field(factory=MarketCaps)
    # a pair's trader as its first whole view sizes it (its coin's price is known then): replaces the one given,
    # which has seen nothing a decision used (None: the traders given trade as they are)
    resize: Callable[[Pair, Trader, MarketView], Trader] | None = None
    risk_stopped: str | None = None  # why no pair opens a trade any more, or None
    next_trade_id: int = 1  # trade ids are the market's: unique across pairs (a zone cycles by this number too)
    last_view: MarketView | None = attrs.field(default=None, init=False)  # the latest view, of any pair
    inventory: InventoryLog = attrs.field(factory=InventoryLog, init=False)  # the shared balances over time
    portfolio: Portfolio = attrs.field(init=False)  # the one every pair's trader shares
    started_at: float = attrs.field(init=False)
    _slots: dict[Pair, _Slot] = attrs.field(init=False)  # per pair: its trader, premiums, latest view, due time
    _dues: dict[Pair, float] = attrs.field(factory=dict, init=False)  # pairs with something due, and when
    _holding: set[Pair] = attrs.field(factory=set, init=False)  # pairs with an open trade

    def __attrs_post_init__(self) -> None:
        if not self.traders:
            raise ValueError("MarketTrader: no pair")
        first = next(iter(self.traders.values()))
        self.portfolio = first.accounts.portfolio
        self.started_at = first.started_at
        for pair, trader in self.traders.items():
            self._install(pair, trader)
        self._slots = {
            pair: _Slot(trader, i, sized=self.resize is None) for i, (pair, trader) in enumerate(self.traders.items())
        }

    def _install(self, pair: Pair, trader: Trader) -> None:
        if trader.accounts.portfolio is not self.portfolio:
            raise ValueError(f"MarketTrader: the trader of {pair.name} does not share the market's portfolio")
        trader.gate = self._gate
        trader.skim = True  # every pair decides on every move of the FX rate: the cheap refusals first
        trader.legs.shared = self.portfolio
        trader.accounts.sampling = False  # the market samples the shared balances, marked by every pair

    @property
    def pairs(self) -> tuple[Pair, ...]:
        return tuple(self.traders)

    # -- the executor's interface --------------------------------------------------------------------

    def due_at(self) -> float | None:
        """The earliest time something is due in any pair (a leg's arrival, a split trade's next child)."""
        return min(self._dues.values(), default=None)

    def on_view(self, view: MarketView, wall_now: str) -> list[FillEvent]:
        """``view`` to its pair's trader (``view.pair``); a pair the market does not trade is a KeyError."""
        pair = view.pair
        slot = self._slots[pair]
        if view.premium_bps is not None:
            if not slot.sized:
                self._size(pair, slot, view)
            slot.premiums.add(view.premium_bps)
        trader = slot.trader
        trader.next_trade_id = self.next_trade_id
        events = trader.on_view(view, wall_now)
        slot.view = self.last_view = view
        self._settled(pair, slot)
        if self.inventory.due(view.at - self.started_at):
            self._sample(view.at - self.started_at)
        return events

    def on_timer(self, now: float, wall_now: str) -> list[FillEvent]:
        """Every pair with something due by ``now``, earliest first (then in the pairs' order)."""
        due = sorted((at, self._slots[pair].index, pair) for pair, at in self._dues.items() if at <= now)
        events: list[FillEvent] = []
        for _, _, pair in due:
            slot = self._slots[pair]
            slot.trader.next_trade_id = self.next_trade_id
            events += slot.trader.on_timer(now, wall_now)
            self._settled(pair, slot)
        return events

    def stop_entries(self, reason: str) -> None:
        """No new trade in any pair from now on (exits and legs in flight go on)."""
        if self.risk_stopped is None:
            self.risk_stopped = reason
        for trader in self.traders.values():
            trader.stop_entries(reason)

    def statistics(self) -> TraderStatistics:
        """The totals over pairs, as a one-pair trader reports them, with one row per pair (``pairs``)."""
        from actors.core.market_outputs import market_statistics  # it reads this module's types

        return market_statistics(self)

    def fill_spreads(self) -> tuple[Mapping[Side, Spread], Mapping[Side, Spread]]:
        """(fill ratio over every leg, slippage in bps over the legs that filled) per side over every pair."""
        accounts = tuple(t.accounts for t in self.traders.values())
        return (
            {
                side: Values.merged(tuple(a.fill_ratios[side] for a in accounts)).spread()
                for side in (Side.BUY, Side.SELL)
            },
            {
                side: Values.merged(tuple(a.slippages[side] for a in accounts)).spread()
                for side in (Side.BUY, Side.SELL)
            },
        )

    # -- what it holds -------------------------------------------------------------------------------

    def holds(self, pair: Pair) -> bool:
        """Whether ``pair`` has a trade open (its books' resyncs go first)."""
        return pair in self._holding

    def open_trades(self) -> int:
        return sum(len(self.traders[pair].trades) for pair in self._holding)

    def premium_of(self, pair: Pair) -> RunningStats:
        """The mid premium of the views ``pair`` saw (a copy)."""
        return attrs.evolve(self._slots[pair].premiums)

    def pnl_usdt(self) -> float:
        """Realized over every pair, plus the open trades marked to mid at their pair's latest view."""
        realized = sum(t.accounts.realized_pnl_usdt for t in self.traders.values())
        return realized + sum(self.traders[pair].unrealized_pnl_usdt() for pair in self._holding)

    def marks(self) -> dict[Key, float]:
        """USDT per unit of each (venue, asset), at each pair's latest view."""
        marks: dict[Key, float] = {}
        for slot in self._slots.values():
            if slot.view is not None:
                marks.update(marks_of(slot.view) or {})
        return marks

    def inventory_now(self) -> InventorySample | None:
        """The shared balances' change since the start, marked at each pair's latest view; None while an asset
        that moved has no mark yet (its pair without a whole view)."""
        if self.last_view is None:
            return None
        return self._inventory(self.last_view.at - self.started_at)

    # -- the caps ------------------------------------------------------------------------------------

    def _gate(self, view: MarketView, qty: float) -> Refusal | None:
        """Whether the market's caps and loss limit let ``view``'s pair open a trade of ``qty`` (a child of a trade
        already open was admitted with it: None)."""
        trader = self.traders[view.pair]
        if trader.trades:
            return None
        if self.risk_stopped is not None:
            return Refusal.RISK_STOPPED
        limit = trader.risk.max_loss_usdt
        if not math.isinf(limit) and (pnl := self.pnl_usdt()) <= -limit:
            self.stop_entries(f"max_loss: market PnL {pnl:.2f} USDT reached -{limit:g}; no new entries")
            return Refusal.RISK_STOPPED
        caps = self.caps
        if self.open_trades() >= caps.max_open_trades:
            return Refusal.MARKET_CAP
        notional = qty * ((view.usdt_leg.mid if view.usdt_leg is not None else None) or 0.0)
        if caps.max_pair_exposure_usdt and notional > caps.max_pair_exposure_usdt:
            return Refusal.MARKET_CAP
        if caps.max_total_exposure_usdt:
            held = sum(exposure_usdt(self.traders[pair]) for pair in self._holding)
            if held + notional > caps.max_total_exposure_usdt:
                return Refusal.MARKET_CAP
        return None

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _size(self, pair: Pair, slot: _Slot, view: MarketView) -> None:
        """The pair's first whole view: its trader sized for its coin's price (``resize``)."""
        assert self.resize is not None
        old = slot.trader
        if old.trades or old.legs.pending:  # it traded already: keep it (cannot happen before a whole view)
            slot.sized = True
            return
        trader = self.resize(pair, old, view)
        self._install(pair, trader)
        self.traders[pair] = slot.trader = trader
        slot.sized = True

    def _settled(self, pair: Pair, slot: _Slot) -> None:
        """After a pair's trader ran: when it is due next, whether it holds a trade (the dicts change only when
        these do: most views find a pair with nothing open and nothing due)."""
        trader = slot.trader
        self.next_trade_id = trader.next_trade_id
        due = trader.due_at() if trader.trades or trader.legs.pending else None
        if due != slot.due:
            slot.due = due
            if due is None:
                del self._dues[pair]
            else:
                self._dues[pair] = due
        if bool(trader.trades) != (pair in self._holding):
            if trader.trades:
                self._holding.add(pair)
            else:
                self._holding.discard(pair)

    def _sample(self, t_s: float) -> None:
        sample = self._inventory(t_s)
        if sample is not None:
            self.inventory.add(sample)

    def _inventory(self, t_s: float) -> InventorySample | None:
        """The sample at ``t_s``; None while an asset that moved has no mark (one that did not move counts 0)."""
        portfolio, marks = self.portfolio, self.marks()
        for venue, assets in portfolio.balances.items():
            for asset, amount in assets.items():
                if (venue, asset) not in marks:
                    if amount != portfolio.initial.get(venue, {}).get(asset, 0.0):
                        return None
                    marks[(venue, asset)] = 0.0
        return inventory_sample(round(t_s, 6), portfolio.initial, portfolio.balances, marks)


@attrs.define(slots=True)
class _Slot:
    """One pair's place in the market: its trader, the premiums of its views, its latest view, when it is due."""

    trader: Trader
    index: int  # its place in the pairs' order
    premiums: RunningStats = attrs.field(factory=RunningStats)
    view: MarketView | None = None
    due: float | None = None
    sized: bool = True  # False until ``MarketTrader.resize`` made its trader for its coin's price
