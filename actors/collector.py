"""Collector actor: fill events to JSONL, KPI snapshots to JSON, status lines to the log.

It drains its inbox until every producer has closed it, so no fill event already produced is lost at
shutdown. The session writes the final KPI once all actors have stopped.

A data file that cannot be written (disk full, I/O error) is reported to the session context once
(``write_failed``: no new trades, the session stops and fails) and never crashes the collector: it
goes on draining its inbox, so the pipeline still ends, and the KPI counts the fill events produced
against those on disk.
"""

from __future__ import annotations

import time
from functools import partial

import trio
from loguru import logger

from actors.core.trader_outputs import FillEvent
from actors.records.files import DataWriteError, FillWriter, append_text, write_json_atomic
from actors.records.kpi import PREMIUM_HEADER, SessionContext, build_kpi, premium_sample, status_line

PREMIUM_SAMPLE_S = 1.0


async def _every(interval_s: float, fn, *, real_time_too: bool = False) -> None:
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
    ctx: SessionContext,
    kpi_path,
    kpi_interval_s: float,
    status_interval_s: float,
    premium_path=None,
    *,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    log = logger.bind(actor="collector")

    def snapshot() -> None:
        if ctx.disk_error is None:
            try:
                write_json_atomic(kpi_path, build_kpi(ctx, trio.current_time(), final=False))
            except DataWriteError as exc:
                ctx.write_failed(exc)

    def status() -> None:
        log.info(status_line(ctx, trio.current_time()))

    def sample() -> None:
        now = trio.current_time()
        line = premium_sample(ctx, now)
        if line is None:
            return
        ctx.realism.observe(ctx.clock, now, ctx.opened_at, ctx.market_state.view(now))  # the KPI's realism
        if premium_path is not None and ctx.disk_error is None:
            try:
                append_text(
                    premium_path,
                    line if premium_path.exists() else PREMIUM_HEADER + line,
                )
            except DataWriteError as exc:
                ctx.write_failed(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(_every, kpi_interval_s, snapshot, real_time_too=True))
        nursery.start_soon(_every, PREMIUM_SAMPLE_S, sample)
        nursery.start_soon(partial(_every, status_interval_s, status, real_time_too=True))
        task_status.started()
        async for event in inbox:
            if writer.failed is not None:
                continue  # produced, not on disk: the KPI's fill_events against fill_events_written says so
            try:
                writer.write(event)
            except DataWriteError as exc:
                ctx.write_failed(exc)
                continue
            ctx.fill_events_written = writer.count
            # from the receipt of the book this leg filled against to the line being written
            ctx.wire_to_fill_written.add(trio.current_time() - (ctx.opened_at + event.t_s - event.book_age_ms / 1e3))
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
