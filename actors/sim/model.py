"""The embedded exchange's market: seeded price processes and persistent venue books.

Pure: no Trio, no sockets, no clock; ``SimMarket.step()`` advances one step (``step_ms``) and reports
what changed. Same seed and config, same market.

Processes (per step of dt seconds):
- BTC/USDT: geometric random walk (``btc_vol_bps_per_sqrt_s``) plus Poisson jumps.
- USDT/KRW: geometric random walk (``fx_vol_bps_per_sqrt_s``).
- Kimchi premium (bps): Ornstein-Uhlenbeck around ``premium_mean_bps`` with stationary std
  ``premium_std_bps`` and reversion time ``premium_reversion_s``.
- Depth: per venue, a log-scale OU factor multiplying level sizes, so visible depth varies in time.

Books are kept in integer ticks and change the way real books do: levels crossed by a price move
are removed, the new touch and some gaps behind it are filled, a few levels are refreshed, far levels
are trimmed. Binance publishes those changes as diffs with chained update ids; Upbit publishes its
top-N book whenever it changed.
"""

from __future__ import annotations

import heapq
import math
import random

import attrs

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
    max_levels: int
    occupancy: float  # chance that a tick behind the touch holds a level
    size_scale: float  # mean level size in base units before the depth factor
    refresh_per_step: int
    far_gap_ticks: float = 1.0  # mean extra ticks between levels added at the far end


class SimBook:
    """One venue market's book: tick index -> size, with change tracking."""

    def __init__(self, spec: BookSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._decimals = max(0, -math.floor(math.log10(spec.tick)))
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}

    def _size(self, depth_factor: float) -> float:
        spec = self.spec
        raw = spec.size_scale * depth_factor * self._rng.lognormvariate(0.0, 0.6)
        return max(spec.lot, round(raw / spec.lot) * spec.lot)

    def step(self, mid: float, depth_factor: float) -> tuple[dict[int, float], dict[int, float]]:
        """Move the book to ``mid``; return the changed levels per side (size 0 = removed)."""
        spec, rng = self.spec, self._rng
        best_bid = math.floor(mid / spec.tick)
        if best_bid * spec.tick >= mid:
            best_bid -= 1
        best_ask = best_bid + 1
        bid_changes: dict[int, float] = {}
        ask_changes: dict[int, float] = {}
        for side, changes, sign, touch in (
            (self.bids, bid_changes, -1, best_bid),
            (self.asks, ask_changes, 1, best_ask),
        ):
            for t in [t for t in side if (t - touch) * sign < 0]:  # crossed by the move
                del side[t]
                changes[t] = 0.0
            # the touch, and some levels behind it where the book moved away
            for k in range(0, min(spec.max_levels, 40)):
                t = touch + sign * k
                if t in side:
                    if k > 0:
                        break
                    continue
                if k == 0 or rng.random() < spec.occupancy:
                    side[t] = changes[t] = self._size(depth_factor)
            # refresh a few levels near the top (orders added and cancelled)
            near = heapq.nsmallest(40, side, key=lambda t: (t - touch) * sign)
            for t in rng.sample(near, min(spec.refresh_per_step, len(near))):
                side[t] = changes[t] = self._size(depth_factor)
            # extend or trim the far end
            far = max(side, key=lambda t: (t - touch) * sign)
            while len(side) < spec.max_levels:
                far += sign * (1 + int(rng.expovariate(1.0 / spec.far_gap_ticks)))
                side[far] = changes[far] = self._size(depth_factor)
            if len(side) > spec.max_levels:
                for t in sorted(side, key=lambda t: (t - touch) * sign)[spec.max_levels :]:
                    del side[t]
                    changes[t] = 0.0
        return bid_changes, ask_changes

    def price(self, t: int) -> float:
        return round(t * self.spec.tick, self._decimals)

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = [(self.price(t), self.bids[t]) for t in sorted(self.bids, reverse=True)[:n]]
        asks = [(self.price(t), self.asks[t]) for t in sorted(self.asks)[:n]]
        return bids, asks


@attrs.frozen
class BinanceDiff:
    first_id: int
    final_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@attrs.frozen
class StepResult:
    time_ms: int  # exchange clock (epoch ms)
    upbit_changed: tuple[str, ...]  # Upbit codes whose book changed
    binance_diff: BinanceDiff | None


class SimMarket:
    """The whole simulated market: processes, three books, Binance update ids."""

    def __init__(self, cfg: SimConfig, seed: int, epoch_ms: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.time_ms = epoch_ms
        self.btc_usdt = cfg.btc_usdt
        self.usdt_krw = cfg.usdt_krw
        self.premium_bps = cfg.premium_mean_bps
        self._log_depth = {"upbit": 0.0, "binance": 0.0}
        mids = self.mids()
        self.books = {
            UPBIT_BTC: SimBook(
                BookSpec(_tick(1000.0, mids[UPBIT_BTC]), 1e-8, 30, 0.8, cfg.level_size_btc, 4, far_gap_ticks=0.3),
                self.rng,
            ),
            UPBIT_USDT: SimBook(
                BookSpec(_tick(1.0, mids[UPBIT_USDT]), 1e-8, 30, 0.9, 20_000.0, 4, far_gap_ticks=0.2), self.rng
            ),
            BINANCE_BTC: SimBook(
                BookSpec(_tick(0.01, mids[BINANCE_BTC]), 1e-5, 500, 0.3, cfg.level_size_btc, 6, far_gap_ticks=20.0),
                self.rng,
            ),
        }
        self.upbit_codes = (UPBIT_BTC, UPBIT_USDT)
        self.still: set[str] = set()  # books not stepped (a replay serves recorded ones instead)
        self.update_id = 10_000_000_000 + self.rng.randrange(10**9)
        self.step()  # books populated before anyone connects

    def depth_factor(self, venue: str) -> float:
        return math.exp(self._log_depth[venue])

    def mids(self) -> dict[str, float]:
        return {
            UPBIT_BTC: self.btc_usdt * self.usdt_krw * (1 + self.premium_bps / 1e4),
            UPBIT_USDT: self.usdt_krw,
            BINANCE_BTC: self.btc_usdt,
        }

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
            bids, asks = self.books[code].step(mids[code], self.depth_factor("upbit"))
            if bids or asks:
                changed.append(code)
        book = self.books[BINANCE_BTC]
        bids, asks = (
            ({}, {}) if BINANCE_BTC in self.still else book.step(mids[BINANCE_BTC], self.depth_factor("binance"))
        )
        diff = None
        if bids or asks:
            first = self.update_id + 1
            self.update_id += len(bids) + len(asks)
            diff = BinanceDiff(
                first,
                self.update_id,
                tuple((book.price(t), s) for t, s in sorted(bids.items(), reverse=True)),
                tuple((book.price(t), s) for t, s in sorted(asks.items())),
            )
        return StepResult(self.time_ms, tuple(changed), diff)
