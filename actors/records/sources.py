"""The session's state, one owner for each piece, read only through snapshots.

Each piece of what a session counts has one owner that writes it, and hands out a frozen snapshot:

| source | owner (writes it) | snapshot |
|---|---|---|
| ``Lifecycle``: phases, status, fatal errors | the session frame (``actors.session``) | ``LifecycleStatistics`` |
| ``DiskWatch``: the first failed data write | every writer reports to it | ``error`` (a string) |
| ``Trader``: trades, fills, PnL, refusals | the executor | ``TraderStatistics``, ``fill_spreads()`` |
| ``MarketState``: books, FX, premium | the aggregator | ``MarketView`` |
| ``FeedStats`` per venue | its feed | ``FeedStatistics`` |
| ``ChildStats`` per actor | its supervisor | ``ChildStatistics`` |
| ``CollectorStats``: lines written, latency, realism | the collector | ``CollectorStatistics`` |
| the decision latency histogram | the executor | ``LatencyPercentiles`` |
| ``ChaosKills`` | the chaos task | a name -> kills mapping |
| ``ReplayPacer`` (a replay) | the replay's clock | ``ReplayProgress`` |

``Sources`` names them all (the session frame holds it, so state survives actor restarts) and takes
``Progress`` (what the status line and the live panel show) or a whole ``Snapshot`` (what the KPI document is
built from: ``actors.records.kpi.build_kpi``) at one instant. Nothing downstream reads a live object.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping

import attrs

from actors.core.kpi import FeedStatistics, FeedStats, LatencyHistogram, LatencyPercentiles, Spread
from actors.core.market import Markets, MarketState, MarketView
from actors.core.market_trader import Decider
from actors.core.trader_outputs import TraderStatistics
from actors.core.vocabulary import Side
from actors.records.files import DiskWatch
from actors.records.info import SessionStatus
from actors.records.pairs import PairRow, pair_rows
from actors.records.realism import RealismContext, RealismKpi
from actors.sim.replay import ReplayPacer, ReplayProgress
from supervision import ChildStatistics, ChildStats


@attrs.frozen
class LifecycleStatistics:
    trading_since: float | None  # Trio time when both feeds were ready
    ended_at: float | None  # Trio time when trading ended (the feeds were stopped)
    status: SessionStatus
    fatal: tuple[str, ...]  # why the session failed, in the order it happened


@attrs.define
class Lifecycle:
    """The session's phases and outcome. Only the session frame writes it."""

    trading_since: float | None = None
    ended_at: float | None = None
    status: SessionStatus = SessionStatus.RUNNING
    _fatal: list[str] = attrs.field(factory=list)

    def fail(self, reason: str) -> None:
        """A reason the session fails (it ends with exit status 1)."""
        self._fatal.append(reason)

    @property
    def failed(self) -> bool:
        return bool(self._fatal)

    def end(self, now: float) -> None:
        """Trading ended now (the first call counts)."""
        if self.ended_at is None:
            self.ended_at = now

    def finish(self, *, interrupted: bool) -> SessionStatus:
        """The final status: failed on any fatal error, else interrupted or completed."""
        if self._fatal:
            self.status = SessionStatus.FAILED
        else:
            self.status = SessionStatus.INTERRUPTED if interrupted else SessionStatus.COMPLETED
        return self.status

    def statistics(self) -> LifecycleStatistics:
        return LifecycleStatistics(self.trading_since, self.ended_at, self.status, tuple(self._fatal))


@attrs.frozen
class CollectorStatistics:
    fill_events_written: int
    wire_to_fill_written: LatencyPercentiles
    realism: RealismKpi


@attrs.define
class CollectorStats:
    """What the collector counts; held by the session frame, so a restarted collector keeps it."""

    realism: RealismContext  # the market's 1-minute closes, against the real market's reference
    fill_events_written: int = 0
    wire_to_fill_written: LatencyHistogram = attrs.field(factory=LatencyHistogram)

    def statistics(self) -> CollectorStatistics:
        return CollectorStatistics(
            self.fill_events_written, self.wire_to_fill_written.statistics_ms(), self.realism.kpi()
        )


@attrs.define
class ChaosKills:
    """The actors chaos killed, by name; written by the chaos task (``actors.chaos.run_chaos``)."""

    _kills: Counter[str] = attrs.field(factory=Counter)

    def record(self, name: str) -> int:
        """Count a kill of ``name``; the kills so far, in all."""
        self._kills[name] += 1
        return self._kills.total()

    def statistics(self) -> Mapping[str, int]:
        return dict(sorted(self._kills.items()))


@attrs.frozen
class Progress:
    """What the status line and the live panel show, taken at one instant."""

    now: float
    lifecycle: LifecycleStatistics
    view: MarketView
    trader: TraderStatistics
    feeds: Mapping[str, FeedStatistics]  # by feed (venue; a market's Binance shards: binance-2...), as of the end
    actors: Mapping[str, ChildStatistics]  # by actor name
    pairs: tuple[PairRow, ...] = ()  # a market of many pairs: one row each (empty for one pair)

    def duration_s(self) -> float:
        """Trading time so far (to the end of trading, once it ended)."""
        life = self.lifecycle
        if life.trading_since is None:
            return 0.0
        return (life.ended_at if life.ended_at is not None else self.now) - life.trading_since


@attrs.frozen
class Snapshot:
    """Everything the KPI document is built from, taken at one instant."""

    progress: Progress
    fill_ratio: Mapping[Side, Spread]
    slippage_bps: Mapping[Side, Spread]
    disk_error: str | None
    collector: CollectorStatistics
    wire_to_decision: LatencyPercentiles
    chaos_kills: Mapping[str, int]
    replay: ReplayProgress | None


@attrs.frozen
class Sources:
    """The session's named sources (each written by its owner alone); snapshots are taken here."""

    lifecycle: Lifecycle
    disk: DiskWatch
    trader: Decider  # a Trader (one pair) or a MarketTrader
    market: MarketState | Markets
    feeds: Mapping[str, FeedStats]  # by feed: the venue's word; a market's Binance shards binance-2, binance-3...
    actors: Mapping[str, ChildStats]  # by actor name
    collector: CollectorStats
    wire_to_decision: LatencyHistogram  # the executor's
    chaos: ChaosKills = attrs.field(factory=ChaosKills)
    replay: ReplayPacer | None = None

    def progress(self, now: float) -> Progress:
        life = self.lifecycle.statistics()
        feeds_at = life.ended_at if life.ended_at is not None else now  # a feed's health while trading
        trader = self.trader.statistics()
        feeds = {venue: stats.statistics(feeds_at) for venue, stats in self.feeds.items()}
        market = self.market
        return Progress(
            now,
            life,
            market.view(now),
            trader,
            feeds,
            {name: stats.statistics(now) for name, stats in self.actors.items()},
            pair_rows(trader.pairs, feeds, market.views()) if isinstance(market, Markets) else (),
        )

    def snapshot(self, now: float) -> Snapshot:
        fill_ratio, slippage = self.trader.fill_spreads()
        return Snapshot(
            self.progress(now),
            fill_ratio,
            slippage,
            self.disk.error,
            self.collector.statistics(),
            self.wire_to_decision.statistics_ms(),
            self.chaos.statistics(),
            None if self.replay is None else self.replay.statistics(),
        )
