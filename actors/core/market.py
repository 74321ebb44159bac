"""One market view from the venue books: best prices, depth, the USDT/KRW rate, the premium, book ages.

The premium is the Upbit KRW price converted to USDT with the FX rate, relative to the Binance USDT
price, in basis points: ``(krw_mid / krw_per_usdt / usdt_mid - 1) * 1e4``.
"""

from __future__ import annotations

import attrs

from actors.core.book import BookView

BookKey = tuple[str, str]  # (venue, symbol)


@attrs.frozen
class FxQuote:
    krw_per_usdt: float
    source: str  # "upbit:KRW-USDT" or "fixed"
    observed_at: float  # local time of the book it came from (the session start for "fixed")


@attrs.frozen
class MarketView:
    at: float
    krw_leg: BookView | None  # e.g. Upbit KRW-BTC
    usdt_leg: BookView | None  # e.g. Binance BTCUSDT
    fx: FxQuote | None
    premium_bps: float | None

    @property
    def complete(self) -> bool:
        return self.premium_bps is not None

    @property
    def newest_received_at(self) -> float | None:
        """When the newest input of this view arrived: either leg's book, or the book the FX rate came
        from (a view is often triggered by the FX book alone). Wire-to-decision counts from here."""
        times = [b.received_at for b in (self.krw_leg, self.usdt_leg) if b is not None]
        if self.fx is not None:
            times.append(self.fx.observed_at)
        return max(times) if times else None

    def book_age_s(self, book: BookView | None) -> float | None:
        return None if book is None else self.at - book.received_at

    def fx_age_s(self) -> float | None:
        return None if self.fx is None else self.at - self.fx.observed_at


def premium_bps(krw_price: float, usdt_price: float, krw_per_usdt: float) -> float:
    return (krw_price / krw_per_usdt / usdt_price - 1.0) * 1e4


@attrs.define
class MarketState:
    """Latest book per market; builds a MarketView from them (``view``), and keeps the last one handed to the
    decisions (``publish``): what a reader that runs at the same instant as a book's arrival sees
    (``published``) does not depend on whether the book came first (Trio picks the order of tasks ready at
    one instant at random), so a session's premium series is the same from run to run."""

    krw_key: BookKey
    usdt_key: BookKey
    fx_key: BookKey | None = None  # book whose mid is the USDT/KRW rate
    fixed_krw_per_usdt: float | None = None  # used when fx_key is None
    started_at: float = 0.0
    _books: dict[BookKey, BookView] = attrs.field(factory=dict)
    published: MarketView | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.fx_key is None and self.fixed_krw_per_usdt is None:
            raise ValueError("MarketState needs an FX book or a fixed rate")

    def fx(self) -> FxQuote | None:
        if self.fx_key is None:
            assert self.fixed_krw_per_usdt is not None  # checked at construction
            return FxQuote(self.fixed_krw_per_usdt, "fixed", self.started_at)
        book = self._books.get(self.fx_key)
        if book is None or book.mid is None:
            return None
        return FxQuote(book.mid, f"{self.fx_key[0]}:{self.fx_key[1]}", book.received_at)

    def update(self, book: BookView) -> None:
        self._books[(book.venue, book.symbol)] = book

    def publish(self, now: float) -> MarketView:
        """The view of the books now, kept as ``published`` (the aggregator's, once its window closes)."""
        self.published = self.view(now)
        return self.published

    def view(self, now: float) -> MarketView:
        krw, usdt, fx = self._books.get(self.krw_key), self._books.get(self.usdt_key), self.fx()
        premium = None
        if krw is not None and usdt is not None and fx is not None and krw.mid and usdt.mid:
            premium = premium_bps(krw.mid, usdt.mid, fx.krw_per_usdt)
        return MarketView(now, krw, usdt, fx, premium)
