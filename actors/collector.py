"""Collector actor: fill events to JSONL, KPI snapshots to JSON, status lines to the log.

It drains its inbox until every producer has closed it, so no fill event already produced is lost at
shutdown. The session writes the final KPI once all actors have stopped.

A data file that cannot be written (disk full, I/O error) is reported to the session's ``DiskWatch``
(the session reacts: no new trades, it stops and fails) and never crashes the collector: it goes on
draining its inbox, so the pipeline still ends, and the KPI counts the fill events produced against those
on disk. What it counts (``CollectorStats``) is held by the session frame, so a restart keeps it; it reads
everything else through snapshots (``Sources``).
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Callable

import attrs
import trio
from loguru import logger

if TYPE_CHECKING:
    from loguru import Logger

from actors.clock import MarketClock
from actors.core.market import Markets
from actors.core.market_trader import MarketTrader
from actors.core.trader_outputs import FillEvent, TraderStatistics
from actors.records.files import DataWriteError, FillWriter, append_text, write_json_atomic
from actors.records.info import SessionInfo
from actors.records.kpi import build_kpi
from actors.records.pairs import PairPanelWriter, PanelSample
from actors.records.sources import Sources
from actors.records.status import PREMIUM_HEADER, premium_sample, status_line

PREMIUM_SAMPLE_S = 1.0


async def _every(interval_s: float, fn: Callable[[], None], *, real_time_too: bool = False) -> None:
    """Call ``fn`` every ``interval_s`` of session time; ``real_time_too``: and only once half that much
    real time has passed since the last call too (always so on the real clock; on a virtual clock a
    replay's session time runs hundreds of times faster, and the KPI file and the status line are for
    people and crash safety, which live on the real clock)."""
    next_at = trio.current_time()
    last_real = time.monotonic()
    while True:
        next_at += interval_s
        await trio.sleep_until(next_at)
        if real_time_too:
            if time.monotonic() - last_real < interval_s / 2:
                continue
            last_real = time.monotonic()
        fn()


async def run_collector(
    inbox: trio.MemoryReceiveChannel[FillEvent],
    writer: FillWriter,
    info: SessionInfo,
    sources: Sources,
    clock: MarketClock,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Write every fill event; meanwhile the KPI snapshots, the status lines and the premium series."""
    log = logger.bind(actor="collector")
    s = info.config.session
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(_every, s.kpi_interval_s, partial(_snapshot, info, sources), real_time_too=True))
        panel = PairPanelWriter(info.paths.pairs, sources.disk) if isinstance(sources.market, Markets) else None
        nursery.start_soon(_every, PREMIUM_SAMPLE_S, partial(_sample, info, sources, clock, panel))
        status = partial(_status, log, info, sources)
        nursery.start_soon(partial(_every, s.status_interval_s, status, real_time_too=True))
        task_status.started()
        stats = sources.collector
        async for event in inbox:
            if writer.failed is not None:
                continue  # produced, not on disk: the KPI's fill_events against fill_events_written says so
            try:
                writer.write(event)
            except DataWriteError as exc:
                sources.disk.report(exc)
                continue
            stats.fill_events_written = writer.count
            # from the receipt of the book this leg filled against to the line being written
            stats.wire_to_fill_written.add(trio.current_time() - (info.opened_at + event.t_s - event.book_age_ms / 1e3))
            log.debug(
                "fill {} {} {} {:.8f}/{:.8f} @ {}",
                event.trade_id,
                event.venue,
                event.side,
                event.filled_qty,
                event.order_qty,
                event.avg_price,
            )
        nursery.cancel_scope.cancel()


def _snapshot(info: SessionInfo, sources: Sources) -> None:
    """A KPI snapshot (not final), unless the disk has failed."""
    if sources.disk.error is None:
        try:
            write_json_atomic(info.paths.kpi, build_kpi(info, sources.snapshot(trio.current_time()), final=False))
        except DataWriteError as exc:
            sources.disk.report(exc)


def _status(log: Logger, info: SessionInfo, sources: Sources) -> None:
    log.info(status_line(info, sources.progress(trio.current_time())))


def _lead_statistics(sources: Sources) -> TraderStatistics:
    """What the premium series reads of the trader: a market's lead pair's baseline (the series follows that
    pair), with the whole market's PnL as its equity."""
    trader, market = sources.trader, sources.market
    if not isinstance(trader, MarketTrader) or not isinstance(market, Markets):
        return trader.statistics()
    lead = trader.traders[market.lead.pair]
    return attrs.evolve(lead.statistics(), realized_pnl_usdt=trader.pnl_usdt(), unrealized_pnl_usdt=0.0)


def _panel(panel: PairPanelWriter, info: SessionInfo, sources: Sources, clock: MarketClock, now: float) -> None:
    """A market's line per pair in pairs_<id>.csv: its premium as the decisions last saw it, and minus its baseline."""
    trader, market = sources.trader, sources.market
    if not isinstance(trader, MarketTrader) or not isinstance(market, Markets):
        return
    samples = []
    for state in market.states:
        view = state.published
        if view is None or view.premium_bps is None:
            continue
        baseline = trader.traders[state.pair].baseline.value
        deviation = None if baseline is None else view.premium_bps - baseline
        samples.append(PanelSample(state.pair.name, view.premium_bps, deviation))
    if samples:
        panel.write(round(now - info.opened_at, 3), clock.utc(now), samples)


def _sample(info: SessionInfo, sources: Sources, clock: MarketClock, panel: PairPanelWriter | None = None) -> None:
    """A line of the premium series, and the minute's sample for the KPI's realism block: the market as the
    decisions last saw it (the aggregator's latest view), not the books of this very instant, which depend on
    whether a book arriving now was scheduled before this sample."""
    now = trio.current_time()
    if panel is not None:
        _panel(panel, info, sources, clock, now)
    view = sources.market.published
    if view is None:
        return
    line = premium_sample(now - info.opened_at, clock.utc(now), view, _lead_statistics(sources))
    if line is None:
        return
    sources.collector.realism.observe(clock, now, info.opened_at, view)
    path = info.paths.premium
    if sources.disk.error is None:
        try:
            append_text(path, line if path.exists() else PREMIUM_HEADER + line)
        except DataWriteError as exc:
            sources.disk.report(exc)
