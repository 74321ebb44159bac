"""Risk limits (``[risk]``) and the checks every order's books pass first: a book the trader may not send an
order on says why, as the refusal counted for it (docs/kpis.md, ``refusals``)."""

from __future__ import annotations

import math

import attrs

from actors.core.book import BookView
from actors.core.refusals import Refusal
from actors.core.rules import Limit, positive_or_inf


@attrs.frozen
class RiskLimits:
    """Risk limits (``[risk]`` in the config is this type); inf is no limit."""

    # BTC bought or sold on one venue, counting the new leg
    max_position_btc: Limit = attrs.field(default=Limit(math.inf), validator=positive_or_inf)
    max_notional_usdt: Limit = attrs.field(default=Limit(math.inf), validator=positive_or_inf)  # per leg
    # realized + marked loss at which new entries stop for good
    max_loss_usdt: Limit = attrs.field(default=Limit(math.inf), validator=positive_or_inf)
    # |mid premium| beyond this is bad data, not an opportunity
    max_premium_bps: Limit = attrs.field(default=Limit(1500.0), validator=positive_or_inf)


def book_problem(book: BookView, now: float, max_age_s: float) -> Refusal | None:
    """Why no order may be sent on ``book`` at ``now``: ``EMPTY`` (a side without levels), ``CROSSED``,
    ``UNSORTED`` (out of price order) or ``STALE`` (older than ``max_age_s``); None when it may."""
    if not book.bids or not book.asks:
        return Refusal.EMPTY
    if book.crossed:
        return Refusal.CROSSED
    if not in_order(book):
        return Refusal.UNSORTED
    if now - book.received_at > max_age_s:
        return Refusal.STALE
    return None


def in_order(book: BookView) -> bool:
    """Bids strictly descending, asks strictly ascending: what every depth walk assumes. The feeds refuse
    books out of order; this check keeps a decision from ever walking one that got through."""
    bids, asks = book.bids, book.asks
    return all(bids[i][0] > bids[i + 1][0] for i in range(len(bids) - 1)) and all(
        asks[i][0] < asks[i + 1][0] for i in range(len(asks) - 1)
    )
