"""One market view per pair from the venue books: best prices, depth, the USDT/KRW rate, the premium, book ages.

The premium is the Upbit KRW price converted to USDT with the FX rate, relative to the Binance USDT
price, in basis points: ``(krw_mid / krw_per_usdt / usdt_mid - 1) * 1e4``.

``MarketState`` holds one pair's books; ``Markets`` routes books to one ``MarketState`` per pair (the FX book
reaches every pair) and publishes the views of the pairs whose inputs changed (issue 26).
"""

from __future__ import annotations

import attrs

from actors.core.book import BookView
from actors.core.pairs import Pair

BTC_PAIR = Pair.of("BTC")  # the pair of a view built without one (the one-pair session's)

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
    pair: Pair = BTC_PAIR  # whose books these are; its FX basis (rate, source, when observed) is ``fx``

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


def _one_pair(krw_key: BookKey, usdt_key: BookKey) -> Pair:
    """The pair of a one-pair session on these two books: their codes, its coin BTC."""
    return attrs.evolve(Pair.from_codes(krw_key[1], usdt_key[1]), base=BTC_PAIR.base)


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
    # the pair whose view this builds. By default the one-pair session's: its two market codes, and its coin
    # called BTC whatever they are (its [portfolio] and every file of it say BTC: a replay may even pair KRW-WAVES
    # with BTCUSDT); a market's pairs are given (``Markets.of``)
    pair: Pair = attrs.field(
        default=attrs.Factory(lambda self: _one_pair(self.krw_key, self.usdt_key), takes_self=True)
    )
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

    def share_books(self, books: dict[BookKey, BookView]) -> None:
        """Keep the books in ``books`` from now on, a store other states read too (``Markets``)."""
        books.update(self._books)
        self._books = books

    def publish(self, now: float) -> MarketView:
        """The view of the books now, kept as ``published`` (the aggregator's, once its window closes)."""
        self.published = self.view(now)
        return self.published

    def view(self, now: float) -> MarketView:
        krw, usdt, fx = self._books.get(self.krw_key), self._books.get(self.usdt_key), self.fx()
        premium = None
        if krw is not None and usdt is not None and fx is not None and krw.mid and usdt.mid:
            premium = premium_bps(krw.mid, usdt.mid, fx.krw_per_usdt)
        return MarketView(now, krw, usdt, fx, premium, self.pair)


@attrs.define
class Markets:
    """The market of many pairs: one ``MarketState`` per pair, in the order given, books routed to them by
    (venue, symbol). The states share one dict of books, so a book is stored once whatever reads it: the FX book
    (every pair's rate) is one store and marks every pair changed. ``publish(now)`` returns the views of the pairs
    whose inputs changed since the last publish, in the pairs' order; a book no pair reads is ignored."""

    states: tuple[MarketState, ...]
    _books: dict[BookKey, BookView] = attrs.field(factory=dict)
    _routes: dict[BookKey, tuple[int, ...]] = attrs.field(init=False)
    _by_pair: dict[Pair, MarketState] = attrs.field(init=False)
    _changed: set[int] = attrs.field(factory=set, init=False)
    _fx_keys: frozenset[BookKey] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        routes: dict[BookKey, list[int]] = {}
        for i, state in enumerate(self.states):
            state.share_books(self._books)  # one store for every pair: the FX book is kept once
            for key in (state.krw_key, state.usdt_key, state.fx_key):
                if key is not None:
                    routes.setdefault(key, []).append(i)
        self._routes = {key: tuple(indexes) for key, indexes in routes.items()}
        self._by_pair = {state.pair: state for state in self.states}
        self._fx_keys = frozenset(state.fx_key for state in self.states if state.fx_key is not None)
        if len(self._by_pair) != len(self.states):
            raise ValueError("Markets: a pair given twice")

    @classmethod
    def of(
        cls,
        pairs: tuple[Pair, ...],
        fx_key: BookKey | None = ("upbit", "KRW-USDT"),
        fixed_krw_per_usdt: float | None = None,
        started_at: float = 0.0,
        krw_venue: str = "upbit",
        usdt_venue: str = "binance",
    ) -> Markets:
        """The market of ``pairs``, each on its Upbit code and Binance symbol, with one FX source for all."""
        return cls(
            tuple(
                MarketState(
                    (krw_venue, pair.upbit_code),
                    (usdt_venue, pair.binance_symbol),
                    fx_key,
                    fixed_krw_per_usdt,
                    started_at,
                    pair,
                )
                for pair in pairs
            )
        )

    @property
    def pairs(self) -> tuple[Pair, ...]:
        return tuple(state.pair for state in self.states)

    def state(self, pair: Pair) -> MarketState:
        return self._by_pair[pair]

    def update(self, book: BookView) -> None:
        """Store ``book`` and mark the pairs it changes. An FX book whose mid did not move changes no pair's premium
        (every pair would otherwise decide again on the same inputs, ten times a second): it is stored, and each
        pair's next view carries it; a pair's own book, or a move of the rate, marks the pair."""
        key = (book.venue, book.symbol)
        routes = self._routes.get(key)
        if routes is None:
            return
        previous = self._books.get(key)
        self._books[key] = book
        if key in self._fx_keys and previous is not None and book.mid is not None and book.mid == previous.mid:
            return
        self._changed.update(routes)

    def publish(self, now: float) -> tuple[MarketView, ...]:
        """The views now of the pairs whose books or FX changed since the last publish (each kept as its state's
        ``published``), in the pairs' order."""
        changed, self._changed = sorted(self._changed), set()
        return tuple(self.states[i].publish(now) for i in changed)

    @property
    def lead(self) -> MarketState:
        """The pair a session's one-line figures follow (status line, premium series): BTC's if traded, else the
        first."""
        return next((st for st in self.states if st.pair.base == BTC_PAIR.base), self.states[0])

    @property
    def published(self) -> MarketView | None:
        """The lead pair's last published view."""
        return self.lead.published

    def view(self, now: float) -> MarketView:
        """The lead pair's view now."""
        return self.lead.view(now)

    def views(self) -> tuple[MarketView, ...]:
        """Every pair's last published view (pairs never published left out)."""
        return tuple(s.published for s in self.states if s.published is not None)
