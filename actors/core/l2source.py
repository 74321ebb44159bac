"""Where the executor's depth comes from (the earlier system's L2-source comparison).

- ``multi``: each leg is sized from its own venue's book (the default, and what a live trade meets).
- ``upbit`` / ``binance``: both legs are sized from that one venue's depth. The source book's levels
  keep their sizes and their distance from the source's best price, and are placed at the same
  relative distance from the leg's own best price.
- ``mock``: an in-process synthetic book (no exchange depth at all): levels one bps apart from the
  leg's best price, sizes from a seeded generator whose scale varies in time, so ``available_volume``
  varies as it did with the earlier system's mock L2 provider.
"""

from __future__ import annotations

import math
import random
from typing import Mapping

from actors.core.book import BookView, Level
from actors.core.vocabulary import L2Source, Venue


def remap(levels: tuple[Level, ...], to_best: float) -> tuple[Level, ...]:
    """``levels`` moved to start at ``to_best``, keeping each level's relative distance and size."""
    if not levels:
        return ()
    scale = to_best / levels[0][0]
    return tuple((price * scale, size) for price, size in levels)


class MockBook:
    def __init__(self, seed: int, levels: int = 20, size_btc: float = 0.05) -> None:
        self._rng = random.Random(seed)
        self._levels = levels
        self._size = size_btc

    def levels(self, best: float, buy: bool, at: float) -> tuple[Level, ...]:
        factor = math.exp(0.5 * math.sin(at / 7.0) + 0.3 * math.sin(at / 3.1))
        step = best * 1e-4
        sign = 1 if buy else -1
        return tuple(
            (best + sign * i * step, self._size * factor * self._rng.lognormvariate(0.0, 0.5))
            for i in range(self._levels)
        )


def leg_levels(
    source: L2Source, leg: BookView, others: Mapping[Venue, BookView], buy: bool, at: float, mock: MockBook | None
) -> tuple[Level, ...]:
    """The levels a BUY (asks) or SELL (bids) leg on ``leg`` is filled against (``others``: each venue's book)."""
    own = leg.asks if buy else leg.bids
    if source is L2Source.MULTI or not own:
        return own
    if source is L2Source.MOCK:
        assert mock is not None
        return mock.levels(own[0][0], buy, at)
    assert source.venue is not None
    book = others[source.venue]
    src = book.asks if buy else book.bids
    return remap(src, own[0][0]) if src else own
