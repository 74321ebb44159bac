"""The cheaper synthesised venue is the same venue (issue 25, item 3): the simulated books' draws written out
(``actors.sim.draws``), prices kept per tick, sizes written at 8 decimals by division (``upbit._written``) and
hftbacktest lines read as bytes give what the code before them gave: the same draws from the generator in the
same order, the same floats, the same events, the same counts. Each check runs the code before the change, kept
here as the reference, beside the code of the product on many seeds."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.core.venues import upbit
from actors.sim import draws
from actors.sim.model import BookSpec, SimBook, Walk, diff_of
from actors.sim.recording_formats import (
    _SKIPPED_NAMES,
    FrameError,
    Hftbacktest,
    Kind,
    _peek_binance,
    _peek_binance_frame,
    _Peeked,
    text_of,
)

# -- the code before, the reference -------------------------------------------------------------------------


class _Before(SimBook):
    """``SimBook`` as it was: ``random.Random``'s own draws, a price rounded at every read."""

    def __init__(self, spec: BookSpec, rng: random.Random, far_seed: str | None = None) -> None:
        super().__init__(spec, rng, far_seed)
        self._decimals = max(0, -math.floor(math.log10(spec.tick)))

    def _size(self, depth_factor: float) -> float:
        spec = self.spec
        raw = spec.size_scale * depth_factor * self._rng.lognormvariate(0.0, 0.6)
        return max(spec.lot, round(raw / spec.lot) * spec.lot)

    def _step_side(self, side, sign, touch, depth_factor):  # noqa: C901 (kept as it was)
        spec, rng, keys = self.spec, self._rng, self._keys[sign]
        changes: dict[int, float] = {}
        far_before = keys[-1] if keys else None
        crossed = bisect.bisect_left(keys, sign * touch)
        removed: list[tuple[int, float]] = []
        for k in keys[:crossed]:
            removed.append((sign * k, side.pop(sign * k)))
            changes[sign * k] = 0.0
        del keys[:crossed]
        kept = (sign * keys[0], side[sign * keys[0]]) if keys else None
        added = []
        for j in range(0, min(spec.max_levels, 40)):
            t = touch + sign * j
            if t in side:
                if j > 0:
                    break
                continue
            if j == 0 or rng.random() < spec.occupancy:
                side[t] = changes[t] = self._size(depth_factor)
                added.append(sign * t)
        if added:
            at = bisect.bisect_left(keys, added[0])
            keys[at:at] = added
        near = [sign * k for k in keys[:40]]
        for t in rng.sample(near, min(spec.refresh_per_step, len(near))):
            side[t] = changes[t] = self._size(depth_factor)
        if self._far is not None:
            for t, size in itertools.islice(self._far.levels(sign, keys[-1]), max(0, spec.max_levels - len(keys))):
                side[t] = size
                keys.append(sign * t)
        else:
            far = sign * keys[-1]
            while len(keys) < spec.max_levels:
                far += sign * (1 + int(rng.expovariate(1.0 / spec.far_gap_ticks)))
                side[far] = changes[far] = self._size(depth_factor)
                keys.append(sign * far)
        trimmed: dict[int, float] = {}
        if len(keys) > spec.max_levels:
            for k in keys[spec.max_levels :]:
                size = side.pop(sign * k)
                if sign * k not in changes:
                    trimmed[sign * k] = size
                changes[sign * k] = 0.0
            del keys[spec.max_levels :]
        if self._far is None or far_before is None:
            return changes, None
        return changes, self._far_changes(side, sign, far_before, changes, trimmed, removed, kept)

    def price(self, t: int) -> float:
        return round(t * self.spec.tick, self._decimals)

    def _top(self, side, sign, n):
        keys, price = self._keys[sign], self.price
        levels = [(price(sign * k), side[sign * k]) for k in keys[:n]]
        if len(levels) < n and self._far is not None and keys:
            levels += [(price(t), s) for t, s in itertools.islice(self._far.levels(sign, keys[-1]), n - len(levels))]
        return levels


def _written_before(levels, units):
    out = []
    for price, size in levels[:units]:
        size = round(size, 8)
        if price and size:
            out.append((price, size))
    return tuple(out)


def _peek_binance_before(frame, skipped):
    p = _peek_binance.decode(frame)
    d = p.data if p.data is not None else p
    if d.e == "depthUpdate":
        if d.s is None or d.E is None:
            raise FrameError("depthUpdate without s or E")
        return _Peeked(Kind.DIFF, d.s.upper(), d.E)
    if p.lastUpdateId is not None and p.stream is None:
        return _Peeked(Kind.SNAPSHOT, None, None)
    if p.stream is not None and "@bookTicker" in p.stream:
        name = "BookTicker"
    elif p.lastUpdateId is not None:
        name = "DepthSnapshot"
    elif d.e is not None:
        name = _SKIPPED_NAMES.get(d.e, "unsupported")
    else:
        name = "ControlReply" if p.id is not None else "unsupported"
    skipped[f"binance:{name}"] += 1
    return None


# -- the draws ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_a_level_size_is_the_same_draws_and_float_as_lognormvariate(seed):
    ours, theirs = random.Random(seed), random.Random(seed)
    for i in range(3000):
        size_scale, depth, lot = [(0.5, 1.3, 1e-8), (20_000.0, 0.7, 1e-8), (0.02, 2.1, 1e-5), (3.0, 0.9, 1.0)][i % 4]
        expected = max(lot, round(size_scale * depth * theirs.lognormvariate(0.0, 0.6) / lot) * lot)
        assert draws.level_size(ours.lognormvariate, size_scale * depth, lot) == expected
        if i % 7 == 0:  # interleaved with the other draws a step makes
            assert ours.random() == theirs.random()
    assert ours.getstate() == theirs.getstate()


@pytest.mark.parametrize("n", [*range(0, 45), 60, 85, 86, 200])
def test_a_sample_of_indices_is_the_draws_of_a_sample_of_the_keys(n):
    for seed in range(30):
        ours, theirs = random.Random(seed), random.Random(seed)
        for k in sorted({0, 1, 4, 5, 6, 7, n // 2, n}):
            if k > n:
                continue
            population = [f"level {i}" for i in range(n)]
            picked = [population[i] for i in ours.sample(range(n), k)]  # as SimBook samples the keys near the top
            assert picked == theirs.sample(population, k)
        assert ours.getstate() == theirs.getstate()


@pytest.mark.parametrize("tick", [1000.0, 1.0, 0.01, 1e-5, 0.001, 5.0, 1e-8])
def test_a_kept_price_is_the_rounded_one_and_the_prices_kept_stay_bounded(tick):
    decimals = max(0, -math.floor(math.log10(tick)))
    prices = draws.Prices(tick, decimals, 120)
    rng = random.Random(tick)
    for _ in range(1000):
        t = rng.randrange(1, 10**9) if rng.random() < 0.5 else rng.randrange(80_000, 80_200)
        assert prices[t] == round(t * tick, decimals)
        assert prices[t] == round(t * tick, decimals)  # kept
        assert 0 < len(prices) <= 120


def test_a_book_keeps_the_prices_of_four_times_its_maintained_levels():
    book = SimBook(BookSpec(0.01, 1e-5, 50, 0.3, 0.4, 6), random.Random(1), far_seed="f")
    book.step(600.0, 1.0)
    book.top(5000)
    assert 0 < len(book._prices) <= 200


# -- the books ------------------------------------------------------------------------------------------------

SPECS = {
    "upbit": (BookSpec(1000.0, 1e-8, 30, 0.8, 0.5, 4, far_gap_ticks=0.3), 1000.0, None),
    "fx": (BookSpec(1.0, 1e-8, 30, 0.9, 20_000.0, 4, far_gap_ticks=0.2), 1.0, None),
    "binance": (BookSpec(0.01, 1e-5, 60, 0.3, 0.4, 6, far_gap_ticks=20.0), 0.01, "far"),
    "coin": (BookSpec(1e-4, 1.0, 25, 0.5, 300.0, 3, far_gap_ticks=1.0), 1e-4, "coin"),
}


def _mids(rng: random.Random, tick: float, steps: int) -> list[float]:
    """A walk with small moves, moves of a few dozen ticks and jumps past a whole maintained side."""
    mid, out = 40_000 * tick * (1 + rng.random()), []
    for _ in range(steps):
        r = rng.random()
        mid += tick * (rng.gauss(0, 1.5) if r < 0.8 else rng.gauss(0, 30) if r < 0.97 else rng.choice((-1, 1)) * 900)
        out.append(max(mid, 200 * tick))
    return out


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("seed", range(6))
def test_a_book_steps_as_it_did(name, seed):
    spec, tick, far = SPECS[name]
    seed_of_far = None if far is None else f"{seed}:{far}"
    ours, theirs = SimBook(spec, random.Random(seed), seed_of_far), _Before(spec, random.Random(seed), seed_of_far)
    walk = random.Random(f"walk {seed}")
    last_id = 1000
    for step, mid in enumerate(_mids(walk, tick, 300)):
        depth = math.exp(walk.gauss(0, 0.3))
        moves, before = ours.step(mid, depth), theirs.step(mid, depth)
        assert moves == before, f"step {step}"
        assert diff_of(ours, moves, last_id) == diff_of(theirs, before, last_id)
        last_id += len(moves.bids) + len(moves.asks)
        n = walk.choice([1, 5, 15, 30, 45, 200])
        assert ours.top(n) == theirs.top(n)
    assert ours.bids == theirs.bids and ours.asks == theirs.asks
    assert ours._rng.getstate() == theirs._rng.getstate()


def test_a_walk_in_ticks_is_priced_as_before():
    spec, tick, _ = SPECS["binance"]
    ours, theirs = SimBook(spec, random.Random(3), "w"), _Before(spec, random.Random(3), "w")
    walks = []
    for mid in (500.0, 501.5, 480.0, 530.0, 530.0):
        moves, before = ours.step(mid, 1.0), theirs.step(mid, 1.0)
        assert moves == before
        assert diff_of(ours, moves, 7) == diff_of(theirs, before, 7)
        walks.append(moves.walks)
    assert walks[0] is None and all(isinstance(w[0], Walk) and w[0].removed or w[1].removed for w in walks[1:4])


# -- sizes written at 8 decimals ------------------------------------------------------------------------------


def _same(a: tuple, b: tuple) -> bool:
    return repr(a) == repr(b)  # NaN too, and -0.0 apart from 0.0


@given(st.lists(st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)), max_size=40), st.integers(1, 30))
@example([(1.0, 0.5e-8), (1.0, 1.5e-8), (1.0, 2.5e-8), (1.0, -0.0), (0.0, 1.0), (1.0, 2.0**40 / 1e8)], 30)
@example([(1.0, 10_995.116_277_76), (1.0, 1e300), (1.0, math.inf), (1.0, -3.000_000_005)], 30)
@example([(1.0, 2.0**51 / 1e8), (1.0, 22_517_998.136_852_47), (1.0, 22_517_998.136_852_485), (1.0, 9e7)], 30)
@settings(max_examples=500, deadline=None)
def test_sizes_written_at_8_decimals_are_those_round_gives(levels, units):
    assert _same(upbit._written(levels, units), _written_before(levels, units))


@pytest.mark.parametrize("seed", range(10))
def test_sizes_written_at_8_decimals_are_those_round_gives_for_sizes_of_every_kind(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        lot = rng.choice([1e-8, 1e-5, 1.0, 1e-3])
        sizes = [
            max(lot, round(rng.lognormvariate(0, 2) * 10 ** rng.randint(-6, 4) / lot) * lot),
            rng.random() * 10 ** rng.randint(-10, 6),
            (rng.randrange(10**12) + rng.choice([0.5, 0.25, 0.75, 0.499999, 0.500001])) / 1e8,
            rng.randrange(1, 10**13) / 1e8,
            rng.randrange(1, 2**53) / 1e8,  # up to 9e7: the product passes 2**51 (2.25e7 a size) on the way
            (2**51 + rng.randrange(-(10**6), 10**6) + rng.choice([0.0, 0.25, 0.5, 0.75])) / 1e8,
            20_000.0 * rng.lognormvariate(0, 0.6) // 1e-8 * 1e-8,  # the FX book's sizes
        ]
        levels = [(rng.choice([1.0, 0.0]) if rng.random() < 0.05 else 100.0 + i, s) for i, s in enumerate(sizes)]
        assert _same(upbit._written(levels, 30), _written_before(levels, 30))


# -- hftbacktest lines read as bytes --------------------------------------------------------------------------

_LINES = [
    b'1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"1.0","B":"2","a":"3"}}',
    b'1723161254087891268 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255308,"s":"BTCUSDT"}}',
    b'1723161254036059768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"btcusdt",'
    b'"U":1,"u":2,"b":[["1.0","0.0"]],"a":[]}}',
    b'1723161254036059768 {"lastUpdateId":50093239218,"bids":[["1.0","2.0"]],"asks":[]}',
    b'1723161254036059768 {"stream":"btcusdt@depth5","data":{"lastUpdateId":1,"bids":[],"asks":[]}}',
    b'1723161254036059768 {"result":null,"id":1}',
    b'1723161254036059768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":"late","s":"BTCUSDT"}}',
    b'1723161254036059768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT"}}',
    b'1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT"',  # torn
    b'1723161254087891268  {"stream":"btcusdt@bookTicker","data":{}}',  # two spaces
    b'1723161254087891268\t{"stream":"btcusdt@bookTicker","data":{}}',
    b"172316125408 {}",
    b"17231612540 {}",  # 11 digits
    b"1" * 400 + b' {"stream":"x@bookTicker","data":{}}',  # a stamp too large for a float
    b"1" * 300 + b' {"stream":"x@bookTicker","data":{}}',
    '1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"s":"\u00e9"}}'.encode(),
    "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662 {}".encode(),  # Arabic-Indic digits
    b'1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"s":"\xff"}}',  # not UTF-8
    b"1723161254087891268 ",
    b"1723161254087891268",
    b" 1723161254087891268 {}",
    b"nonsense",
    b'1723161254087891268 {"e":"depthUpdate","E":1,"s":"ETHUSDT"}\r',
    b"1723161254087891268 [1, 2]",
    b"1723161254087891268 " + b"[" * 5000 + b"]" * 5000,
]


def _as_text(fmt: Hftbacktest):
    """The line read as text, as every line was before."""
    return lambda line, skipped: fmt._parse_text(text_of(line), skipped)


def _outcome(parse, line: bytes):
    skipped: Counter[str] = Counter()
    try:
        result = parse(line, skipped)
    except Exception as exc:  # noqa: BLE001 (which one it is must be the same)
        result = type(exc).__name__
    return result, skipped


@pytest.mark.parametrize("line", _LINES, ids=range(len(_LINES)))
def test_a_line_read_as_bytes_is_read_as_its_text_is(line):
    ours, theirs = Hftbacktest(None, 0.25), Hftbacktest(None, 0.25)  # type: ignore[arg-type]
    ours.offsets, theirs.offsets = [], []
    assert _outcome(ours.parse, line) == _outcome(_as_text(theirs), line)
    assert ours.offsets == theirs.offsets


@given(st.binary(max_size=60), st.sampled_from(_LINES))
@settings(max_examples=300, deadline=None)
def test_any_line_read_as_bytes_is_read_as_its_text_is(noise, line):
    for candidate in (noise, line[: len(noise)] + noise, b"1723161254087891268 " + noise, line + noise):
        ours, theirs = Hftbacktest(None), Hftbacktest(None)  # type: ignore[arg-type]
        assert _outcome(ours.parse, candidate) == _outcome(_as_text(theirs), candidate)


_FIELDS = {
    "stream": st.one_of(
        st.none(), st.sampled_from(["btcusdt@bookTicker", "btcusdt@trade", "x@depth5", "", "@bookTicker"])
    ),
    "e": st.one_of(
        st.none(), st.sampled_from(["depthUpdate", "trade", "aggTrade", "ticker", "orderbook", "kline", ""])
    ),
    "E": st.one_of(st.none(), st.integers(0, 2**62), st.just("late")),
    "s": st.one_of(st.none(), st.sampled_from(["BTCUSDT", "ethusdt"]), st.just(5)),
    "lastUpdateId": st.one_of(st.none(), st.integers(0, 2**62)),
    "id": st.one_of(st.none(), st.integers(0, 9), st.just("x")),
    "result": st.one_of(st.none(), st.just([])),
}


@st.composite
def _binance_frames(draw):
    """JSON objects of the fields a peek reads, present or not, at the top or in ``data``, some of a wrong type."""

    def some(names):
        return {k: draw(_FIELDS[k]) for k in names if draw(st.booleans())}

    top = some(["stream", "e", "E", "s", "lastUpdateId", "id", "result"])
    if draw(st.booleans()):
        top["data"] = some(["e", "E", "s", "lastUpdateId"]) if draw(st.booleans()) else draw(st.none())
    text = json.dumps(top)
    return text.encode() if draw(st.booleans()) else text


@given(_binance_frames())
@settings(max_examples=1000, deadline=None)
def test_a_binance_frame_is_peeked_at_as_before(frame):
    assert _outcome(lambda f, s: _peek_binance_frame(f, s), frame) == _outcome(_peek_binance_before, frame)
