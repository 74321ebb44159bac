"""Live view: a panel on the terminal while a session runs (when stdout is a terminal).

A progress bar to the session's end, per-feed health (state, messages/s, book age, reconnects,
untrusted time), the premium and its baseline, trades, fill events and PnL. Log lines still show,
above the panel. Without a terminal the session logs a plain status line every
``status_interval_s`` instead (the collector does that in both cases).
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
from actors.records.kpi import SessionContext, book_age_s

REFRESH_S = 0.5


def render(ctx: SessionContext, now: float, rates: dict[str, float]) -> Panel:
    elapsed = ctx.duration_s(now)
    total = ctx.requested_duration_s
    head = Table.grid(padding=(0, 2))
    head.add_row(
        ProgressBar(total=total, completed=min(elapsed, total), width=50), f"{elapsed:7.1f} / {total:g} s", ctx.status
    )
    feeds = Table(box=None, padding=(0, 2))
    for column in ("feed", "state", "msgs/s", "book age", "reconnects", "untrusted s"):
        feeds.add_column(column, justify="left" if column in ("feed", "state") else "right")
    view = ctx.market_state.view(now)
    for venue, stats in ctx.feeds.items():
        feed = stats.statistics(now)
        age = book_age_s(view, venue)
        child = ctx.children.get(FEED_ACTORS[venue])
        state = Text("up", style="green") if feed.connected else Text("DOWN", style="bold red")
        feeds.add_row(
            venue,
            state,
            f"{rates.get(venue, 0.0):.1f}",
            "-" if age is None else f"{age:.2f} s",
            str(child.restarts if child else 0),
            f"{feed.untrusted_s:.1f}",
        )
    trader = ctx.trader.statistics()
    baseline = trader.baseline_bps
    market = Table.grid(padding=(0, 3))
    market.add_row(
        "premium " + ("-" if view.premium_bps is None else f"{view.premium_bps:+.1f} bps"),
        "baseline " + ("-" if baseline is None else f"{baseline:+.1f} bps"),
        "FX " + ("-" if view.fx is None else f"{view.fx.krw_per_usdt:,.1f} KRW/USDT"),
    )
    market.add_row(
        f"trades {trader.entries} (open {trader.open_trades})",
        f"fill events {trader.fill_events}",
        f"PnL {trader.realized_pnl_usdt:+.4f} USDT (marked {trader.unrealized_pnl_usdt:+.4f})",
    )
    return Panel(Group(head, feeds, market), title=f"session {ctx.session_id} ({ctx.market})", expand=False)


async def run_live_view(ctx: SessionContext, console: Console) -> None:
    def messages() -> dict[str, int]:
        now = trio.current_time()
        return {venue: stats.statistics(now).messages for venue, stats in ctx.feeds.items()}

    last = messages()
    rates: dict[str, float] = {}
    with Live(render(ctx, trio.current_time(), rates), console=console, refresh_per_second=4, transient=False) as live:
        while True:
            await trio.sleep(REFRESH_S)
            counts = messages()
            rates = {venue: (n - last[venue]) / REFRESH_S for venue, n in counts.items()}
            last = counts
            live.update(render(ctx, trio.current_time(), rates))
