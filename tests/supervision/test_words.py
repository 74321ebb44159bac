"""Counts ranked for people and the one error of a one-error group, written once (supervision/words.py)."""

import pytest

from supervision import counts_in_words, most_frequent_first, sole_exception


def test_the_most_frequent_comes_first_and_ties_go_by_name():
    counts = {"stale": 2, "connect": 1, "snapshot": 2, "closed": 5}
    assert most_frequent_first(counts) == [("closed", 5), ("snapshot", 2), ("stale", 2), ("connect", 1)]
    assert counts_in_words(counts) == "closed 5, snapshot 2, stale 2, connect 1"
    assert counts_in_words({}) == ""


def test_a_group_of_one_is_unwrapped_at_any_depth_and_a_group_of_two_stays_a_group():
    leaf = ValueError("x")
    assert sole_exception(ExceptionGroup("outer", [ExceptionGroup("inner", [leaf])])) is leaf
    assert sole_exception(leaf) is leaf
    two = ExceptionGroup("two", [ValueError("a"), KeyError("b")])
    assert sole_exception(two) is two
    nested = ExceptionGroup("outer", [two])
    assert sole_exception(nested) is two


@pytest.mark.parametrize("cancel", [KeyboardInterrupt()])
def test_a_lone_base_exception_is_unwrapped_too(cancel):
    assert sole_exception(BaseExceptionGroup("g", [cancel])) is cancel
