"""Aggregator actor: venue books in, one market view out.

After a book arrives it waits ``coalesce_s`` (the aggregation window), then drains every book
waiting (``receive_nowait``) and builds one view: books that arrive together (both venues publish on
a 100 ms grid) make one decision, under load it conflates instead of queueing stale views, and in
virtual time the views do not depend on the order in which Trio happens to run the feeds. The
``MarketState`` is held by the session, so a restarted aggregator keeps the latest books.

With many pairs (a ``Markets``) it is the same loop; after a drain it sends the views of the pairs whose books
or FX changed, in the pairs' order, as one batch (issue 26): an FX tick changes every pair's view, and one channel
hop and one executor wake-up for the lot cost far less than one each (``Views``).
"""

from __future__ import annotations

import trio

from actors.core.book import BookView
from actors.core.market import Markets, MarketState, MarketView

Views = MarketView | tuple[MarketView, ...]  # one pair's view, or a market's batch of the pairs that changed


async def run_aggregator(
    inbox: trio.MemoryReceiveChannel[BookView],
    out: trio.MemorySendChannel[Views],
    state: MarketState | Markets,
    coalesce_s: float = 0.0,
    *,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    while True:
        try:
            book = await inbox.receive()
        except trio.EndOfChannel:
            return
        state.update(book)
        if coalesce_s > 0:
            await trio.sleep(coalesce_s)
        while True:
            try:
                state.update(inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        published = state.publish(trio.current_time())
        if isinstance(published, MarketView):
            item: Views | None = published if published.complete else None
        else:
            item = tuple(view for view in published if view.complete) or None
        if item is not None:
            try:
                await out.send(item)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the executor is gone for good; the session is ending
