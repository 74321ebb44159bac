"""The market model's value of every moment ``actors.tools.market_moments`` measures, in closed form.

The premium and Upbit's lag form a linear system driven by Binance's moves and three noises (state
``d, s - mean, x, f``; ``dX = A X dt + B dW``). Its stationary covariance solves ``A P + P A' + Q = 0``; the
covariance of the premium ``h`` minutes apart is ``c' exp(A h) P c``, and of a Binance move with the state
later ``q A^-1 (exp(A h) - I) B_b``. So the variance of premium changes over every horizon, their
autocorrelation, the lead-lag correlations with Binance and the share of a Binance move Upbit follows come
out exactly, averaged over volatility regimes (the noises scale with ``m`` and ``m^e``, whose mean squares
are 1 and ``exp(2 e s^2 (e - 1))``). Binance's jumps give the kurtosis and tails of its normalised returns,
its volatility process the spread and autocorrelation of the spans' log volatility.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from scipy import linalg, stats

from actors.sim.market_model import MarketParams
from actors.tools.market_moments import ACF_LAGS, BETA_HORIZONS, HORIZONS, LEAD_LAGS, TAILS, Array, Moments


@attrs.frozen(slots=False)
class System:
    """The premium's linear system in minutes, averaged over volatility regimes."""

    a: Array
    p: Array  # stationary covariance
    bb: Array  # Binance's column
    q: float
    c: Array = attrs.field(factory=lambda: np.array([1.0, 0.0, 0.0, 1.0]))

    @classmethod
    def of(cls, params: MarketParams) -> System:
        b, u, pr = params.binance, params.upbit, params.premium
        tau, t_f = u.lag_s / 60, u.noise_reversion_s / 60
        t_l, t_m = pr.slow_reversion_min, pr.medium_reversion_min
        a = np.array(
            [
                [-1 / tau, 1 / tau, 1 / tau, 0.0],
                [0.0, -1 / t_l, 0.0, 0.0],
                [0.0, 0.0, -1 / t_m, 0.0],
                [0.0, 0.0, 0.0, -1 / t_f],
            ]
        )
        q = b.vol_bps_per_min**2 + 2 * b.jump_scale_bps**2 * b.jumps_per_hour / 60
        g = _mean_m_power(2 * pr.vol_elasticity, b.vol_of_vol)
        g_l = _mean_m_power(2 * pr.slow_vol_elasticity, b.vol_of_vol)
        bb = np.array([-1.0, -(1 - u.beta), 0.0, 0.0])
        noise = np.diag(
            [0.0, g_l * 2 * pr.slow_std_bps**2 / t_l, g * 2 * pr.medium_std_bps**2 / t_m, g * 2 * u.noise_bps**2 / t_f]
        )
        cov = q * np.outer(bb, bb) + noise
        p = linalg.solve_continuous_lyapunov(a, -cov)
        return cls(a, p, bb, q)

    def expm(self, h: float) -> Array:
        """exp(A h), from A's eigenvectors when they are well apart (A is triangular: its eigenvalues are the
        processes' rates), else by scipy's Pade approximation."""
        vals, vecs, inverse = self._eigen
        if inverse is None:
            out: Array = linalg.expm(self.a * h)
            return out
        return np.real((vecs * np.exp(vals * h)) @ inverse)

    @property
    def _eigen(self) -> tuple[Array, Array, Array | None]:
        cached = self.__dict__.get("_eigen_cache")
        if cached is None:
            vals, vecs = np.linalg.eig(self.a)
            inverse = np.linalg.inv(vecs) if np.linalg.cond(vecs) < 1e8 else None
            cached = (vals, vecs, inverse)
            object.__setattr__(self, "_eigen_cache", cached)
        return cached

    def autocov(self, h: float) -> float:
        return float(self.c @ self.expm(h) @ self.p @ self.c)

    def change_var(self, h: float) -> float:
        return 2 * (self.autocov(0) - self.autocov(h))

    def move_state(self, h: float) -> Array:
        """Covariance of a Binance move over h minutes with the state at its end."""
        out: Array = np.asarray(
            self.q * np.linalg.solve(self.a, (self.expm(h) - np.eye(4)) @ self.bb), dtype=np.float64
        )
        return out

    def lead(self, j: int) -> float:
        k1 = self.move_state(1)
        if j == 0:
            return float(self.c @ k1)
        return float(self.c @ (self.expm(j) - self.expm(j - 1)) @ k1)

    def block_cov(self, n: int, offset: float) -> float:
        """Covariance of the mean premium of two spans of ``n`` minutes ``offset`` apart (0: the variance)."""
        lags = np.arange(-(n - 1), n, dtype=np.float64)
        weights = (n - np.abs(lags)) / n**2
        vals, vecs = np.linalg.eig(self.a)
        left = self.c @ vecs
        right = np.linalg.solve(vecs, self.p @ self.c)
        h = np.abs(offset + lags)
        total = sum(left[k] * right[k] * np.exp(vals[k] * h) for k in range(4))
        return float(np.real(np.sum(weights * total)))


def _mean_m_power(power: float, vol_of_vol: float) -> float:
    """E[m ** power] for m = exp(v - s^2), v ~ N(0, s^2)."""
    return math.exp(power * power * vol_of_vol**2 / 2 - power * vol_of_vol**2)


def model_moments(params: MarketParams, block_n: float, block_gap: float, premium_only: bool = False) -> Moments:
    """The model's value of every moment; ``premium_only``: the Binance-only ones (jumps, volatility) are
    left NaN (the premium fit does not move them)."""
    sys = System.of(params)
    b = params.binance
    v = np.array([sys.change_var(h) for h in HORIZONS])
    c = [sys.autocov(k) for k in range(max(ACF_LAGS) + 2)]
    acf = np.array([(2 * c[k] - c[k - 1] - c[k + 1]) / v[0] for k in ACF_LAGS])
    lead = np.array([sys.lead(j) for j in LEAD_LAGS])
    beta = np.array([1 + float(sys.c @ sys.move_state(h)) / (sys.q * h) for h in BETA_HORIZONS])
    block_acf = math.nan
    if math.isfinite(block_gap):
        n = int(round(block_n))
        block_acf = sys.block_cov(n, block_gap) / sys.block_cov(n, 0)
    kurt, tails, vol_var, vol_acf = math.nan, np.full(len(TAILS), math.nan), math.nan, math.nan
    if not premium_only:
        kurt, tails = jump_moments(*_jump_shape(params))
        vol_var, vol_acf = vol_moments(b.vol_of_vol, b.vol_reversion_min, block_n, block_gap)
    return Moments(
        q=sys.q,
        v=v,
        acf=acf,
        lead=lead,
        beta=beta,
        p_var=sys.autocov(0),
        p_mean=params.premium.mean_bps,
        block_acf=block_acf,
        block_gap=block_gap,
        block_n=block_n,
        kurt=kurt,
        tails=tails,
        vol_var=vol_var,
        vol_acf=vol_acf,
        slope=_slope(params, 1),
        slope60=_slope(params, 60),
    )


_NODES = np.polynomial.hermite_e.hermegauss(21)


def _slope(params: MarketParams, h: int) -> float:
    """How a span's RMS premium change over ``h`` minutes grows with its volatility: the regression the data's
    ``slope`` (h = 1) and ``slope60`` are, over volatility regimes (Gauss-Hermite nodes), each part of the
    change scaled as the model scales it (Binance-driven parts by m^2, the medium and fast noise by m^2e, the
    slow part by m^2e_slow)."""
    eta, pr = params.binance.vol_of_vol, params.premium
    if eta == 0:
        return math.nan
    # each group's change variance at m = 1 (the groups' other sources off, no volatility spread)
    parts = [System.of(_only(params, which)).change_var(h) for which in ("binance", "noise", "slow")]
    nodes, weights = _NODES
    log_m = eta * nodes - eta**2
    m = np.exp(log_m)
    var = parts[0] * m**2 + parts[1] * m ** (2 * pr.vol_elasticity) + parts[2] * m ** (2 * pr.slow_vol_elasticity)
    y = 0.5 * np.log(var)
    w = weights / weights.sum()
    x_mean, y_mean = np.sum(w * log_m), np.sum(w * y)
    return float(np.sum(w * (log_m - x_mean) * (y - y_mean)) / np.sum(w * (log_m - x_mean) ** 2))


def _only(params: MarketParams, which: str) -> MarketParams:
    """The model with only one group of sources (moments are sums over sources)."""
    tiny = 1e-9
    b, u, pr = params.binance, params.upbit, params.premium
    if which == "binance":
        return attrs.evolve(
            params,
            upbit=attrs.evolve(u, noise_bps=0.0),
            premium=attrs.evolve(pr, slow_std_bps=0.0, medium_std_bps=0.0, vol_elasticity=1.0),
            binance=attrs.evolve(b, vol_of_vol=tiny),
        )
    zero_binance = attrs.evolve(b, vol_bps_per_min=tiny, jump_scale_bps=0.0, vol_of_vol=tiny)
    if which == "noise":
        return attrs.evolve(
            params, binance=zero_binance, premium=attrs.evolve(pr, slow_std_bps=0.0, vol_elasticity=1.0)
        )
    return attrs.evolve(
        params,
        binance=zero_binance,
        upbit=attrs.evolve(u, noise_bps=0.0),
        premium=attrs.evolve(pr, medium_std_bps=0.0),
    )


def _jump_shape(params: MarketParams) -> tuple[float, float]:
    """(jumps per minute, the jumps' share of Binance's variance)."""
    b = params.binance
    lam = b.jumps_per_hour / 60
    jump_var = 2 * b.jump_scale_bps**2 * lam
    q = b.vol_bps_per_min**2 + jump_var
    return lam, (jump_var / q if q > 0 else 0.0)


def jump_moments(lam: float, w: float) -> tuple[float, Array]:
    """Kurtosis and tail shares of a normalised 1-minute return: normal with variance 1 - w plus a Poisson
    (``lam``) number of Laplace jumps with variance w in all."""
    kurt = 3.0 + (6 * w * w / lam if lam > 0 else 0.0)
    tails = np.array([_tail(t, lam, w) for t in TAILS])
    return kurt, tails


def _tail(t: float, lam: float, w: float) -> float:
    sd = math.sqrt(max(1.0 - w, 1e-12))
    if lam <= 0 or w <= 0:
        return float(2 * stats.norm.sf(t / sd))
    scale = math.sqrt(w / (2 * lam))
    total, p_k = 0.0, math.exp(-lam)
    for k in range(4):
        if k == 0:
            total += p_k * 2 * stats.norm.sf(t / sd)
        else:
            # the sum of k Laplace jumps has a density we integrate numerically against the normal's tail
            grid = np.linspace(-40 * scale * math.sqrt(k), 40 * scale * math.sqrt(k), 4001)
            density = _laplace_sum_density(grid, scale, k)
            tail = stats.norm.sf((t - grid) / sd) + stats.norm.cdf((-t - grid) / sd)
            total += p_k * float(np.trapezoid(density * tail, grid))
        p_k *= lam / (k + 1)
    return total


def _laplace_sum_density(x: Array, scale: float, k: int) -> Array:
    """Density of the sum of k Laplace(0, scale) variables (a variance-gamma law, in closed form)."""
    from scipy.special import gamma, kv

    ax = np.maximum(np.abs(x), 1e-12)
    nu = k - 0.5
    out: Array = (ax / (2 * scale)) ** nu * kv(nu, ax / scale) / (scale * math.sqrt(math.pi) * gamma(k))
    return out


def vol_moments(eta: float, reversion_min: float, block_n: float, block_gap: float) -> tuple[float, float]:
    """Variance of a span's mean log volatility and its correlation with the next span's."""
    if not math.isfinite(block_gap):
        return math.nan, math.nan
    n = int(round(block_n))
    lags = np.arange(-(n - 1), n, dtype=np.float64)
    weights = (n - np.abs(lags)) / n**2
    var = eta**2 * float(np.sum(weights * np.exp(-np.abs(lags) / reversion_min)))
    cov = eta**2 * float(np.sum(weights * np.exp(-np.abs(block_gap + lags) / reversion_min)))
    return var, (cov / var if var > 0 else math.nan)
