"""Executor actor: market views in, fill events out.

The ``Trader`` (strategy, fill model, positions, PnL; or for many pairs a ``MarketTrader``, which routes each
view to its pair's trader: both are a ``Decider``) and the outbox of fill events not yet handed to
the collector live in ``ExecutorState``, held by the session outside the restart loop: a restarted
executor keeps its positions and first re-sends any fill event it had produced but not delivered.
Fill events are never dropped: the send to the collector waits (bounded channel, backpressure).

Orders have latency: the executor wakes at the earliest arrival time of a leg in flight and fills
it against the latest book. When its inbox closes (session end), legs still in flight arrive
against the last book it saw.

A data file that could not be written (``DiskWatch``) stops new entries before the next decision: no trade
opens whose fills could not be recorded.
"""

from __future__ import annotations

import math
from collections import deque

import attrs
import trio
from loguru import logger

from actors.aggregator import Views
from actors.clock import MarketClock
from actors.core.kpi import LatencyHistogram
from actors.core.market import MarketView
from actors.core.market_trader import Decider
from actors.core.trader_outputs import FillEvent
from actors.records.files import DiskWatch


@attrs.define
class ExecutorState:
    trader: Decider  # a Trader (one pair) or a MarketTrader (many)
    clock: MarketClock = attrs.field(factory=MarketClock)  # fill events' ts_utc: the market's time
    outbox: deque[FillEvent] = attrs.field(factory=deque)
    wire_to_decision: LatencyHistogram = attrs.field(factory=LatencyHistogram)  # newest input's receipt -> decided
    disk: DiskWatch = attrs.field(factory=DiskWatch)  # once a data write failed, no new trade: none could be recorded

    def heed_disk(self) -> None:
        """No new trades once the disk failed (exits and legs in flight go on)."""
        if self.disk.error is not None:
            self.trader.stop_entries(f"disk: {self.disk.error}")


async def _flush(state: ExecutorState, out: trio.MemorySendChannel[FillEvent]) -> None:
    while state.outbox:
        await out.send(state.outbox[0])
        state.outbox.popleft()


async def run_executor(
    inbox: trio.MemoryReceiveChannel[Views],
    out: trio.MemorySendChannel[FillEvent],
    state: ExecutorState,
    *,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    trader, clock = state.trader, state.clock
    task_status.started()
    await _flush(state, out)
    while True:
        due = trader.due_at()
        with trio.move_on_at(math.inf if due is None else due) as timer:
            try:
                item = await inbox.receive()
            except trio.EndOfChannel:
                break
        state.heed_disk()
        stopped = trader.risk_stopped
        now = trio.current_time()
        if timer.cancelled_caught:
            state.outbox.extend(trader.on_timer(now, clock.utc(now)))
        else:
            wall_now = clock.utc(now)
            for view in (item,) if isinstance(item, MarketView) else item:  # a market's batch: the pairs in order
                state.outbox.extend(trader.on_view(view, wall_now))
                if view.newest_received_at is not None:
                    state.wire_to_decision.add(trio.current_time() - view.newest_received_at)
        if trader.risk_stopped is not None and stopped is None:
            logger.bind(actor="executor").warning("risk limit reached, no new entries: {}", trader.risk_stopped)
        await _flush(state, out)
    state.heed_disk()
    while (due := trader.due_at()) is not None:
        state.outbox.extend(trader.on_timer(due, clock.utc(due)))
    await _flush(state, out)
