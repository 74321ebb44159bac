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

import math
import random

import attrs

from actors.core.vocabulary import Venue
from actors.sim.books import FAR_BLOCK_TICKS as FAR_BLOCK_TICKS
from actors.sim.books import FAR_BLOCKS_KEPT as FAR_BLOCKS_KEPT
from actors.sim.books import BinanceDiff as BinanceDiff
from actors.sim.books import BookMoves as BookMoves
from actors.sim.books import BookSpec as BookSpec
from actors.sim.books import Level as Level
from actors.sim.books import SimBook as SimBook
from actors.sim.books import Walk as Walk
from actors.sim.books import _tick, diff_of
from actors.sim.coin_market import CoinMarket
from actors.sim.coins import catalogue
from actors.sim.market_model import MarketParams, MarketProcess
from actors.sim.settings import SimConfig

UPBIT_BTC, UPBIT_USDT, BINANCE_BTC = "KRW-BTC", "KRW-USDT", "BTCUSDT"


def _ou_step(x: float, mean: float, std: float, reversion_s: float, dt: float, rng: random.Random) -> float:
    """Exact Ornstein-Uhlenbeck transition over dt (stable for any step, unlike an Euler step)."""
    decay = math.exp(-dt / reversion_s)
    return mean + (x - mean) * decay + std * math.sqrt(1 - decay * decay) * rng.gauss(0, 1)


@attrs.frozen
class StepResult:
    time_ms: int  # exchange clock (epoch ms)
    upbit_changed: tuple[str, ...]  # Upbit codes whose book changed
    binance_diff: BinanceDiff | None  # BTC's
    binance_diffs: tuple[tuple[str, BinanceDiff], ...] = ()  # the other symbols' ([sim] coins): (symbol, diff)


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
        # [sim] coins > 0: the other coins (their own streams: the ones above are the same with or without them)
        self.catalogue = catalogue(cfg.coins)
        self.coins = CoinMarket(self.catalogue, seed, cfg.step_ms, self.usdt_krw) if cfg.coins else None
        if self.coins is not None:
            self.books.update(self.coins.upbit_books)
            self.books.update(self.coins.binance_books)
            self.upbit_codes += tuple(self.coins.upbit_books)
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
        if self.coins is None:
            return StepResult(self.time_ms, tuple(changed), diff)
        upbit, diffs = self.coins.step(
            math.log(self.btc_usdt / self.cfg.btc_usdt),
            self.usdt_krw,
            self.premium_bps,
            self.depth_factor(Venue.UPBIT),
            self.depth_factor(Venue.BINANCE),
        )
        return StepResult(self.time_ms, (*changed, *upbit), diff, diffs)

    def _binance_diff(self, moves: BookMoves) -> BinanceDiff | None:
        """The step's diff: one update id per changed level."""
        diff = diff_of(self.books[BINANCE_BTC], moves, self.update_id)
        if diff is not None:
            self.update_id = diff.final_id
        return diff
