"""bench.sizing times the real sizing call on books that clear: the call it times must size a trade."""

import random

from actors.core.vocabulary import Direction
from bench.sizing import _trader, _view, per_call_us


def test_the_benchmarked_call_sizes_between_the_bounds():
    trader, rng = _trader("depth"), random.Random(1)
    sizes = [trader._size(_view(rng, 40.0), Direction.SELL_KRW, 10.0) for _ in range(5)]
    assert all(s is not None and 0.001 <= s <= 2.0 for s in sizes) and len(set(sizes)) > 1
    assert per_call_us("depth", calls=5, repeats=1) > 0
