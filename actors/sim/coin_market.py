"""The many-coin part of the simulated market: every coin of the catalogue beside BTC, its prices and its books.

Pure: no Trio, no I/O. ``SimMarket`` (``actors.sim.model``) owns one when ``[sim] coins`` > 0 and steps it after
its own BTC, USDT/KRW and premium; with ``coins = 0`` there is none and nothing of the one-coin market changes.
Its draws come from streams of their own (numpy ``(seed, COIN_STREAM)``, ``random.Random(f"{seed}:coins")``), so
the one-coin market's streams are the same with or without coins.

Per step of dt seconds, vectorised over the coins (numpy):
- Binance price of coin i: ``p0_i * exp(beta_i * r_btc + x_i)``, where ``r_btc`` is BTC's log return since the
  start (the market factor) and ``x_i`` the coin's own random walk (``vol_bps_per_sqrt_s``).
- Premium of coin i: ``w_i * premium_market + d_i``: the market-wide premium (the fitted process the one-coin
  market already has, shared by every coin; a stablecoin has ``w_i = 0``) plus the coin's own part ``d_i``, an
  Ornstein-Uhlenbeck deviation with its own mean, stationary std and reversion time.
- Upbit KRW price: ``p_i * usdt_krw * (1 + premium_i / 1e4)``.
Books: each coin's Upbit book (30 levels) and Binance book (100 maintained levels, a far book behind them, so a
5000-level snapshot works) move only in the steps where the coin is active, with probability ``activity``
each (per venue, independently): quiet coins change less often, as the real market's do, and cost less. The
first step moves every book. Binance ids are per symbol, each from its own start.
"""

from __future__ import annotations

import math
import random
import zlib
from array import array

import attrs
import numpy as np
import numpy.typing as npt

from actors.core.vocabulary import Venue
from actors.sim.coins import Catalogue, CoinSpec, binance_step, binance_tick, catalogue, upbit_tick
from actors.sim.market_model import MarketParams
from actors.sim.model import FAR_BLOCK_TICKS, BinanceDiff, BookSpec, SimBook, SimMarket, StepResult, _FarBook, diff_of
from actors.sim.settings import SimConfig

COIN_STREAM = 2  # the coins' process draws: a numpy stream beside PROCESS_STREAM (1)
UPBIT_LEVELS, BINANCE_LEVELS = 30, 100  # levels a step maintains (Binance: a far book behind them)

Floats = npt.NDArray[np.float64]


class _NumpyFarBook(_FarBook):
    """A far book whose blocks numpy draws (a hundred times faster, other numbers): the coins' Binance books, whose
    few blocks hold most of their ticks. BTC's book keeps ``_FarBook``'s numbers."""

    def _generate(self, sign: int, index: int) -> tuple[array[int], array[float]]:
        spec = self._spec
        rng = np.random.default_rng(zlib.crc32(f"{self._seed}:{sign}:{index}".encode()))
        start, end = index * FAR_BLOCK_TICKS, (index + 1) * FAR_BLOCK_TICKS
        draws = int(FAR_BLOCK_TICKS / (1 + spec.far_gap_ticks) * 1.5) + 64  # more gaps than a block holds
        ticks = start + np.cumsum(1 + np.floor(rng.exponential(spec.far_gap_ticks, draws))).astype(np.int64)
        ticks = ticks[ticks < end]
        lots = np.maximum(1.0, np.round(spec.size_scale * rng.lognormal(0.0, 0.6, len(ticks)) / spec.lot))
        return array("q", ticks.tolist()), array("d", (lots * spec.lot).tolist())


def _upbit_book(coin: CoinSpec, krw_mid: float, rng: random.Random) -> SimBook:
    tick = upbit_tick(krw_mid, coin.stable)
    size = max(1e-8, round(coin.level_usdt / coin.price_usdt, 8))
    return SimBook(BookSpec(tick, 1e-8, UPBIT_LEVELS, 0.8, size, 3, far_gap_ticks=0.3), rng)


def _binance_book(coin: CoinSpec, seed: int, rng: random.Random) -> SimBook:
    lot = binance_step(coin.price_usdt)
    size = max(lot, round(coin.level_usdt / coin.price_usdt / lot) * lot)
    spec = BookSpec(binance_tick(coin.price_usdt), lot, BINANCE_LEVELS, 0.5, size, 3, far_gap_ticks=1.0)
    book = SimBook(spec, rng, far_seed=f"{seed}:{coin.binance_symbol}")
    book._far = _NumpyFarBook(f"{seed}:{coin.binance_symbol}", spec)  # the same book, its far part drawn faster
    return book


class CoinMarket:
    """The catalogue's coins: their processes (arrays over the coins) and their books (keyed by Upbit code and
    Binance symbol, as ``SimMarket.books`` serves them)."""

    def __init__(self, cat: Catalogue, seed: int, step_ms: int, usdt_krw: float) -> None:
        self.coins = cat.coins
        self._np = np.random.default_rng((seed, COIN_STREAM))
        self._rng = random.Random(f"{seed}:coins")
        dt = step_ms / 1000
        coins = self.coins
        self._log_p0 = np.log(np.array([c.price_usdt for c in coins]))
        self._beta = np.array([c.beta for c in coins])
        self._vol = np.array([c.vol_bps_per_sqrt_s / 1e4 * math.sqrt(dt) for c in coins])
        self._weight = np.array([c.market_weight for c in coins])
        self._mean = np.array([c.premium_mean_bps for c in coins])
        self._decay = np.exp(-dt / np.array([c.premium_reversion_s for c in coins]))
        self._shock = np.array([c.premium_std_bps for c in coins]) * np.sqrt(1 - self._decay**2)
        self._activity = np.array([c.activity for c in coins])
        self._own_log = np.zeros(len(coins))
        self.own_premium_bps: Floats = self._mean + np.array(
            [c.premium_std_bps for c in coins]
        ) * self._np.standard_normal(len(coins))  # each coin's own part, from its stationary law
        self.premium_bps: Floats = self.own_premium_bps.copy()  # each coin's whole premium, as of the last step
        self.binance_mid: Floats = np.exp(self._log_p0)
        self.upbit_mid: Floats = self.binance_mid * usdt_krw
        rng = self._rng
        self.upbit_books = {c.upbit_code: _upbit_book(c, c.price_usdt * usdt_krw, rng) for c in coins if c.on_upbit}
        self.binance_books = {c.binance_symbol: _binance_book(c, seed, rng) for c in coins if c.on_binance}
        self.update_ids = {symbol: 1_000_000_000 + rng.randrange(10**9) for symbol in self.binance_books}
        self._upbit_at = [(i, c.upbit_code) for i, c in enumerate(coins) if c.on_upbit]
        self._binance_at = [(i, c.binance_symbol) for i, c in enumerate(coins) if c.on_binance]
        self._first = True

    def advance(self, btc_log_return: float, usdt_krw: float, market_premium_bps: float) -> None:
        """The coins' processes one step on (their books stay): ``step`` does this first."""
        n = len(self.coins)
        normal = self._np.standard_normal((2, n))
        self._own_log += self._vol * normal[0]
        self.own_premium_bps = self._mean + (self.own_premium_bps - self._mean) * self._decay + self._shock * normal[1]
        self.premium_bps = self._weight * market_premium_bps + self.own_premium_bps
        self.binance_mid = np.exp(self._log_p0 + self._beta * btc_log_return + self._own_log)
        self.upbit_mid = self.binance_mid * usdt_krw * (1 + self.premium_bps / 1e4)

    def _active(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which coins' Upbit and Binance books move this step."""
        if self._first:
            self._first = False
            every = np.ones(len(self.coins), dtype=bool)
            return every, every
        draws = self._np.random((2, len(self.coins)))
        return draws[0] < self._activity, draws[1] < self._activity

    def step(
        self,
        btc_log_return: float,
        usdt_krw: float,
        market_premium_bps: float,
        upbit_depth: float,
        binance_depth: float,
    ) -> tuple[tuple[str, ...], tuple[tuple[str, BinanceDiff], ...]]:
        """One step: (the Upbit codes whose book changed, each changed Binance symbol's diff)."""
        self.advance(btc_log_return, usdt_krw, market_premium_bps)
        upbit_active, binance_active = self._active()
        changed: list[str] = []
        upbit_mid = self.upbit_mid.tolist()
        for i, code in self._upbit_at:
            if upbit_active[i]:
                moves = self.upbit_books[code].step(upbit_mid[i], upbit_depth)
                if moves.bids or moves.asks:
                    changed.append(code)
        diffs: list[tuple[str, BinanceDiff]] = []
        binance_mid = self.binance_mid.tolist()
        for i, symbol in self._binance_at:
            if binance_active[i]:
                book = self.binance_books[symbol]
                diff = diff_of(book, book.step(binance_mid[i], binance_depth), self.update_ids[symbol])
                if diff is not None:
                    self.update_ids[symbol] = diff.final_id
                    diffs.append((symbol, diff))
        return tuple(changed), tuple(diffs)

    def premium_of(self, base: str) -> tuple[float, float]:
        """(whole premium, own part) of coin ``base`` in bps, as of the last step."""
        i = next(i for i, c in enumerate(self.coins) if c.base == base)
        return float(self.premium_bps[i]), float(self.own_premium_bps[i])


class CoinsMarket(SimMarket):
    """``SimMarket`` with the catalogue's coins beside BTC: the same BTC, USDT/KRW and premium (the one-coin
    market's steps, unchanged), then the coins' step on them; their books are served from ``books`` too."""

    def __init__(self, cfg: SimConfig, seed: int, epoch_ms: int, params: MarketParams | None = None) -> None:
        self.catalogue = catalogue(cfg.coins)
        self.coins = CoinMarket(self.catalogue, seed, cfg.step_ms, cfg.usdt_krw)
        super().__init__(cfg, seed, epoch_ms, params)  # its first step moves the coins' books too
        self.books.update(self.coins.upbit_books)
        self.books.update(self.coins.binance_books)
        self.upbit_codes += tuple(self.coins.upbit_books)

    def step(self, btc_usdt: float | None = None, usdt_krw: float | None = None) -> StepResult:
        result = super().step(btc_usdt, usdt_krw)
        upbit, diffs = self.coins.step(
            math.log(self.btc_usdt / self.cfg.btc_usdt),
            self.usdt_krw,
            self.premium_bps,
            self.depth_factor(Venue.UPBIT),
            self.depth_factor(Venue.BINANCE),
        )
        return attrs.evolve(result, upbit_changed=(*result.upbit_changed, *upbit), binance_diffs=diffs)


def simulated_market(cfg: SimConfig, seed: int, epoch_ms: int, params: MarketParams | None = None) -> SimMarket:
    """The seeded market of ``cfg``: with ``[sim] coins`` > 0 a ``CoinsMarket``, else the one-coin ``SimMarket``."""
    return (CoinsMarket if cfg.coins else SimMarket)(cfg, seed, epoch_ms, params)
