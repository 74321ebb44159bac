"""The decisions around a Binance book for one connection: what each diff and snapshot does to the book,
what is counted, when the book may be published and when it must be withdrawn.

Pure and synchronous (the feed shell does the I/O: it reads frames, fetches the snapshots asked for,
publishes and withdraws views, logs the reasons). On top of ``BookSync``'s documented procedure:

- a book is published only when it changed and can be trusted (``BookSync.trusted``: the stream has
  continued it past its snapshot); one published view per batch, the others counted as superseded;
- a sequence gap, a book that crosses after a diff, or a book that stops advancing while diffs arrive
  (STUCK) makes it untrusted at once: the verdict says why, the shell withdraws it downstream;
- ``max_stuck_in_a_row`` stuck books without a trusted one in between, or ``max_refetch`` snapshots in a
  row older than the buffered diffs, mean the REST endpoint and the stream disagree: ``SnapshotError``;
- the diffs buffered while a snapshot is awaited outgrowing their byte budget (``BookSync``), or the book
  itself outgrowing ``book_budget`` (a stream that keeps adding levels: estimated like the diffs), is
  counted (``overflows``) and the book starts over; ``max_overflows_in_a_row`` of them without a published
  book in between end the connection: ``BufferOverflow`` (reconnect cause ``overflow``).
"""

from __future__ import annotations

import attrs

from actors.core.book import BookView, DiffBook
from actors.core.budget import LEVEL_BYTES, ByteBudget, in_words
from actors.core.kpi import FeedStats
from actors.core.venues.binance import VENUE, BookSync, DepthDiff, DepthSnapshot, Outcome, SyncState
from actors.core.vocabulary import FeedFailure, RestartCause


class SnapshotError(FeedFailure):
    """The REST depth snapshot failed, was too slow or too large, or never agreed with the stream."""

    cause = RestartCause.SNAPSHOT


class BufferOverflow(FeedFailure):
    """The diffs buffered for a snapshot outgrew their byte budget too many times in a row."""

    cause = RestartCause.OVERFLOW


@attrs.frozen
class Verdict:
    """What the shell does after one diff or snapshot."""

    publish: bool = False  # the book changed and can be trusted: publish a view of it
    lost: str | None = None  # the book can no longer be trusted: withdraw it downstream (and why)
    refetch: bool = False  # the snapshot was older than the buffered diffs: fetch another one


class BookKeeper:
    def __init__(
        self,
        symbol: str,
        stats: FeedStats,
        *,
        keep_sorted: int = 128,
        max_stuck_in_a_row: int = 3,
        max_refetch: int = 10,
        budget: ByteBudget | None = None,
        pool: ByteBudget | None = None,
        max_overflows_in_a_row: int = 3,
        book_budget: ByteBudget | None = None,
    ) -> None:
        self.symbol, self._stats = symbol, stats
        self._own = stats.per_symbol.get(symbol)  # this book's counters, when the feed keeps many books
        self.sync = BookSync(symbol, book=DiffBook(keep_sorted=keep_sorted), pool=pool)
        if budget is not None:
            self.sync.budget = budget
        self.max_stuck_in_a_row, self.max_refetch = max_stuck_in_a_row, max_refetch
        self.max_overflows_in_a_row = max_overflows_in_a_row
        self.book_budget = book_budget
        self._stuck_in_a_row = 0
        self._overflows_in_a_row = 0
        self._refetches_in_a_row = 0
        self._event_ms: int | None = None  # exchange time of the newest diff the book holds (or will)

    @property
    def needs_snapshot(self) -> bool:
        return self.sync.state is SyncState.NEEDS_SNAPSHOT

    def on_diff(self, diff: DepthDiff) -> Verdict:
        outcome = self.sync.on_diff(diff)
        if outcome is Outcome.APPLIED or outcome is Outcome.BUFFERED:
            self._event_ms = diff.event_ms  # a buffered one is applied by the next snapshot, if newer
        if outcome is Outcome.GAP:
            self._gap()
            return Verdict(lost=f"sequence gap at U={diff.first_id} (local id was lower); resyncing")
        if outcome is Outcome.STUCK:
            return Verdict(lost=self._stuck(f" (last u={diff.final_id})"))
        if outcome is Outcome.OVERFLOW:
            return Verdict(lost=self._overflowed("them"))
        return self._checked(outcome is Outcome.APPLIED)

    def on_snapshot(self, snapshot: DepthSnapshot) -> Verdict:
        outcome = self.sync.on_snapshot(snapshot)
        if outcome is Outcome.REFETCH:
            self._stats.snapshot_refetches += 1
            self._refetches_in_a_row += 1
            if self._refetches_in_a_row >= self.max_refetch:
                raise SnapshotError(f"snapshot stayed older than the buffered diffs after {self.max_refetch} fetches")
            return Verdict(refetch=True)
        self._refetches_in_a_row = 0
        self._stats.resyncs += 1
        if self._own is not None:
            self._own.resyncs += 1
        if outcome is Outcome.GAP:
            self._gap()
            return Verdict(lost="sequence gap in the buffered diffs; resyncing")
        if outcome is Outcome.STUCK:
            return Verdict(lost=self._stuck(""))
        verdict = self._checked(True)
        if verdict.publish:  # the buffered diffs already advanced it past the snapshot: one view for them all
            self._stats.books_superseded += self.sync.replayed - 1
        return verdict

    def follow(self, verdict: Verdict, now: float) -> bool:
        """The counters' side of a verdict (the shell withdraws a lost book and logs why): a lost book is
        untrusted from ``now``. Whether to publish a view of the book."""
        if verdict.lost is not None:
            self._stats.book_untrusted(self.symbol, now)
        return verdict.publish

    def publish(self, depth: int, received_at: float) -> BookView:
        """The view to publish now: the book is trusted again from ``received_at`` (``published``)."""
        self.published()
        self._stats.book_trusted(self.symbol, received_at)
        return self.view(depth, received_at)

    def published(self) -> None:
        """A view of the book went out: it is trusted again, stuck books and overflows no longer count in a row."""
        self._stuck_in_a_row = 0
        self._overflows_in_a_row = 0

    def release(self) -> None:
        """The connection ends: give the buffered diffs' bytes back to the pool every book shares."""
        self.sync.release()

    def view(self, depth: int, received_at: float) -> BookView:
        return self.sync.book.view(VENUE, self.symbol, depth, received_at, self._event_ms)

    def _gap(self) -> None:
        self._stats.gaps += 1
        if self._own is not None:
            self._own.gaps += 1

    def _checked(self, changed: bool) -> Verdict:
        sync = self.sync
        budget = self.book_budget
        if budget is not None and changed and len(sync.book) * LEVEL_BYTES > budget.limit:
            levels = len(sync.book)
            sync.restart()
            key = f" ({budget.key})" if budget.key else ""
            sync.overflow = (
                f"the book grew to {levels:,} levels ({in_words(levels * LEVEL_BYTES)}), past its budget of "
                f"{in_words(budget.limit)}{key}"
            )
            return Verdict(lost=self._overflowed("it"))
        if sync.synced and sync.book.crossed:
            self._stats.crossed_books += 1
            update_id = sync.book.update_id
            sync.restart()
            return Verdict(lost=f"book crossed at update {update_id}: discarding it and resyncing")
        return Verdict(publish=changed and sync.trusted)

    def _overflowed(self, what: str) -> str:
        self._stats.overflows += 1
        self._overflows_in_a_row += 1
        if self._overflows_in_a_row >= self.max_overflows_in_a_row:
            raise BufferOverflow(
                f"{self.sync.overflow}, {self._overflows_in_a_row} times in a row: the stream outgrows what may "
                "be held until a snapshot arrives"
            )
        return f"{self.sync.overflow}: discarding {what} and resyncing (overflow)"

    def _stuck(self, detail: str) -> str:
        self._stats.stuck_books += 1
        self._stuck_in_a_row += 1
        if self._stuck_in_a_row >= self.max_stuck_in_a_row:
            raise SnapshotError(
                f"{self._stuck_in_a_row} snapshots in a row were ahead of every diff the stream "
                "sent: the REST endpoint and the stream disagree"
            )
        return f"book stopped advancing: {self.sync.max_ignored} diffs in a row older than it{detail}; resyncing"
