"""Live view: a panel on the terminal while a session runs (when stdout is a terminal).

A progress bar to the session's end with the session's phase, per-feed health (state in words,
messages/s, book age, reconnects, untrusted time), the premium and its baseline, trades, fill events
and PnL; in a session of several pairs, the 10 pairs whose premium is furthest from its baseline. Log
lines still show, above the panel. It fits an 80-column terminal. The last frame, drawn once the final
KPI file is written, shows the session's outcome (completed, interrupted, failed), not a running state.
Without a terminal the session logs a plain status line every ``status_interval_s`` instead (the
collector does that in both cases).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import trio
from rich.console import Console, ConsoleRenderable, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from actors.conventions import feed_actor
from actors.records.info import SessionInfo, SessionStatus
from actors.records.pairs import PairRow
from actors.records.sources import Progress, Sources
from actors.records.status import FeedState, book_age_s, feed_state

REFRESH_S = 0.5
TOP_PAIRS = 10  # pairs shown, ranked by |latest deviation| (issue 26)
PAIR_NAME_WIDTH = 10  # a longer coin name is cut, never the panel
BAR_WIDTH = 28  # the head row (bar, "1200.0 / 1200 s", the phase) stays within 80 columns
_STATE_STYLE = {
    FeedState.UP: "green",
    FeedState.CONNECTING: "yellow",
    FeedState.RECONNECTING: "bold yellow",
    FeedState.NOT_STARTED: "dim",
    FeedState.NEVER_CONNECTED: "bold red",
    FeedState.GIVEN_UP: "bold red",
}
_PHASE_STYLE: dict[str, str] = {
    SessionStatus.COMPLETED: "bold green",
    SessionStatus.INTERRUPTED: "bold yellow",
    SessionStatus.FAILED: "bold red",
}


def phase(progress: Progress) -> str:
    """starting (feeds not ready), running, stopping (draining), then the final status."""
    life = progress.lifecycle
    if life.status != SessionStatus.RUNNING:
        return life.status  # completed | interrupted | failed, set once the final KPI file is written
    if life.ended_at is not None:
        return "stopping"
    return "running" if life.trading_since is not None else "starting"


def render(info: SessionInfo, progress: Progress, rates: Mapping[str, float], pairs: Sequence[PairRow] = ()) -> Panel:
    """The panel; with several ``pairs``, a table of the ``TOP_PAIRS`` with the largest latest deviation."""
    elapsed = progress.duration_s()
    total = info.requested_duration_s
    head = Table.grid(padding=(0, 2))
    word = phase(progress)
    head.add_row(
        ProgressBar(total=total, completed=min(elapsed, total), width=BAR_WIDTH),
        f"{elapsed:7.1f} / {total:g} s",
        Text(word, style=_PHASE_STYLE.get(word, "")),
    )
    parts: list[ConsoleRenderable] = [head, _feeds(progress, rates), _market(progress)]
    if len(pairs) > 1:
        parts.append(_pairs(pairs))
    return Panel(
        Group(*parts),
        title=f"session {info.session_id} ({info.market})",
        expand=False,
    )


def _feeds(progress: Progress, rates: Mapping[str, float]) -> Table:
    feeds = Table(box=None, padding=(0, 1))
    for column in ("feed", "state", "msgs/s", "book age", "reconnects", "untrusted s"):
        feeds.add_column(column, justify="left" if column in ("feed", "state") else "right", no_wrap=True)
    for venue, feed in progress.feeds.items():
        age = book_age_s(progress.view, venue)
        child = progress.actors.get(feed_actor(venue))
        state = feed_state(progress, venue)
        feeds.add_row(
            venue,
            Text(state, style=_STATE_STYLE.get(state, "")),
            "-" if feed.messages == 0 else f"{rates.get(venue, 0.0):.1f}",  # nothing received yet: no rate
            "-" if age is None else f"{age:.2f} s",
            str(child.restarts if child else 0),
            f"{feed.untrusted_s:.1f}",
        )
    return feeds


def _market(progress: Progress) -> Text:
    view, trader = progress.view, progress.trader
    baseline = trader.baseline_bps
    premium = "-" if view.premium_bps is None else f"{view.premium_bps:+.1f} bps"
    fx = "-" if view.fx is None else f"{view.fx.krw_per_usdt:,.1f} KRW/USDT"
    return Text.assemble(
        f"premium {premium}   baseline {'-' if baseline is None else f'{baseline:+.1f} bps'}   FX {fx}\n",
        f"trades {trader.entries} (open {trader.open_trades})   fill events {trader.fill_events}\n",
        f"PnL {trader.realized_pnl_usdt:+.4f} USDT realized, open trades marked {trader.unrealized_pnl_usdt:+.4f}",
        no_wrap=True,
    )


def top_pairs(pairs: Sequence[PairRow], n: int = TOP_PAIRS) -> list[PairRow]:
    """The ``n`` pairs with the largest |latest deviation| (pairs without one last), ties by name."""
    return sorted(
        pairs,
        key=lambda r: (r.latest_deviation_bps is None, -abs(r.latest_deviation_bps or 0.0), r.pair),
    )[:n]


def _bps(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}"


def _pairs(pairs: Sequence[PairRow]) -> Table:
    shown = top_pairs(pairs)
    table = Table(
        box=None,
        padding=(0, 1),
        title=f"pairs: top {len(shown)} of {len(pairs)} by |deviation|",
        title_justify="left",
    )
    for column in ("pair", "premium bps", "deviation bps", "trades", "PnL USDT"):
        table.add_column(column, justify="left" if column == "pair" else "right", no_wrap=True)
    for r in shown:
        table.add_row(
            r.pair[:PAIR_NAME_WIDTH],
            _bps(r.latest_premium_bps if r.latest_premium_bps is not None else r.premium_mean_bps),
            _bps(r.latest_deviation_bps),
            str(r.entries),
            f"{r.pnl_usdt:+.4f}",
        )
    return table


class LiveView:
    """The panel for one session: ``with LiveView(info, sources, console) as live:`` around the session,
    ``live.run`` as one of its tasks; leaving the block draws the last frame, with the session's final status
    (set the status before leaving).

    ``pairs``: called at each frame for the pairs' rows (a session of several pairs); without it, or with one
    pair, the panel is the one-pair panel."""

    def __init__(
        self,
        info: SessionInfo,
        sources: Sources,
        console: Console,
        pairs: Callable[[], Sequence[PairRow]] | None = None,
    ) -> None:
        self._info, self._sources, self._pairs = info, sources, pairs
        self._live = Live(console=console, auto_refresh=False, transient=False)
        self._rates: dict[str, float] = {}

    def _draw(self, progress: Progress, rates: Mapping[str, float]) -> None:
        pairs = () if self._pairs is None else self._pairs()
        self._live.update(render(self._info, progress, rates, pairs), refresh=True)

    def __enter__(self) -> LiveView:
        self._live.start()
        self._draw(self._sources.progress(trio.current_time()), self._rates)
        return self

    def __exit__(self, *exc: object) -> None:
        progress = self._sources.progress(trio.current_time())
        duration = progress.duration_s()
        # the last frame: the average rate over the trading time, not the rate while the feeds were stopping
        rates = {v: feed.messages / duration for v, feed in progress.feeds.items()} if duration > 0 else {}
        try:
            self._draw(progress, rates)
        finally:
            self._live.stop()

    async def run(self) -> None:
        """Redraw every REFRESH_S with the messages/s of the last interval, until cancelled."""
        last = self._sources.progress(trio.current_time())
        while True:
            await trio.sleep(REFRESH_S)
            progress = self._sources.progress(trio.current_time())
            self._rates = {
                v: (feed.messages - last.feeds[v].messages) / REFRESH_S for v, feed in progress.feeds.items()
            }
            last = progress
            self._draw(progress, self._rates)
