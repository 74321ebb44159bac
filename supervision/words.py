"""Two small things every report of failures needs, written once (pure: no Trio, no clock).

- ``most_frequent_first``: counts ranked for people, the most frequent first and ties by name, so a line
  reads the same on every run ("stale 2, snapshot 1"); ``counts_in_words`` writes them so.
- ``sole_exception``: the one error inside one-error exception groups (nested ones too); a group of two or
  more stays the group, never one of its errors picked at random.
"""

from __future__ import annotations

from typing import Mapping, TypeVar

K = TypeVar("K", bound=str)


def most_frequent_first(counts: Mapping[K, int]) -> list[tuple[K, int]]:
    """``counts`` as (key, count) pairs, the largest count first, equal counts in the order of their keys."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def counts_in_words(counts: Mapping[K, int]) -> str:
    """ "stale 2, snapshot 1": counts, the most frequent first (never a Python dict)."""
    return ", ".join(f"{key} {count}" for key, count in most_frequent_first(counts))


def sole_exception(exc: BaseException) -> BaseException:
    """The exception inside ``exc`` when it is a group of one (at any depth), otherwise ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
