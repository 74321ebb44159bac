"""Live view: a panel on the terminal while a session runs (when stdout is a terminal).

A progress bar to the session's end with the session's phase, per-feed health (state in words,
messages/s, book age, reconnects, untrusted time), the premium and its baseline, trades, fill events
and PnL. Log lines still show, above the panel. It fits an 80-column terminal. The last frame, drawn
once the final KPI file is written, shows the session's outcome (completed, interrupted, failed), not
a running state. Without a terminal the session logs a plain status line every ``status_interval_s``
instead (the collector does that in both cases).
"""

from __future__ import annotations

import trio
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from actors.conventions import FEED_ACTORS
from actors.records.kpi import (
    CONNECTING,
    GIVEN_UP,
    NEVER_CONNECTED,
    NOT_STARTED,
    RECONNECTING,
    UP,
    SessionContext,
    book_age_s,
    feed_state,
)

REFRESH_S = 0.5
BAR_WIDTH = 28  # the head row (bar, "1200.0 / 1200 s", the phase) stays within 80 columns
_STATE_STYLE = {
    UP: "green",
    CONNECTING: "yellow",
    RECONNECTING: "bold yellow",
    NOT_STARTED: "dim",
    NEVER_CONNECTED: "bold red",
    GIVEN_UP: "bold red",
}
_PHASE_STYLE = {"completed": "bold green", "interrupted": "bold yellow", "failed": "bold red"}


def phase(ctx: SessionContext) -> str:
    """starting (feeds not ready), running, stopping (draining), then the final status."""
    if ctx.status != "running":
        return ctx.status  # completed | interrupted | failed, set once the final KPI file is written
    if ctx.ended_at is not None:
        return "stopping"
    return "running" if ctx.trading_since is not None else "starting"


def render(ctx: SessionContext, now: float, rates: dict[str, float]) -> Panel:
    elapsed = ctx.duration_s(now)
    total = ctx.requested_duration_s
    head = Table.grid(padding=(0, 2))
    word = phase(ctx)
    head.add_row(
        ProgressBar(total=total, completed=min(elapsed, total), width=BAR_WIDTH),
        f"{elapsed:7.1f} / {total:g} s",
        Text(word, style=_PHASE_STYLE.get(word, "")),
    )
    feeds = Table(box=None, padding=(0, 1))
    for column in ("feed", "state", "msgs/s", "book age", "reconnects", "untrusted s"):
        feeds.add_column(column, justify="left" if column in ("feed", "state") else "right", no_wrap=True)
    view = ctx.market_state.view(now)
    for venue, stats in ctx.feeds.items():
        feed = stats.statistics(now)
        age = book_age_s(view, venue)
        child = ctx.children.get(FEED_ACTORS[venue])
        state = feed_state(ctx, venue, now)
        feeds.add_row(
            venue,
            Text(state, style=_STATE_STYLE.get(state, "")),
            "-" if feed.messages == 0 else f"{rates.get(venue, 0.0):.1f}",  # nothing received yet: no rate
            "-" if age is None else f"{age:.2f} s",
            str(child.restarts if child else 0),
            f"{feed.untrusted_s:.1f}",
        )
    trader = ctx.trader.statistics()
    baseline = trader.baseline_bps
    premium = "-" if view.premium_bps is None else f"{view.premium_bps:+.1f} bps"
    fx = "-" if view.fx is None else f"{view.fx.krw_per_usdt:,.1f} KRW/USDT"
    market = Text.assemble(
        f"premium {premium}   baseline {'-' if baseline is None else f'{baseline:+.1f} bps'}   FX {fx}\n",
        f"trades {trader.entries} (open {trader.open_trades})   fill events {trader.fill_events}\n",
        f"PnL {trader.realized_pnl_usdt:+.4f} USDT realized, open trades marked {trader.unrealized_pnl_usdt:+.4f}",
        no_wrap=True,
    )
    return Panel(Group(head, feeds, market), title=f"session {ctx.session_id} ({ctx.market})", expand=False)


class LiveView:
    """The panel for one session: ``with LiveView(ctx, console) as live:`` around the session, ``live.run``
    as one of its tasks; leaving the block draws the last frame, with the session's final status (set the
    status before leaving)."""

    def __init__(self, ctx: SessionContext, console: Console) -> None:
        self._ctx = ctx
        self._live = Live(console=console, auto_refresh=False, transient=False)
        self._rates: dict[str, float] = {}

    def __enter__(self) -> LiveView:
        self._live.start()
        self._live.update(render(self._ctx, trio.current_time(), self._rates), refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        ctx, now = self._ctx, trio.current_time()
        duration = ctx.duration_s(now)
        # the last frame: the average rate over the trading time, not the rate while the feeds were stopping
        rates = {v: s.statistics(now).messages / duration for v, s in ctx.feeds.items()} if duration > 0 else {}
        try:
            self._live.update(render(ctx, now, rates), refresh=True)
        finally:
            self._live.stop()

    async def run(self) -> None:
        """Redraw every REFRESH_S with the messages/s of the last interval, until cancelled."""
        ctx = self._ctx

        def messages() -> dict[str, int]:
            now = trio.current_time()
            return {venue: stats.statistics(now).messages for venue, stats in ctx.feeds.items()}

        last = messages()
        while True:
            await trio.sleep(REFRESH_S)
            counts = messages()
            self._rates = {venue: (n - last[venue]) / REFRESH_S for venue, n in counts.items()}
            last = counts
            self._live.update(render(ctx, trio.current_time(), self._rates), refresh=True)
