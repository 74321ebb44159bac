"""The embedded exchange's market: seeded price processes and persistent venue books.

Pure: no Trio, no sockets, no clock; ``SimMarket.step()`` advances one step (``step_ms``) and reports
what changed. Same seed and config, same market.

Prices: the model fitted to the real market (``actors.sim.market_model``, its parameters from a model
file: ``[sim] market_model``), or with ``market_model = "ou"`` the earlier processes, not fitted to
anything (per step of dt seconds):
- BTC/USDT: geometric random walk (``btc_vol_bps_per_sqrt_s``) plus Poisson jumps.
- USDT/KRW: geometric random walk (``fx_vol_bps_per_sqrt_s``).
- Kimchi premium (bps): Ornstein-Uhlenbeck around ``premium_mean_bps`` with stationary std
  ``premium_std_bps`` and reversion time ``premium_reversion_s``.
Depth, either way: per venue, a log-scale OU factor multiplying level sizes, so visible depth varies in time.

Books are kept in integer ticks and change the way real books do: levels crossed by a price move
are removed, the new touch and some gaps behind it are filled, a few levels are refreshed, far levels
are trimmed. Binance publishes those changes as diffs with chained update ids, one id per level in a
documented order (``BinanceDiff``), so bookTicker can name the id of every change of the touch; Upbit
publishes its top-N book whenever it changed. The Binance book goes on beyond the levels a step
maintains (``_FarBook``: generated from the seed on demand), so a REST snapshot of 5000 levels a side
costs the step nothing and agrees with the diffs that follow it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from array import array
from typing import Callable, Iterator

import attrs

from actors.core.vocabulary import Venue
from actors.sim.draws import Prices, level_size
from actors.sim.market_model import MarketParams, MarketProcess
from actors.sim.settings import SimConfig

UPBIT_BTC, UPBIT_USDT, BINANCE_BTC = "KRW-BTC", "KRW-USDT", "BTCUSDT"


def _ou_step(x: float, mean: float, std: float, reversion_s: float, dt: float, rng: random.Random) -> float:
    """Exact Ornstein-Uhlenbeck transition over dt (stable for any step, unlike an Euler step)."""
    decay = math.exp(-dt / reversion_s)
    return mean + (x - mean) * decay + std * math.sqrt(1 - decay * decay) * rng.gauss(0, 1)


def _tick(usual: float, price: float) -> float:
    """The venue's usual tick, or a finer power of ten when the price is under 1000 of them (a replay
    synthesising a book next to a cheap recorded market)."""
    return usual if price >= 1000 * usual else 10.0 ** (math.floor(math.log10(price)) - 4)


@attrs.frozen
class BookSpec:
    tick: float
    lot: float
    max_levels: int  # levels per side that every step maintains
    occupancy: float  # chance that a tick behind the touch holds a level
    size_scale: float  # mean level size in base units before the depth factor
    refresh_per_step: int
    far_gap_ticks: float = 1.0  # mean extra ticks between levels added at the far end


Level = tuple[float, float]  # (price, size)
FAR_BLOCK_TICKS = 4096  # the far book is generated in blocks of this many ticks (about 200 levels)
# generated blocks kept, the most recently used: the few at the maintained ends, which every step reads, and
# a 1000-level answer's (5 a side); a 5000-level answer reads 25 a side and generates most of them again. Few
# and flat (two arrays each): the price wanders over new blocks all day, and memory must not grow with it.
FAR_BLOCKS_KEPT = 32


class _FarBook:
    """The book beyond the levels a step maintains: a fixed function of the seed and the tick, generated on
    demand a block of ticks at a time (each block from its own seeded stream), so depth costs a step nothing
    and every answer agrees with every other. Levels are spaced as the far end of the maintained book is."""

    def __init__(self, seed: str, spec: BookSpec) -> None:
        self._seed = seed
        self._spec = spec
        self._blocks: dict[tuple[int, int], tuple[array[int], array[float]]] = {}  # least recently used first

    def _block(self, sign: int, index: int) -> tuple[array[int], array[float]]:
        """(ticks ascending, their sizes) of one side's block ``index``; ticks start at 1 (a price above 0)."""
        key = (sign, index)
        block = self._blocks.pop(key, None)
        if block is None:
            block = self._generate(sign, index)
            if len(self._blocks) >= FAR_BLOCKS_KEPT:
                del self._blocks[next(iter(self._blocks))]
        self._blocks[key] = block
        return block

    def _generate(self, sign: int, index: int) -> tuple[array[int], array[float]]:
        spec = self._spec
        rng = random.Random(f"{self._seed}:{sign}:{index}")
        ticks, sizes = array("q"), array("d")
        t, end = index * FAR_BLOCK_TICKS, (index + 1) * FAR_BLOCK_TICKS
        while True:
            t += 1 + int(rng.expovariate(1.0 / spec.far_gap_ticks))
            if t >= end:
                return ticks, sizes
            ticks.append(t)
            sizes.append(max(spec.lot, round(spec.size_scale * rng.lognormvariate(0.0, 0.6) / spec.lot) * spec.lot))

    def levels(self, sign: int, after: int, until: int | None = None) -> Iterator[tuple[int, float]]:
        """(tick, size) of the far levels whose key (``sign * tick``) is in (after, until], best first."""
        if sign > 0:  # asks: ticks ascending
            index = (after + 1) // FAR_BLOCK_TICKS
            while until is None or index * FAR_BLOCK_TICKS <= until:
                ticks, sizes = self._block(1, index)
                for j in range(bisect.bisect_right(ticks, after), len(ticks)):
                    if until is not None and ticks[j] > until:
                        return
                    yield ticks[j], sizes[j]
                index += 1
        else:  # bids: ticks descending, down to tick 1
            highest, lowest = -after - 1, 1 if until is None else max(1, -until)
            index = highest // FAR_BLOCK_TICKS
            while index >= 0 and (index + 1) * FAR_BLOCK_TICKS > lowest:
                ticks, sizes = self._block(-1, index)
                for j in range(bisect.bisect_right(ticks, highest) - 1, -1, -1):
                    if ticks[j] < lowest:
                        return
                    yield ticks[j], sizes[j]
                index -= 1


@attrs.frozen
class Walk:
    """One side of a book before a step, from its best level down: the levels the step removed there (best
    first, with their sizes before the step), then the best level it kept (None: it kept none)."""

    removed: tuple[Level, ...]
    kept: Level | None


@attrs.frozen
class BookMoves:
    """What one step did to a book: the changed levels per side (tick -> size, 0 = removed) and, for a book
    with a far part, each side's ``Walk`` with ticks for prices (None otherwise)."""

    bids: dict[int, float]
    asks: dict[int, float]
    walks: tuple[Walk, Walk] | None = None


class SimBook:
    """One venue market's book: tick index -> size, with change tracking.

    Every step maintains ``max_levels`` levels a side (``bids`` and ``asks``). A book given a ``far_seed`` goes
    on beyond them (``_FarBook``): its far end grows by taking over the far book's next levels as they are, and
    where it is trimmed the far book shows again; every level that changes on the way (a level made near the
    touch, trimmed; far levels crossed by a jump) is in the step's changes, so a client that read far levels (a
    deep REST snapshot) and follows the changes holds the same book."""

    def __init__(self, spec: BookSpec, rng: random.Random, far_seed: str | None = None) -> None:
        self.spec = spec
        self._rng = rng
        self._prices = Prices(spec.tick, max(0, -math.floor(math.log10(spec.tick))), 4 * spec.max_levels)
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}
        # each side's ticks best first, as keys ``sign * tick`` ascending (bids -tick, asks tick)
        self._keys: dict[int, list[int]] = {-1: [], 1: []}
        self._far = _FarBook(far_seed, spec) if far_seed is not None else None

    def step(self, mid: float, depth_factor: float) -> BookMoves:
        """Move the book to ``mid``; return what changed."""
        tick = self.spec.tick
        best_bid = math.floor(mid / tick)
        if best_bid * tick >= mid:
            best_bid -= 1
        bids, bid_walk = self._step_side(self.bids, -1, best_bid, depth_factor)
        asks, ask_walk = self._step_side(self.asks, 1, best_bid + 1, depth_factor)
        if bid_walk is None or ask_walk is None:
            return BookMoves(bids, asks)
        return BookMoves(bids, asks, (bid_walk, ask_walk))

    def _step_side(
        self, side: dict[int, float], sign: int, touch: int, depth_factor: float
    ) -> tuple[dict[int, float], Walk | None]:
        """Step one side (``sign`` -1: bids, 1: asks) to ``touch``: its changes, and its walk if it has a far part
        (its draws in the order they always were: ``actors.sim.draws``)."""
        spec, rng, keys, far_book = self.spec, self._rng, self._keys[sign], self._far
        random, draw = rng.random, rng.lognormvariate
        lot, scale, occupancy = spec.lot, spec.size_scale * depth_factor, spec.occupancy
        changes: dict[int, float] = {}
        far_before = keys[-1] if keys else None
        # crossed by the move: the keys before the touch's
        crossed = bisect.bisect_left(keys, sign * touch)
        removed: list[tuple[int, float]] = []
        for k in keys[:crossed]:
            removed.append((sign * k, side.pop(sign * k)))
            changes[sign * k] = 0.0
        del keys[:crossed]
        # the touch, and some levels behind it where the book moved away
        added = []
        for j in range(0, min(spec.max_levels, 40)):
            t = touch + sign * j
            if t in side:
                if j > 0:
                    break
                continue
            if j == 0 or random() < occupancy:
                side[t] = changes[t] = level_size(draw, scale, lot)
                added.append(sign * t)
        kept = None if not keys or far_book is None else (sign * keys[0], side[sign * keys[0]])
        if added:
            at = bisect.bisect_left(keys, added[0])
            keys[at:at] = added
        # refresh a few levels near the top (orders added and cancelled)
        near = min(40, len(keys))
        for i in rng.sample(range(near), min(spec.refresh_per_step, near)):  # the draws of a sample of the keys
            t = sign * keys[i]
            side[t] = changes[t] = level_size(draw, scale, lot)
        # extend the far end (with the far book's next levels, unchanged, if the book has one) or trim it
        missing = spec.max_levels - len(keys)
        if far_book is not None:
            for t, size in itertools.islice(far_book.levels(sign, keys[-1]), max(0, missing)):
                side[t] = size
                keys.append(sign * t)
        elif missing > 0:
            far, rate = sign * keys[-1], 1.0 / spec.far_gap_ticks
            for _ in range(missing):
                far += sign * (1 + int(rng.expovariate(rate)))
                side[far] = changes[far] = level_size(draw, scale, lot)
                keys.append(sign * far)
        trimmed: dict[int, float] = {}  # tick -> size, of the trimmed levels this step did not change
        for t in [sign * k for k in keys[spec.max_levels :]]:
            size = side.pop(t)
            if t not in changes:
                trimmed[t] = size
            changes[t] = 0.0
        del keys[spec.max_levels :]
        if far_book is None or far_before is None:
            return changes, None
        return changes, self._far_changes(side, sign, far_before, changes, trimmed, removed, kept)

    def _far_changes(
        self,
        side: dict[int, float],
        sign: int,
        far_before: int,
        changes: dict[int, float],
        trimmed: dict[int, float],
        removed: list[tuple[int, float]],
        kept: tuple[int, float] | None,
    ) -> Walk:
        """Add to ``changes`` what the far book shows where the maintained end moved; return the side's walk (in
        ticks). Trimmed: the far book's levels show again (a trimmed level that was one of them, unchanged, is no
        change at all). Extended: the far levels the step did not take over unchanged are gone (crossed, or under
        new levels near a touch that jumped past the maintained side)."""
        assert self._far is not None
        # a kept maintained level stays: a step adds at most 40 levels before it, fewer than it keeps
        assert kept is None or changes.get(kept[0]) != 0.0
        far_after = self._keys[sign][-1]
        if far_after < far_before:
            for t, size in self._far.levels(sign, far_after, far_before):
                if trimmed.get(t) == size:
                    del changes[t]
                else:
                    changes[t] = size
        elif far_after > far_before:
            for t, size in self._far.levels(sign, far_before, far_after):
                if t in side:  # taken over, or a new level on its tick (then its change is in ``changes``)
                    if kept is None:
                        kept = (t, size)
                    continue
                changes[t] = 0.0
                if kept is None:  # the whole maintained side was crossed: the walk goes on out here
                    removed.append((t, size))
            if kept is None:
                kept = next(self._far.levels(sign, far_after), None)
        return Walk(tuple(removed), kept)

    def price(self, t: int) -> float:
        return self._prices[t]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        return self._top(self.bids, -1, n), self._top(self.asks, 1, n)

    def _top(self, side: dict[int, float], sign: int, n: int) -> list[Level]:
        keys, prices = self._keys[sign], self._prices
        levels = [(prices[t], side[t]) for t in (keys[:n] if sign > 0 else [-k for k in keys[:n]])]
        if len(levels) < n and self._far is not None and keys:
            levels += [(prices[t], s) for t, s in itertools.islice(self._far.levels(sign, keys[-1]), n - len(levels))]
        return levels


@attrs.frozen
class BinanceDiff:
    """One depth diff: levels at absolute sizes (0 = removed) with update ids ``first_id..final_id``.

    A diff of the model's step carries ``walks`` (bids, asks: each side's ``Walk``), so its ids can be placed
    on its levels one by one: bid removals, ask removals, bid updates, ask updates, each best first. Applied
    in that order the book never crosses, and ``touches`` says the top after each id that changed it."""

    first_id: int
    final_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    walks: tuple[Walk, Walk] | None = None  # None: a recorded or merged diff, its order unknown

    def touches(self) -> list[tuple[int, Level, Level]]:
        """(update id, best bid, best ask) after each of this diff's updates that changed the top; [] if unknown."""
        if self.walks is None:
            return []
        walks = self.walks
        best: list[Level | None] = [w.removed[0] if w.removed else w.kept for w in walks]
        shown = (best[0], best[1])
        out: list[tuple[int, Level, Level]] = []
        uid = self.first_id
        sides = (self.bids, self.asks)
        for i in (0, 1):  # removals, bids then asks: removing the best shows the next level of the walk
            walk = walks[i]
            for j in range(len(walk.removed)):
                best[i] = walk.removed[j + 1] if j + 1 < len(walk.removed) else walk.kept
                bid, ask = best
                if bid is not None and ask is not None and (bid, ask) != shown:
                    shown = (bid, ask)
                    out.append((uid + j, bid, ask))
            uid += sum(1 for _, size in sides[i] if size == 0)
        for i in (0, 1):  # updates, bids then asks, best first: only the first can reach the top
            updates = [level for level in sides[i] if level[1] > 0]
            current = best[i]
            if updates and (
                current is None or (updates[0][0] >= current[0] if i == 0 else updates[0][0] <= current[0])
            ):
                best[i] = updates[0]
                bid, ask = best
                if bid is not None and ask is not None and (bid, ask) != shown:
                    shown = (bid, ask)
                    out.append((uid, bid, ask))
            uid += len(updates)
        return out


@attrs.frozen
class StepResult:
    time_ms: int  # exchange clock (epoch ms)
    upbit_changed: tuple[str, ...]  # Upbit codes whose book changed
    binance_diff: BinanceDiff | None  # BTC's; the other coins' ([sim] coins, actors.sim.coin_market): (symbol, diff)
    binance_diffs: tuple[tuple[str, BinanceDiff], ...] = ()


PROCESS_STREAM = 1  # the fitted processes' draws: their own numpy stream beside the books' random.Random(seed)


class SimMarket:
    """The whole simulated market: processes, three books, Binance update ids.

    ``params``: the fitted model's parameters (``actors.sim.market_file.resolve`` reads them from the file
    ``cfg.market_model`` names); None only with ``market_model = "ou"``."""

    def __init__(self, cfg: SimConfig, seed: int, epoch_ms: int, params: MarketParams | None = None) -> None:
        if params is None and cfg.market_model != "ou":
            raise ValueError(f"market_model {cfg.market_model!r} needs its parameters (actors.sim.market_file.resolve)")
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.time_ms = epoch_ms
        self.btc_usdt = cfg.btc_usdt
        self.usdt_krw = cfg.usdt_krw
        self.process = (
            None
            if params is None
            else MarketProcess(params, cfg.step_ms / 1000, (seed, PROCESS_STREAM), cfg.start_volatility)
        )
        self.premium_bps = cfg.premium_mean_bps if self.process is None else self.process.premium_bps
        self._log_depth = {Venue.UPBIT: 0.0, Venue.BINANCE: 0.0}
        mids = self.mids()
        binance_occupancy = cfg.binance_occupancy or 0.3
        self.books = {
            UPBIT_BTC: SimBook(
                BookSpec(
                    _tick(1000.0, mids[UPBIT_BTC]),
                    1e-8,
                    30,
                    0.8,
                    cfg.upbit_level_size_btc or cfg.level_size_btc,
                    4,
                    far_gap_ticks=0.3,
                ),
                self.rng,
            ),
            UPBIT_USDT: SimBook(
                BookSpec(_tick(1.0, mids[UPBIT_USDT]), 1e-8, 30, 0.9, 20_000.0, 4, far_gap_ticks=0.2), self.rng
            ),
            BINANCE_BTC: SimBook(  # deep: a REST snapshot may ask for 5000 levels a side
                BookSpec(
                    _tick(0.01, mids[BINANCE_BTC]),
                    1e-5,
                    500,
                    binance_occupancy,
                    cfg.binance_level_size_btc or cfg.level_size_btc,
                    6,
                    far_gap_ticks=20.0 if not cfg.binance_occupancy else 1 / binance_occupancy - 1,
                ),
                self.rng,
                far_seed=f"{seed}:{BINANCE_BTC}",
            ),
        }
        self.upbit_codes: tuple[str, ...] = (UPBIT_BTC, UPBIT_USDT)
        self.still: set[str] = set()  # books not stepped (a replay serves recorded ones instead)
        self.update_id = 10_000_000_000 + self.rng.randrange(10**9)
        self.step()  # books populated before anyone connects

    def depth_factor(self, venue: Venue) -> float:
        return math.exp(self._log_depth[venue])

    def mids(self) -> dict[str, float]:
        return {
            UPBIT_BTC: self.btc_usdt * self.usdt_krw * (1 + self.premium_bps / 1e4),
            UPBIT_USDT: self.usdt_krw,
            BINANCE_BTC: self.btc_usdt,
        }

    def _advance_fitted(self, btc_usdt: float | None, usdt_krw: float | None) -> None:
        """One step of the fitted processes; a pinned BTC/USDT (a replay's recorded Binance) is what Upbit
        follows, a pinned USDT/KRW replaces the model's."""
        process, cfg = self.process, self.cfg
        assert process is not None
        process.step(None if btc_usdt is None else 1e4 * math.log(btc_usdt / cfg.btc_usdt))
        state = process.state
        self.btc_usdt = cfg.btc_usdt * math.exp(state.b / 1e4)
        self.usdt_krw = usdt_krw if usdt_krw is not None else cfg.usdt_krw * math.exp(state.fx / 1e4)
        self.premium_bps = process.premium_bps
        for venue in self._log_depth:
            self._log_depth[venue] = _ou_step(
                self._log_depth[venue], 0.0, cfg.depth_std, cfg.depth_reversion_s, cfg.step_ms / 1000, self.rng
            )

    def _advance(self, dt: float) -> None:
        cfg, rng = self.cfg, self.rng
        ret = cfg.btc_vol_bps_per_sqrt_s / 1e4 * math.sqrt(dt) * rng.gauss(0, 1)
        if rng.random() < cfg.jumps_per_hour / 3600 * dt:
            ret += rng.choice((-1, 1)) * cfg.jump_bps / 1e4 * rng.expovariate(1.0)
        self.btc_usdt *= math.exp(ret)
        self.usdt_krw *= math.exp(cfg.fx_vol_bps_per_sqrt_s / 1e4 * math.sqrt(dt) * rng.gauss(0, 1))
        self.premium_bps = _ou_step(
            self.premium_bps, cfg.premium_mean_bps, cfg.premium_std_bps, cfg.premium_reversion_s, dt, rng
        )
        for venue in self._log_depth:
            self._log_depth[venue] = _ou_step(
                self._log_depth[venue], 0.0, cfg.depth_std, cfg.depth_reversion_s, dt, rng
            )

    def step(self, btc_usdt: float | None = None, usdt_krw: float | None = None) -> StepResult:
        """One step of every process; ``btc_usdt`` / ``usdt_krw`` pin those prices (a replay anchors the
        synthesised books to a recorded venue this way) while the premium and depth keep their model."""
        dt = self.cfg.step_ms / 1000
        self.time_ms += self.cfg.step_ms
        if self.process is not None:
            self._advance_fitted(btc_usdt, usdt_krw)
        else:
            self._advance(dt)
            if btc_usdt is not None:
                self.btc_usdt = btc_usdt
            if usdt_krw is not None:
                self.usdt_krw = usdt_krw
        mids = self.mids()
        changed = []
        for code in (UPBIT_BTC, UPBIT_USDT):
            if code in self.still:
                continue
            moves = self.books[code].step(mids[code], self.depth_factor(Venue.UPBIT))
            if moves.bids or moves.asks:
                changed.append(code)
        diff = None
        if BINANCE_BTC not in self.still:
            diff = self._binance_diff(self.books[BINANCE_BTC].step(mids[BINANCE_BTC], self.depth_factor(Venue.BINANCE)))
        return StepResult(self.time_ms, tuple(changed), diff)

    def _binance_diff(self, moves: BookMoves) -> BinanceDiff | None:
        """The step's diff: one update id per changed level."""
        diff = diff_of(self.books[BINANCE_BTC], moves, self.update_id)
        if diff is not None:
            self.update_id = diff.final_id
        return diff


def diff_of(book: SimBook, moves: BookMoves, last_id: int) -> BinanceDiff | None:
    """A step's moves of ``book`` as a Binance diff whose ids follow ``last_id``, one id per changed level, for BTC's
    book (``SimMarket``) and every coin's (``coin_market``); None: nothing changed."""
    if not moves.bids and not moves.asks:
        return None
    price, walks = book.price, moves.walks
    return BinanceDiff(
        last_id + 1,
        last_id + len(moves.bids) + len(moves.asks),
        tuple((price(t), s) for t, s in sorted(moves.bids.items(), reverse=True)),
        tuple((price(t), s) for t, s in sorted(moves.asks.items())),
        None if walks is None else (_priced(walks[0], price), _priced(walks[1], price)),
    )


def _priced(walk: Walk, price: Callable[[int], float]) -> Walk:
    """``walk`` (ticks) with prices."""
    kept = None if walk.kept is None else (price(int(walk.kept[0])), walk.kept[1])
    return Walk(tuple((price(int(t)), s) for t, s in walk.removed), kept)
