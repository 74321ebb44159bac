"""Aggregator actor: venue books in, one market view out.

Drains every book already waiting (``receive_nowait``) before building a view, so under load it
conflates instead of queueing stale views. The ``MarketState`` is held by the session, so a
restarted aggregator keeps the latest books.
"""

from __future__ import annotations

import trio

from actors.core.book import BookView
from actors.core.market import MarketState, MarketView


async def run_aggregator(inbox: trio.MemoryReceiveChannel[BookView], out: trio.MemorySendChannel[MarketView],
                         state: MarketState, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    while True:
        try:
            book = await inbox.receive()
        except trio.EndOfChannel:
            return
        state.update(book)
        while True:
            try:
                state.update(inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        view = state.view(trio.current_time())
        if view.complete:
            try:
                await out.send(view)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the executor is gone for good; the session is ending
