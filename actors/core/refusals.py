"""Why the trader did not act on a market view: one ``Refusal`` per reason.

Each is counted once per view under ``refusals`` in the KPI file, keyed by its ``label`` (docs/kpis.md). It
also carries the words the session's summary uses: ``short`` for a run with trades ("views not traded:
premium inside the entry threshold 8,364, ..."), ``sentence`` and the ``setting`` it names for a run without
one ("no trade: the premium never moved beyond the entry threshold ..."). A KPI file may hold a label this
version does not know (written by a newer one): ``words_of`` describes any label.
"""

from __future__ import annotations

import enum

import attrs


class Refusal(enum.StrEnum):
    """A reason, encoded as its KPI label."""

    WARMUP = "warmup"  # no entry before strategy.warmup_s of baseline
    BELOW_ENTRY = "below_entry"  # the executable premium did not reach the zone's entry threshold
    THIN_BOOKS = "thin_books"  # the order size was not executable on the visible depth, either direction
    SIZE_BELOW_MIN = "size_below_min"  # depth sizing found less than min_order_qty_btc that clears
    HEDGE_COST = "hedge_cost"  # cleared the threshold only before the expected cost of hedging
    EMPTY = "empty"  # a book had a side without levels
    CROSSED = "crossed"  # a book's best bid >= its best ask
    UNSORTED = "unsorted"  # a book out of price order
    STALE = "stale"  # a book older than strategy.max_book_age_s
    BUDGET = "budget"  # the balances could not pay for an entry
    MAX_POSITION = "max_position"
    MAX_NOTIONAL = "max_notional"
    RISK_STOPPED = "risk_stopped"  # new entries stopped for good (max loss, a disk error)
    PREMIUM_BAND = "premium_band"  # the mid premium beyond [risk] max_premium_bps: bad data, no decision
    EXIT_BUDGET = "exit_budget"  # an exit, re-sent exit or unwind leg the balances could not pay for
    MARKET_CAP = "market_cap"  # a market's caps across pairs: open trades, exposure per pair or in total

    @property
    def label(self) -> str:
        """Its key under ``refusals`` in the KPI file."""
        return self.value

    @property
    def short(self) -> str:
        return _WORDS[self].short

    @property
    def sentence(self) -> str:
        return _WORDS[self].sentence

    @property
    def setting(self) -> str | None:
        return _WORDS[self].setting


@attrs.frozen
class Words:
    short: str  # a few words, for a list of counts
    sentence: str  # why views were not traded, for a run that made no trade
    setting: str | None = None  # the config key the sentence names, shown with its value


_WORDS: dict[Refusal, Words] = {
    Refusal.WARMUP: Words("warm-up", "warm-up (strategy.warmup_s): no entry before the baseline had that much history"),
    Refusal.BELOW_ENTRY: Words(
        "premium inside the entry threshold", "the premium never moved beyond the entry threshold"
    ),
    Refusal.THIN_BOOKS: Words(
        "thin books", "the order size was not executable on the visible depth", "strategy.order_qty_btc"
    ),
    Refusal.SIZE_BELOW_MIN: Words(
        "size below minimum",
        "depth sizing found no size from the minimum order up that clears the entry threshold",
        "strategy.min_order_qty_btc",
    ),
    Refusal.HEDGE_COST: Words(
        "expected hedge cost",
        "the premium cleared the entry threshold only before the expected cost of hedging what the fill model "
        "says will not fill",
    ),
    Refusal.EMPTY: Words("empty book", "a book was empty (withdrawn while it resynced)"),
    Refusal.CROSSED: Words("crossed book", "a book was crossed (bid >= ask)"),
    Refusal.UNSORTED: Words("book out of order", "a book was out of price order"),
    Refusal.STALE: Words("stale book", "a book was older than allowed", "strategy.max_book_age_s"),
    Refusal.BUDGET: Words("budget", "the balances ([portfolio]) could not pay for an entry"),
    Refusal.MAX_POSITION: Words(
        "max position", "an entry would have exceeded the position limit", "risk.max_position_btc"
    ),
    Refusal.MAX_NOTIONAL: Words(
        "max notional", "a leg would have exceeded the notional limit", "risk.max_notional_usdt"
    ),
    Refusal.RISK_STOPPED: Words("risk stop", "new entries were stopped (the risk stop below)"),
    Refusal.PREMIUM_BAND: Words(
        "premium out of band", "the premium was implausible, beyond its sanity band", "risk.max_premium_bps"
    ),
    Refusal.MARKET_CAP: Words(
        "market cap",
        "the market's caps across pairs (open trades, exposure per pair or in total) left no room for an entry",
    ),
    Refusal.EXIT_BUDGET: Words("exit budget", "the balances could not pay for an exit leg (it was tried again later)"),
}


def words_of(label: str) -> Words:
    """The words of a KPI label: a ``Refusal``'s, or for a label this version does not know, the label itself
    (and with spaces for its sentence)."""
    try:
        return _WORDS[Refusal(label)]
    except ValueError:
        return Words(label, label.replace("_", " "))
