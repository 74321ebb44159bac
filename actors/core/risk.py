"""Risk limits (``[risk]``), the checks every order's books pass first, and what the limits and balances allow
an entry (``OrderChecks``): a book or an order the trader may not send says why, as the refusal counted for
it (docs/kpis.md, ``refusals``). Positions and balances are those of the view's pair's base coin (BTC for the
one-pair session; ``max_position_btc`` limits each coin's quantity the same way)."""

from __future__ import annotations

import math

import attrs

from actors.core.book import BookView
from actors.core.fills import Fees
from actors.core.market import MarketView
from actors.core.portfolio import Portfolio
from actors.core.refusals import Refusal
from actors.core.rules import Limit, positive_or_inf
from actors.core.vocabulary import Direction, Side, Venue


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


@attrs.frozen
class OrderChecks:
    """What the books, the limits and the balances allow an order: the ``[risk]`` limits, the fees a leg pays, how
    far from the best price it may fill (``strategy.max_slippage_bps``) and how old a book may be."""

    limits: RiskLimits
    fees: Fees
    max_slippage_bps: float
    max_book_age_s: float

    def books(self, view: MarketView) -> Refusal | None:
        """Why no order may be sent on ``view`` (entries and exits alike): a book missing a side, crossed, out of
        price order or stale (``book_problem``, the KRW leg's first); None when both books allow it."""
        for book in (view.krw_leg, view.usdt_leg):
            assert book is not None
            problem = book_problem(book, view.at, self.max_book_age_s)
            if problem is not None:
                return problem
        return None

    def refusal(self, portfolio: Portfolio, view: MarketView, direction: Direction, qty: float) -> Refusal | None:
        """Why an entry of ``qty`` in ``direction`` may not be sent (its notional, either venue's position or
        balances), or None. The loss limit and a risk stop are the trader's: it holds the PnL."""
        assert view.krw_leg is not None and view.usdt_leg is not None
        if qty * (view.usdt_leg.mid or 0.0) > self.limits.max_notional_usdt:
            return Refusal.MAX_NOTIONAL
        base = view.pair.base
        for book, side in ((view.krw_leg, direction.krw_side), (view.usdt_leg, direction.usdt_side)):
            if (
                abs(moved(portfolio, book.venue, base) + (qty if side == Side.BUY else -qty))
                > self.limits.max_position_btc
            ):
                return Refusal.MAX_POSITION
            if self.shortfall(portfolio, book, side, qty, base) is not None:
                return Refusal.BUDGET
        return None

    def shortfall(self, portfolio: Portfolio, book: BookView, side: Side, qty: float, base: str = "BTC") -> str | None:
        """Why the balances cannot pay for ``qty`` of ``base`` on ``book`` (a BUY at the limit price, its fee
        included), or None."""
        price = book.asks[0][0] if side == Side.BUY else book.bids[0][0]
        quote = Venue(book.venue).quote
        fee, fee_ccy = self.fees.charge(book.venue, side, qty, price)
        return portfolio.shortfall(
            book.venue,
            side,
            qty,
            price * (1 + self.max_slippage_bps / 1e4) if side == Side.BUY else price,
            quote,
            fee if fee_ccy == quote else 0.0,
            base,
        )

    def room(self, portfolio: Portfolio, view: MarketView, direction: Direction) -> float:
        """The largest size the balances and limits allow an entry in ``direction`` (``refusal`` checks the
        final size)."""
        assert view.krw_leg is not None and view.usdt_leg is not None
        room = self.limits.max_notional_usdt / (view.usdt_leg.mid or math.inf)
        base = view.pair.base
        for book, side in ((view.krw_leg, direction.krw_side), (view.usdt_leg, direction.usdt_side)):
            held = moved(portfolio, book.venue, base)
            room = min(room, self.limits.max_position_btc - (held if side == Side.BUY else -held))
            if side == Side.SELL:
                room = min(room, portfolio.available(book.venue, base))
            else:
                worst = book.asks[0][0] * (1 + self.max_slippage_bps / 1e4)
                cash = portfolio.available(book.venue, Venue(book.venue).quote)
                room = min(room, cash / (worst * (1 + self.fees.rate_bps(book.venue) / 1e4)))
        return max(room, 0.0)


def moved(portfolio: Portfolio, venue: str, asset: str) -> float:
    """How much of ``asset`` the fills moved on ``venue`` since the start (0 for an asset never held)."""
    return portfolio.balances[venue].get(asset, 0.0) - portfolio.initial[venue].get(asset, 0.0)
