"""What a running session says about itself: each feed's state in words, the log's status line and a line of
the premium series (premium_<id>.csv). All of it is read from snapshots (``actors.records.sources``)."""

from __future__ import annotations

import enum

from actors.conventions import feed_actor
from actors.core.market import MarketView
from actors.core.trader_outputs import TraderStatistics
from actors.core.vocabulary import Venue
from actors.records.info import SessionInfo
from actors.records.sources import Progress
from supervision import counts_in_words


class FeedState(enum.StrEnum):
    """A feed's state in words (the status line and the live panel): a feed that has not been started yet (the
    Binance feed starts once Upbit is ready), or has never delivered a book, is not "DOWN"."""

    NOT_STARTED = "not started"
    CONNECTING = "connecting"
    UP = "up"
    RECONNECTING = "reconnecting"
    NEVER_CONNECTED = "never connected"
    GIVEN_UP = "given up"
    STOPPED = "stopped"


def book_age_s(view: MarketView, venue: str) -> float | None:
    """Age of the latest book of a feed's venue (Upbit is the KRW leg), or None before its first book."""
    return view.book_age_s(view.krw_leg if venue == Venue.UPBIT else view.usdt_leg)


def feed_state(progress: Progress, venue: str) -> FeedState:
    """A feed's state, from its counters and its supervisor's."""
    feed = progress.feeds[venue]
    child = progress.actors.get(feed_actor(venue))
    ended = progress.lifecycle.ended_at is not None
    if child is not None and child.starts == 0:
        return FeedState.NOT_STARTED
    if feed.connected:
        return FeedState.UP
    if feed.connects == 0 and (ended or (child is not None and child.gave_up)):
        return FeedState.NEVER_CONNECTED
    if child is not None and child.gave_up:
        return FeedState.GIVEN_UP
    if ended:
        return FeedState.STOPPED
    return FeedState.CONNECTING if feed.books == 0 else FeedState.RECONNECTING


def status_line(info: SessionInfo, progress: Progress) -> str:
    """The log's status line: trading time (or the time spent starting), each feed, premium, trades, PnL.

    ``t=   29.9s | upbit:up msgs=603 age=0.10s rc=0 | binance:not started | premium=...``; a feed with
    failures adds their causes in words: ``rc=5 (connect 5)``."""
    view, life = progress.view, progress.lifecycle
    if life.trading_since is None and life.ended_at is None:
        parts = [f"starting {progress.now - info.opened_at:5.1f}s"]
    else:
        parts = [f"t={progress.duration_s():7.1f}s"]
    for venue, feed in progress.feeds.items():
        state = feed_state(progress, venue)
        if state == FeedState.NOT_STARTED:
            parts.append(f"{venue}:{state}")
            continue
        age = book_age_s(view, venue)
        child = progress.actors.get(feed_actor(venue))
        failures = f" ({counts_in_words(child.causes)})" if child is not None and child.causes else ""
        parts.append(
            f"{venue}:{state} msgs={feed.messages} age={'-' if age is None else f'{age:.2f}s'} "
            f"rc={child.restarts if child else 0}{failures}"
        )
    premium = "-" if view.premium_bps is None else f"{view.premium_bps:.1f}bps"
    trader = progress.trader
    parts.append(
        f"premium={premium} trades={trader.entries} fills={trader.fill_events} pnl={trader.realized_pnl_usdt:+.4f}USDT"
    )
    return " | ".join(parts)


# premium_<id>.csv's columns (docs/file-formats.md); files written before the last three (or the last four)
# lack them, and readers accept those
PREMIUM_COLUMNS = (
    "t_s",
    "premium_bps",
    "baseline_bps",
    "ts_utc",
    "equity_usdt",
    "binance_mid",
    "upbit_mid",
    "krw_per_usdt",
)
PREMIUM_HEADER = ",".join(PREMIUM_COLUMNS) + "\n"


def premium_sample(t_s: float, ts_utc: str, view: MarketView, trader: TraderStatistics) -> str | None:
    """One line of premium_<id>.csv (``PREMIUM_COLUMNS``) at session time ``t_s`` (market time ``ts_utc``):
    t_s, premium_bps, baseline_bps, ts_utc, equity_usdt (realized PnL plus open trades marked to mid), then the
    view's Binance mid (USDT), Upbit mid (KRW) and FX (KRW per USDT) the premium came from; None before both
    books."""
    baseline = trader.baseline_bps
    usdt_mid = view.usdt_leg.mid if view.usdt_leg is not None else None
    krw_mid = view.krw_leg.mid if view.krw_leg is not None else None
    if view.premium_bps is None or baseline is None or view.fx is None or usdt_mid is None or krw_mid is None:
        return None
    equity = trader.realized_pnl_usdt + trader.unrealized_pnl_usdt
    return (
        f"{t_s:.3f},{view.premium_bps:.4f},{baseline:.4f},{ts_utc},{equity:.6f},"
        f"{usdt_mid:.12g},{krw_mid:.12g},{view.fx.krw_per_usdt:.12g}\n"
    )
