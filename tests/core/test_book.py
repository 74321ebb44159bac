"""Order-book properties (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.book import BookView, DiffBook
from actors.core.venues.binance import BookSync, DepthDiff, DepthSnapshot, Outcome

prices = st.integers(min_value=1, max_value=400).map(lambda t: t / 4)
sizes = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.25, 7.0])
levels = st.lists(st.tuples(prices, sizes), max_size=12)


@given(st.lists(st.tuples(levels, levels), max_size=40))
def test_diff_book_keeps_positive_sizes_and_sorted_views(updates):
    book = DiffBook()
    book.reset([(10.0, 1.0)], [(11.0, 1.0)], 0)
    for i, (bids, asks) in enumerate(updates, start=1):
        book.apply(bids, asks, i)
        view = book.view("v", "s", 10, 0.0, None)
        assert all(size > 0 for _, size in view.bids + view.asks)
        assert [p for p, _ in view.bids] == sorted({p for p, _ in view.bids}, reverse=True)
        assert [p for p, _ in view.asks] == sorted({p for p, _ in view.asks})
        assert book.update_id == i


@given(
    st.sampled_from([2, 4, 8, 64]),
    st.lists(st.tuples(levels, levels), max_size=40),
    st.lists(st.tuples(prices, sizes), max_size=30),
    st.integers(1, 40),
)
@settings(max_examples=300)
def test_diff_book_views_equal_a_fully_sorted_reference(keep, updates, start, depth):
    """Only the best few prices are kept sorted (``keep_sorted``): every view must still be exact."""
    book, ref_bids, ref_asks = DiffBook(keep_sorted=keep), {}, {}
    for p, s in start:  # the same levels on both sides, so bids and asks overlap (not a crossed-book test)
        if s > 0:
            ref_bids[p] = ref_asks[p] = s
    book.reset(start, start, 0)
    for i, (bids, asks) in enumerate(updates, start=1):
        book.apply(bids, asks, i)
        for ref, side in ((ref_bids, bids), (ref_asks, asks)):
            for p, s in side:
                if s == 0:
                    ref.pop(p, None)
                else:
                    ref[p] = s
        expected = (tuple(sorted(ref_bids.items(), reverse=True)[:depth]), tuple(sorted(ref_asks.items())[:depth]))
        assert book.top(depth) == expected
        assert book.best_bid == (expected[0][0] if expected[0] else None)
        assert book.best_ask == (expected[1][0] if expected[1] else None)
        assert len(book) == len(ref_bids) + len(ref_asks)


def test_levels_pushed_out_of_the_sorted_best_within_one_diff_stay_exact():
    book = DiffBook(keep_sorted=2)
    book.reset([(1.0, 1.0), (5.0, 1.0), (6.0, 1.0)], [], 0)
    # 7 and 8 push 5 and 6 out of the sorted best; 8 leaves; 5.5 arrives, worse than 6 which is still there
    book.apply([(7.0, 1.0), (8.0, 1.0), (8.0, 0.0), (5.5, 2.0)], [], 1)
    expected = ((7.0, 1.0), (6.0, 1.0), (5.5, 2.0), (5.0, 1.0))
    assert [book.top(n)[0] for n in range(1, 5)] == [expected[:n] for n in range(1, 5)]
    # removing a level that was pushed out in the same diff must not remove another one
    book.apply([(9.0, 1.0), (10.0, 1.0), (7.0, 0.0), (6.0, 0.0)], [], 2)
    expected = ((10.0, 1.0), (9.0, 1.0), (5.5, 2.0), (5.0, 1.0))
    assert [book.top(n)[0] for n in range(1, 5)] == [expected[:n] for n in range(1, 5)]


def _chain(steps):
    """Chained diffs from a list of (count, levels) where a negative count skips ids (a gap)."""
    out, last = [], 100
    for count, bids in steps:
        first = last + 1 + (5 if count < 0 else 0)
        last = first + abs(count) - 1
        out.append(DepthDiff("T", first, last, 0, tuple(bids), ()))
    return out


@given(st.lists(st.tuples(st.integers(min_value=-3, max_value=4).filter(bool), levels), min_size=1, max_size=30))
@settings(max_examples=200)
def test_sync_never_applies_across_a_gap_and_ids_increase(steps):
    sync = BookSync("T")
    diffs = _chain(steps)
    sync.on_diff(diffs[0])
    assert sync.on_snapshot(DepthSnapshot(diffs[0].first_id, ((1.0, 1.0),), ((200.0, 1.0),))) is not Outcome.REFETCH
    last_id = sync.book.update_id
    for d in diffs[1:]:
        outcome = sync.on_diff(d)
        if d.first_id > (last_id or 0) + 1 and last_id is not None:
            assert outcome in (Outcome.GAP, Outcome.BUFFERED)
        if sync.synced:
            assert sync.book.update_id >= (last_id or 0)
            last_id = sync.book.update_id
        else:
            last_id = None
            sync.on_snapshot(DepthSnapshot(d.final_id, ((1.0, 1.0),), ((200.0, 1.0),)))
            last_id = sync.book.update_id
    assert sync.gaps == sum(1 for c, _ in steps[1:] if c < 0)


def test_view_properties():
    view = BookView("v", "s", ((10.0, 1.0), (9.0, 2.0)), ((11.0, 3.0),), 0.0)
    assert view.mid == 10.5 and not view.crossed and view.depth("bids") == 3.0
    assert BookView("v", "s", ((12.0, 1.0),), ((11.0, 1.0),), 0.0).crossed


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_running_stats_match_the_batch_formulas(xs):
    import statistics

    from actors.core.kpi import RunningStats

    rs = RunningStats()
    for x in xs:
        rs.add(x)
    assert rs.count == len(xs) and rs.min == min(xs) and rs.max == max(xs)
    assert abs(rs.mean - statistics.fmean(xs)) <= 1e-9 * max(1.0, max(abs(x) for x in xs))
    assert abs(rs.std - statistics.pstdev(xs)) <= 1e-6 * max(1.0, max(abs(x) for x in xs))
