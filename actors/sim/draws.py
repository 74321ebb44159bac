"""The simulated books' size draw and their prices: a level's size from the generator's own
``lognormvariate``, in whole lots, and prices kept per tick instead of rounded again at every read.

Pure. ``tests/core/test_synth_speed_equivalence.py`` checks both against what they replace, and a whole book
against the book as it was, on many seeds.
"""

from __future__ import annotations

from typing import Callable


def level_size(lognormvariate: Callable[[float, float], float], scale: float, lot: float) -> float:
    """A level's size: ``scale`` times a lognormal(0, 0.6) draw (``Random.lognormvariate`` of the book's
    generator) in whole lots, at least one lot."""
    size = round(scale * lognormvariate(0.0, 0.6) / lot) * lot
    return size if size > lot else lot  # max(lot, size)


class Prices(dict[int, float]):
    """tick -> price (``round(tick * tick_size, decimals)``), each computed once while kept; at most ``kept``
    kept, then forgotten all at once (memory does not grow as the price wanders). A book keeps twice its
    maintained levels (``SimBook``): what a step reads, and the ticks its touch moves over for a while."""

    def __init__(self, tick: float, decimals: int, kept: int) -> None:
        super().__init__()
        self.tick, self.decimals, self.kept = tick, decimals, kept

    def __missing__(self, t: int) -> float:
        if len(self) >= self.kept:
            self.clear()
        price = self[t] = round(t * self.tick, self.decimals)
        return price
