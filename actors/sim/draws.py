"""The simulated books' hot arithmetic, cheaper and unchanged: ``random.Random``'s draws written out where the
books make them (the same calls to the generator in the same order, so the same floats), and prices kept per
tick instead of rounded again at every read.

Pure. What each function replaces is named in its docstring; ``tests/core/test_synth_speed_equivalence.py``
checks each against what it replaces (CPython 3.11's ``random.py``) on many seeds, so an interpreter whose
``random`` draws differently fails there, not silently in a session's results.
"""

from __future__ import annotations

from math import ceil, exp, log, sqrt
from typing import Callable

NV_MAGICCONST = 4 * exp(-0.5) / sqrt(2.0)  # random.NV_MAGICCONST, as random.py computes it


def level_size(random: Callable[[], float], scale: float, lot: float) -> float:
    """A level's size: ``scale`` times a lognormal(0, 0.6) draw in whole lots, at least one lot; the draw is
    ``Random.lognormvariate(0.0, 0.6)`` of the generator whose ``random`` method this is (``exp`` of
    ``normalvariate(0.0, 0.6)``: Kinderman and Monahan's ratio of uniforms)."""
    while True:
        u1 = random()
        u2 = 1.0 - random()
        z = NV_MAGICCONST * (u1 - 0.5) / u2
        if z * z / 4.0 <= -log(u2):
            break
    size = round(scale * exp(0.0 + z * 0.6) / lot) * lot
    return size if size > lot else lot  # max(lot, size)


def sample_indices(getrandbits: Callable[[int], int], n: int, k: int) -> list[int]:
    """``Random.sample(range(n), k)`` of the generator whose ``getrandbits`` method this is: which of ``n``
    items a sample of ``k`` takes (the same draws as a sample of any sequence of ``n`` items)."""
    if not 0 <= k <= n:
        raise ValueError("Sample larger than population or is negative")
    setsize = 21
    if k > 5:
        setsize += 4 ** ceil(log(k * 3, 4))
    result = []
    if n <= setsize:
        pool = list(range(n))
        for i in range(k):
            left = n - i
            bits = left.bit_length()
            j = getrandbits(bits)
            while j >= left:
                j = getrandbits(bits)
            result.append(pool[j])
            pool[j] = pool[left - 1]
        return result
    selected: set[int] = set()
    bits = n.bit_length()
    for _ in range(k):
        j = getrandbits(bits)
        while j >= n or j in selected:
            j = getrandbits(bits)
        selected.add(j)
        result.append(j)
    return result


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
