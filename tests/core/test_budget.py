"""Byte budgets: what an exchange can make a Binance book hold while its snapshot is awaited is bounded in bytes
(per book and over every book), not by a count of diffs whose size the exchange decides."""

from __future__ import annotations

import tracemalloc

import pytest

from actors.core.budget import LEVEL_BYTES, ByteBudget, in_words, levels_bytes
from actors.core.kpi import FeedStats
from actors.core.venues import binance
from actors.core.venues.binance import BookSync, DepthDiff, DepthSnapshot, Outcome, SyncState
from actors.core.venues.binance_book import BookKeeper, BufferOverflow, Verdict
from actors.core.vocabulary import RestartCause


def diff(first: int, final: int, levels: int = 1) -> DepthDiff:
    bids = tuple((100.0 - i * 0.01, 1.0) for i in range(levels))
    return DepthDiff("T", first, final, final, bids, ((101.0, 1.0),))


def snapshot(last_id: int) -> DepthSnapshot:
    return DepthSnapshot(last_id, ((99.0, 1.0),), ((102.0, 1.0),))


def test_the_estimate_is_what_the_decoder_really_allocates():
    """A wire diff of 20,000 levels a side, decoded: the estimate is within 15 % of what tracemalloc counts."""
    levels = ",".join(f'["{60000 + i / 100:.2f}","0.50000000"]' for i in range(20_000))
    frame = (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,'
        f'"b":[{levels}],"a":[{levels}]}}}}'
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = binance.decode(frame)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert isinstance(decoded, DepthDiff) and len(decoded.bids) == 20_000
    assert levels_bytes(40_000) == pytest.approx(held, rel=0.15)


def test_a_budget_takes_what_fits_and_gives_back_what_was_taken():
    budget = ByteBudget(1000, "k")
    assert budget.take(600) and not budget.take(401) and budget.used == 600
    budget.give(600)
    assert budget.used == 0
    with pytest.raises(ValueError, match="only 0 are taken"):
        budget.give(1)
    assert in_words(32 * 1024 * 1024) == "32 MiB" and in_words(1536) == "1.5 KiB" and in_words(10) == "10 bytes"


def test_a_book_buffers_diffs_up_to_its_byte_budget_then_starts_over():
    size = levels_bytes(101)  # a diff of 100 bids and 1 ask
    sync = BookSync("T", budget=ByteBudget(3 * size, "feeds.binance.diff_buffer_bytes"))
    assert [sync.on_diff(diff(i, i, levels=100)) for i in (1, 2, 3)] == [Outcome.BUFFERED] * 3
    assert sync.buffered_bytes == 3 * size
    assert sync.on_diff(diff(4, 4, levels=100)) is Outcome.OVERFLOW  # the fourth does not fit: all discarded
    assert sync.buffered_bytes == 0 and sync.state is SyncState.WAITING_FIRST_EVENT
    assert sync.overflow == (
        f"4 diffs buffered for a snapshot ({in_words(4 * size)}, the last one 101 levels) outgrew this book's "
        f"budget of {in_words(3 * size)} (feeds.binance.diff_buffer_bytes)"
    )
    assert sync.on_diff(diff(5, 5)) is Outcome.BUFFERED  # and starts over with the next one
    assert sync.on_snapshot(snapshot(5)) is Outcome.SYNCED and sync.buffered_bytes == 0  # the snapshot gives back


def test_one_diff_larger_than_the_whole_budget_is_never_held():
    sync = BookSync("T", budget=ByteBudget(10 * LEVEL_BYTES))
    assert sync.on_diff(diff(1, 1, levels=1000)) is Outcome.OVERFLOW
    assert sync.buffered_bytes == 0


def test_every_book_shares_the_pool_and_gives_its_bytes_back_when_released():
    size = levels_bytes(2)
    pool = ByteBudget(3 * size, "feeds.binance.diff_buffer_total_bytes")
    a = BookSync("A", budget=ByteBudget(10 * size), pool=pool)
    b = BookSync("B", budget=ByteBudget(10 * size), pool=pool)
    assert a.on_diff(diff(1, 1)) is Outcome.BUFFERED and a.on_diff(diff(2, 2)) is Outcome.BUFFERED
    assert b.on_diff(diff(1, 1)) is Outcome.BUFFERED and pool.used == 3 * size
    assert b.on_diff(diff(2, 2)) is Outcome.OVERFLOW  # its own budget has room; the pool has not
    assert (
        "outgrew the budget every book shares, 1.83 KiB (1.83 KiB held)" in b.overflow
        and "(feeds.binance.diff_buffer_total_bytes)" in b.overflow
    )
    assert pool.used == 2 * size and b.buffered_bytes == 0
    a.release()
    assert pool.used == 0 and a.buffered_bytes == 0


def test_a_gap_rebuffers_within_the_budget():
    pool = ByteBudget(10**6)
    sync = BookSync("T", pool=pool)
    sync.on_diff(diff(1, 1))
    sync.on_snapshot(snapshot(1))
    assert sync.on_diff(diff(5, 5)) is Outcome.GAP  # discarded, buffering from the diff that showed the gap
    assert sync.buffered_bytes == levels_bytes(2) == pool.used
    sync.restart()
    assert pool.used == 0


def test_overflows_are_counted_named_and_three_in_a_row_end_the_connection():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats, budget=ByteBudget(levels_bytes(2), "feeds.binance.diff_buffer_bytes"))
    for n in (1, 2):
        verdict = keeper.on_diff(diff(n, n, levels=5))
        assert verdict.lost is not None and verdict.lost.endswith("discarding them and resyncing (overflow)")
        assert "(feeds.binance.diff_buffer_bytes)" in verdict.lost and stats.overflows == n
    with pytest.raises(BufferOverflow, match="3 times in a row") as raised:
        keeper.on_diff(diff(3, 3, levels=5))
    assert raised.value.restart_cause is RestartCause.OVERFLOW and stats.overflows == 3


def test_a_published_book_resets_the_overflows_in_a_row():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats, budget=ByteBudget(levels_bytes(2)))
    for _ in range(2):
        assert keeper.on_diff(diff(1, 1, levels=5)).lost is not None
        assert keeper.on_diff(diff(1, 1)) == Verdict()
        keeper.on_snapshot(snapshot(1))
        assert keeper.on_diff(diff(2, 2)) == Verdict(publish=True)
        keeper.published()
        keeper.sync.restart()
    assert stats.overflows == 2  # two, never two in a row


def test_a_book_the_stream_keeps_growing_is_an_overflow_and_starts_over():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats, book_budget=ByteBudget(100 * LEVEL_BYTES, "feeds.binance.book_bytes"))
    keeper.on_diff(diff(1, 1))
    keeper.on_snapshot(snapshot(1))
    assert keeper.on_diff(diff(2, 2, levels=50)).publish  # 52 levels: within 100
    verdict = keeper.on_diff(diff(3, 3, levels=150))  # 100 more bid prices: the book grows to 152 levels
    assert verdict.lost == (
        "the book grew to 152 levels (16.6 KiB), past its budget of 10.9 KiB (feeds.binance.book_bytes): "
        "discarding it and resyncing (overflow)"
    )
    assert stats.overflows == 1 and not keeper.sync.synced and len(keeper.sync.book) == 0
