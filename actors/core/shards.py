"""Binance depth streams spread over connections (issue 26, MULTIPAIR.md §2 and §6.4): which symbols each
connection (a *shard*) carries, and when each one rotates before the exchange's 24-hour cut.

Pure: symbols and times in, a frozen plan out. The feed shell (``actors/feed.py``) runs one connection per
shard and asks the plan when its connection is due to end.

Shards. Every symbol is one stream (``<symbol>@depth@100ms``); a connection carries at most
``streams_per_connection`` of them (Binance allows 1024), so a reconnect resyncs a bounded set of books.
The symbols are deduplicated and sorted (the same list in any order gives the same plan) and cut into the
fewest shards that respect the limit, as even as possible (150 symbols at 100 a connection: 75 and 75, not
100 and 50): a shard's blast radius is as small as the limit allows.

Rotations. Binance closes a connection after 24 hours (``scheduled_cut_s``). If every shard ran until the
cut, shards opened together would all be cut together and resync every book at once, which the REST
weight budget cannot pay (150 books at limit 1000 are 7,500 weight, over the 6,000 of a minute). So each
shard ends its connection itself, on a grid of its own: shard k of n rotates at
``origin + (k + 1) * spacing + m * period`` for m = 0, 1, ..., with ``period = scheduled_cut_s - margin``
and ``spacing = period / n``. Any two rotations of the plan, of one shard or of two, are at least
``spacing`` apart (n rotations share each period: no spacing can be wider while each connection ends
before its cut; the test checks it over shard counts). A connection that opened off the grid (after a
failure) still rotates on its shard's grid, at the first point at least ``min_age_s`` after it opened, so
its age at rotation stays under ``period + min_age_s < scheduled_cut_s``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Iterable

import attrs

MAX_STREAMS_PER_CONNECTION = 1024  # Binance: "A single connection can listen to a maximum of 1024 streams"
MAX_ROTATION_MARGIN_S = 3600.0  # a rotation at most this long before the cut (and at most a tenth of it)


@attrs.frozen
class Shard:
    """One connection's symbols; it rotates first at ``origin_s + first_rotation_s``."""

    index: int
    symbols: tuple[str, ...]
    first_rotation_s: float


@attrs.frozen
class ShardPlan:
    shards: tuple[Shard, ...]
    period_s: float  # each shard rotates once a period
    min_age_s: float  # a connection younger than this is not rotated (it waits for its shard's next point)
    origin_s: float = 0.0  # when the grid starts (the session's start)

    @property
    def spacing_s(self) -> float:
        """The least time between any two rotations of the plan."""
        return self.period_s / max(1, len(self.shards))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s for shard in self.shards for s in shard.symbols)

    def shard_of(self, symbol: str) -> Shard:
        for shard in self.shards:
            if symbol in shard.symbols:
                return shard
        raise KeyError(f"{symbol} is in no shard of this plan")

    def rotation_after(self, index: int, connected_at: float) -> float:
        """When shard ``index``'s connection opened at ``connected_at`` is due to end: the first point of the
        shard's grid at least ``min_age_s`` after it opened."""
        first = self.origin_s + self.shards[index].first_rotation_s
        earliest = connected_at + self.min_age_s
        if earliest <= first:
            return first
        return first + math.ceil((earliest - first) / self.period_s) * self.period_s

    def rotation(self, index: int) -> Callable[[float], float]:
        """``rotation_after`` for one shard: what the feed takes (``run_binance_feed(rotate_at=...)``)."""
        return partial(self.rotation_after, index)

    def rotations(self, index: int, until: float) -> tuple[float, ...]:
        """Shard ``index``'s rotation times up to ``until`` (a connection that never fails)."""
        first = self.origin_s + self.shards[index].first_rotation_s
        count = max(0, math.floor((until - first) / self.period_s) + 1)
        return tuple(first + m * self.period_s for m in range(count))


def plan_shards(
    symbols: Iterable[str],
    streams_per_connection: int,
    scheduled_cut_s: float,
    *,
    origin_s: float = 0.0,
    streams_per_symbol: int = 1,
) -> ShardPlan:
    """The shards of ``symbols`` (deduplicated, sorted) at most ``streams_per_connection`` streams each, and
    their staggered rotations before ``scheduled_cut_s`` (module docstring)."""
    if not 1 <= streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
        limit = MAX_STREAMS_PER_CONNECTION
        raise ValueError(f"streams_per_connection must be 1..{limit}, not {streams_per_connection}")
    if not 1 <= streams_per_symbol <= streams_per_connection:
        raise ValueError(f"a symbol's {streams_per_symbol} streams must fit one connection ({streams_per_connection})")
    if not scheduled_cut_s > 0:
        raise ValueError(f"scheduled_cut_s must be > 0, not {scheduled_cut_s}")
    ordered = tuple(sorted(set(symbols)))
    if not ordered:
        raise ValueError("a shard plan needs at least one symbol")
    per_connection = streams_per_connection // streams_per_symbol
    count = math.ceil(len(ordered) / per_connection)
    margin_s = min(MAX_ROTATION_MARGIN_S, scheduled_cut_s / 10)
    period_s = scheduled_cut_s - margin_s
    spacing_s = period_s / count
    size, extra = divmod(len(ordered), count)
    shards, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        shards.append(Shard(k, ordered[start:end], (k + 1) * spacing_s))
        start = end
    return ShardPlan(tuple(shards), period_s, margin_s / 2, origin_s)
