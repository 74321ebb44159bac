"""The Binance book's decisions, without any I/O: what each diff and snapshot does, what is counted, when the
book is published and when it is withdrawn (the feed shell only follows these verdicts)."""

from __future__ import annotations

import pytest

from actors.core.kpi import FeedStats
from actors.core.venues.binance import DepthDiff, DepthSnapshot
from actors.core.venues.binance_book import BookKeeper, SnapshotError, Verdict


def diff(first: int, final: int, bids=((100.0, 1.0),), asks=((101.0, 1.0),)) -> DepthDiff:
    return DepthDiff("T", first, final, final, tuple(bids), tuple(asks))


def snapshot(last_id: int) -> DepthSnapshot:
    return DepthSnapshot(last_id, ((99.0, 1.0),), ((102.0, 1.0),))


def synced(stats: FeedStats, **kw) -> BookKeeper:
    keeper = BookKeeper("T", stats, **kw)
    assert keeper.on_diff(diff(10, 10)) == Verdict() and keeper.needs_snapshot
    assert keeper.on_snapshot(snapshot(10)) == Verdict()  # a snapshot alone is not published
    assert keeper.on_diff(diff(11, 11)) == Verdict(publish=True)  # continued by the stream: trusted
    keeper.published()
    return keeper


def test_a_gap_is_counted_and_withdraws_the_book_until_a_new_snapshot_is_continued():
    stats = FeedStats("binance")
    keeper = synced(stats)
    verdict = keeper.on_diff(diff(20, 21))
    assert verdict.lost == "sequence gap at U=20 (local id was lower); resyncing" and not verdict.publish
    assert stats.gaps == 1 and keeper.needs_snapshot
    assert keeper.on_diff(diff(22, 22)) == Verdict()  # buffered meanwhile
    assert keeper.on_snapshot(snapshot(21)) == Verdict(publish=True)  # diff 22 replayed on top of it
    assert stats.resyncs == 2


def test_buffered_diffs_replayed_by_a_snapshot_make_one_view_and_the_rest_are_superseded():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats)
    for i in range(10, 15):
        keeper.on_diff(diff(i, i))
    assert keeper.on_snapshot(snapshot(11)) == Verdict(publish=True)  # 12, 13, 14 applied
    assert stats.books_superseded == 2
    assert keeper.view(5, 1.0).update_id == 14


def test_a_crossed_book_is_counted_discarded_and_withdrawn():
    stats = FeedStats("binance")
    keeper = synced(stats)
    verdict = keeper.on_diff(diff(12, 12, bids=((103.0, 1.0),)))
    assert verdict.lost == "book crossed at update 12: discarding it and resyncing"
    assert stats.crossed_books == 1 and not keeper.sync.synced and len(keeper.sync.book) == 0


def test_a_stuck_book_is_withdrawn_and_three_in_a_row_mean_the_endpoints_disagree():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats)
    keeper.sync.max_ignored = 3
    u = 10
    for round_ in range(1, 3):
        keeper.on_diff(diff(u, u))
        assert keeper.on_snapshot(snapshot(10**9)) == Verdict()  # far ahead of the stream
        verdicts = [keeper.on_diff(diff(u + i, u + i)) for i in range(1, 4)]
        assert verdicts[:2] == [Verdict(), Verdict()] and verdicts[2].lost.startswith("book stopped advancing")
        assert stats.stuck_books == round_ and keeper.needs_snapshot
        u += 4
    with pytest.raises(SnapshotError, match="3 snapshots in a row were ahead of every diff") as info:
        keeper.on_snapshot(snapshot(10**9))
        for i in range(1, 4):
            keeper.on_diff(diff(u + i, u + i))
    assert info.value.restart_cause == "snapshot"


def test_a_published_book_resets_the_stuck_count():
    stats = FeedStats("binance")
    keeper = synced(stats)
    keeper.sync.max_ignored = 2
    assert keeper.on_diff(diff(5, 5)) == Verdict() and keeper.on_diff(diff(6, 6)).lost  # stuck once
    keeper.on_snapshot(snapshot(20))
    assert keeper.on_diff(diff(21, 21)) == Verdict(publish=True)
    keeper.published()
    for _ in range(3):  # stuck again, but never three in a row without a published book in between
        keeper.on_diff(diff(5, 5))
        assert keeper.on_diff(diff(6, 6)).lost
        keeper.on_snapshot(snapshot(30))
        assert keeper.on_diff(diff(31, 31)) == Verdict(publish=True)
        keeper.published()
    assert stats.stuck_books == 4


def test_snapshots_older_than_the_buffered_diffs_are_refetched_then_given_up_on():
    stats = FeedStats("binance")
    keeper = BookKeeper("T", stats, max_refetch=3)
    keeper.on_diff(diff(50, 50))
    assert keeper.on_snapshot(snapshot(40)) == Verdict(refetch=True)
    assert keeper.on_snapshot(snapshot(41)) == Verdict(refetch=True)
    with pytest.raises(SnapshotError, match="older than the buffered diffs after 3 fetches"):
        keeper.on_snapshot(snapshot(42))
    assert stats.snapshot_refetches == 3
