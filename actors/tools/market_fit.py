"""Fitting ``MarketParams`` to 1-minute closes of both venues (``python -m actors.calibrate --market``).

A method of moments. The data are ``Span``s: runs of consecutive minutes (``realism.Stretch``) with their
start time, so statistics never cross a gap and the slow processes are seen across gaps. Every moment the
fit uses is a sum over spans (``SpanSums``), so a bootstrap that resamples runs of consecutive spans costs
a few additions per replicate; the model's moments are closed form:

- The premium and Upbit's lag form a linear system driven by Binance's moves and three noises (state
  ``d, s - mean, x, f``; ``dX = A X dt + B dW``). Its stationary covariance solves ``A P + P A' + Q = 0``;
  the covariance of the premium ``h`` minutes apart is ``c' exp(A h) P c``, and of a Binance move with
  the state later ``q A^-1 (exp(A h) - I) B_b``. So the variance of premium changes over every horizon,
  their autocorrelation, the lead-lag correlations with Binance and the share of a Binance move Upbit
  follows come out exactly, averaged over volatility regimes (the noises scale with ``m`` and ``m^e``,
  whose mean squares are 1 and ``exp(2 e s^2 (e - 1))``).
- Binance: its mean variance per minute is the data's; the jumps come from the kurtosis and tails of
  returns divided by their own stretch's volatility; the volatility's std and reversion from the spread
  and the autocorrelation of the stretches' log volatility (the spans' start times give the distance).

Stage one fits Binance, stage two the premium and Upbit (nine parameters, least squares on about 25
moments with the tolerance of each, ``scipy.optimize.least_squares``). 95 % intervals are the 2.5 and 97.5
percentiles of refits on bootstrap replicates. What the data cannot show (how often Binance's price moves
within a second, from a recording; the slow processes, without several spans hours apart; USDT/KRW's
volatility, without FX that changes) is taken from a prior model and said so.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import attrs
import numpy as np
import numpy.typing as npt
from scipy import linalg, optimize, stats

from actors.core import realism
from actors.sim.market_model import BinanceParams, MarketParams

Array = npt.NDArray[np.float64]
HORIZONS = (1, 2, 3, 5, 10, 15, 30, 60, 120)  # premium change variance, minutes
BETA_HORIZONS = (1, 5, 15, 60)  # share of a Binance move Upbit follows within h minutes
ACF_LAGS = (1, 2)
LEAD_LAGS = (0, 1, 2)  # Binance's 1-minute return against the premium's change j minutes later
TAILS = (4.0, 6.0)  # normalised Binance returns beyond these many stds
MIN_SPANS_FOR_SLOW = 10  # spans needed to see the slow processes across gaps
MIN_GAP_FOR_SLOW_MIN = 120.0  # span starts at least this far apart count as "across a gap"


@attrs.frozen
class Span:
    start_min: float  # minutes since the epoch of the span's first close
    stretch: realism.Stretch  # premium (bps), binance (USDT), upbit (KRW)


def _lag_sum(a: Array, b: Array, lag: int) -> tuple[float, int]:
    n = len(a) - lag
    if n <= 0:
        return 0.0, 0
    return float(np.dot(a[:n], b[lag:])), n


@attrs.frozen
class SpanSums:
    """Per span (rows), the sums every moment is made of."""

    n_min: Array  # minutes in the span
    start: Array  # start, minutes
    dp2: Array  # (len(HORIZONS), spans): sum of squared premium changes over each horizon
    dp_n: Array
    acf: Array  # (len(ACF_LAGS), spans): sum of products of 1-minute changes `lag` apart
    acf_n: Array
    rb2: Array  # sum of squared Binance 1-minute log returns (bps^2)
    rb_n: Array
    lead: Array  # (len(LEAD_LAGS), spans): sum of rb[t] * dp[t + j]
    lead_n: Array
    beta_bp: Array  # (len(BETA_HORIZONS), spans): sum of h-minute Binance moves times premium changes
    beta_b2: Array
    beta_n: Array
    p_sum: Array
    p2_sum: Array
    z4: Array  # sums over normalised Binance returns: fourth powers, counts beyond TAILS
    tails: Array
    z_n: Array
    log_vol: Array  # 0.5 * ln(mean rb^2): the span's log volatility (NaN if it has none)
    log_dp1: Array  # 0.5 * ln(mean dp1^2)
    log_dp60: Array  # 0.5 * ln(mean dp60^2) (NaN in a span under 120 minutes)
    mean_p: Array  # the span's mean premium

    @classmethod
    def of(cls, spans: Sequence[Span]) -> SpanSums:
        rows = [_span_row(s) for s in spans]
        names = [f.name for f in attrs.fields(cls)]
        return cls(**{name: np.array([r[name] for r in rows], dtype=np.float64).T for name in names})

    def take(self, index: npt.NDArray[np.int64]) -> SpanSums:
        return SpanSums(**{f.name: getattr(self, f.name)[..., index] for f in attrs.fields(SpanSums)})


def _span_row(span: Span) -> dict[str, object]:
    s = span.stretch
    p = s.premium_bps
    dp = np.diff(p)
    row: dict[str, object] = {"n_min": len(p), "start": span.start_min}
    row["dp2"] = [float(np.sum((p[h:] - p[:-h]) ** 2)) if len(p) > h else 0.0 for h in HORIZONS]
    row["dp_n"] = [max(len(p) - h, 0) for h in HORIZONS]
    pairs = [_lag_sum(dp, dp, k) for k in ACF_LAGS]
    row["acf"], row["acf_n"] = [v for v, _ in pairs], [n for _, n in pairs]
    row["p_sum"], row["p2_sum"], row["mean_p"] = float(p.sum()), float(np.dot(p, p)), float(p.mean())
    row["log_dp1"] = 0.5 * math.log(np.mean(dp * dp)) if len(dp) and np.any(dp) else math.nan
    dp60 = p[60:] - p[:-60] if len(p) >= 120 else np.empty(0)
    row["log_dp60"] = 0.5 * math.log(np.mean(dp60 * dp60)) if len(dp60) and np.any(dp60) else math.nan
    if s.binance is None:
        for key, size in (("lead", 3), ("lead_n", 3), ("beta_bp", 4), ("beta_b2", 4), ("beta_n", 4), ("tails", 2)):
            row[key] = [0.0] * size
        row.update(rb2=0.0, rb_n=0, z4=0.0, z_n=0, log_vol=math.nan)
        return row
    lb = np.log(s.binance) * 1e4
    rb = np.diff(lb)
    row["rb2"], row["rb_n"] = float(np.dot(rb, rb)), len(rb)
    pairs = [_lag_sum(rb, dp, j) for j in LEAD_LAGS]
    row["lead"], row["lead_n"] = [v for v, _ in pairs], [n for _, n in pairs]
    bp, b2, bn = [], [], []
    for h in BETA_HORIZONS:
        if len(p) > h:
            db, dph = lb[h:] - lb[:-h], p[h:] - p[:-h]
            bp.append(float(np.dot(db, dph)))
            b2.append(float(np.dot(db, db)))
            bn.append(len(db))
        else:
            bp.append(0.0)
            b2.append(0.0)
            bn.append(0)
    row["beta_bp"], row["beta_b2"], row["beta_n"] = bp, b2, bn
    vol = float(np.sqrt(np.mean(rb * rb))) if len(rb) else 0.0
    if vol > 0:
        z = (rb - rb.mean()) / vol
        row["z4"], row["z_n"] = float(np.sum(z**4)), len(z)
        row["tails"] = [float(np.sum(np.abs(z) > t)) for t in TAILS]
        row["log_vol"] = math.log(vol)
    else:
        row.update(z4=0.0, z_n=0, tails=[0.0, 0.0], log_vol=math.nan)
    return row


# -- the data's moments ----------------------------------------------------------------------------------


@attrs.frozen
class Moments:
    """What the fit matches (NaN: not measurable in this data)."""

    q: float  # Binance mean variance per minute
    v: Array  # premium change variance per HORIZONS
    acf: Array  # per ACF_LAGS
    lead: Array  # covariance of a Binance 1-minute move with the premium change j minutes later
    beta: Array  # per BETA_HORIZONS: Upbit's move / Binance's move
    p_var: float  # the premium's variance about its overall mean
    p_mean: float
    block_acf: float  # correlation of consecutive spans' mean premium (NaN: no such pairs)
    block_gap: float  # their median start-to-start distance, minutes
    block_n: float  # median span length
    kurt: float  # normalised Binance returns
    tails: Array
    vol_var: float  # variance of the spans' log volatility
    vol_acf: float
    slope: float  # the spans' log RMS 1-minute premium change against their log volatility
    slope60: float  # the same for 60-minute changes


def moments(sums: SpanSums, consecutive: npt.NDArray[np.bool_] | None = None) -> Moments:
    """``consecutive[k]``: span k+1 follows span k in the data (pairs across a bootstrap seam do not)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        q = sums.rb2.sum() / sums.rb_n.sum() if sums.rb_n.sum() else math.nan
        v = sums.dp2.sum(axis=1) / sums.dp_n.sum(axis=1)
        v1 = v[HORIZONS.index(1)]
        acf = (sums.acf.sum(axis=1) / sums.acf_n.sum(axis=1)) / v1
        lead = sums.lead.sum(axis=1) / sums.lead_n.sum(axis=1)
        beta = 1 + sums.beta_bp.sum(axis=1) / sums.beta_b2.sum(axis=1)
        n = sums.n_min.sum()
        p_mean = sums.p_sum.sum() / n
        p_var = sums.p2_sum.sum() / n - p_mean**2
        z_n = sums.z_n.sum()
        kurt = sums.z4.sum() / z_n if z_n else math.nan
        tails = sums.tails.sum(axis=1) / z_n if z_n else np.full(len(TAILS), math.nan)
    if consecutive is None:
        consecutive = np.diff(sums.start) >= MIN_GAP_FOR_SLOW_MIN
    block_acf = block_gap = vol_acf = vol_var = math.nan
    pairs = np.flatnonzero(consecutive)
    if len(sums.n_min) >= MIN_SPANS_FOR_SLOW and len(pairs) >= MIN_SPANS_FOR_SLOW - 1:
        m = sums.mean_p - sums.mean_p.mean()
        block_acf = float(np.mean(m[pairs] * m[pairs + 1]) / np.mean(m * m))
        block_gap = float(np.median(sums.start[pairs + 1] - sums.start[pairs]))
        lv = sums.log_vol
        ok = np.isfinite(lv)
        if ok.sum() >= MIN_SPANS_FOR_SLOW:
            lv_c = np.where(ok, lv - np.nanmean(lv), 0.0)
            both = pairs[ok[pairs] & ok[pairs + 1]]
            vol_var = float(np.nanvar(lv))
            vol_acf = float(np.mean(lv_c[both] * lv_c[both + 1]) / np.mean(lv_c[ok] ** 2)) if len(both) else math.nan
    slope, slope60 = (_regression(sums.log_vol, y) for y in (sums.log_dp1, sums.log_dp60))
    return Moments(
        q=float(q),
        v=v,
        acf=acf,
        lead=lead,
        beta=beta,
        p_var=float(p_var),
        p_mean=float(p_mean),
        block_acf=block_acf,
        block_gap=block_gap,
        block_n=float(np.median(sums.n_min)),
        kurt=float(kurt),
        tails=tails,
        vol_var=vol_var,
        vol_acf=vol_acf,
        slope=slope,
        slope60=slope60,
    )


def _regression(x: Array, y: Array) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < MIN_SPANS_FOR_SLOW or np.var(x[ok]) == 0:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


# -- the model's moments ---------------------------------------------------------------------------------


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
        kurt, tails = _jump_moments(*_jump_shape(params))
        vol_var, vol_acf = _vol_moments(b.vol_of_vol, b.vol_reversion_min, block_n, block_gap)
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


def _jump_moments(lam: float, w: float) -> tuple[float, Array]:
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


def _vol_moments(eta: float, reversion_min: float, block_n: float, block_gap: float) -> tuple[float, float]:
    """Variance of a span's mean log volatility and its correlation with the next span's."""
    if not math.isfinite(block_gap):
        return math.nan, math.nan
    n = int(round(block_n))
    lags = np.arange(-(n - 1), n, dtype=np.float64)
    weights = (n - np.abs(lags)) / n**2
    var = eta**2 * float(np.sum(weights * np.exp(-np.abs(lags) / reversion_min)))
    cov = eta**2 * float(np.sum(weights * np.exp(-np.abs(block_gap + lags) / reversion_min)))
    return var, (cov / var if var > 0 else math.nan)


# -- the fit ---------------------------------------------------------------------------------------------


@attrs.frozen
class Fit:
    params: MarketParams
    fitted: frozenset[str]  # "section.key" of the parameters fitted here (the others: from the prior)
    model: Moments
    data: Moments


def _sampling_var(kurt: float, n: float) -> float:
    """Variance of the log of a sample std of n values with this kurtosis (the delta method)."""
    return (kurt - 1) / (4 * n) if n > 0 and math.isfinite(kurt) else 0.0


def fit_binance(data: Moments, prior: BinanceParams) -> tuple[BinanceParams, set[str]]:
    fitted = {"vol_bps_per_min", "jumps_per_hour", "jump_scale_bps"}
    excess = max(data.kurt - 3.0, 0.0)

    def residuals(x: Array) -> Array:
        lam, w = math.exp(x[0]), 1 / (1 + math.exp(-x[1]))
        kurt, tails = _jump_moments(lam, w)
        r = [(kurt - 3.0 - excess) / max(0.1 * excess, 0.05)]
        r += [math.log(max(m, 1e-7) / max(d, 1e-7)) / 0.2 for m, d in zip(tails, data.tails)]
        return np.array(r)

    lam, w = 0.0, 0.0
    if excess > 0.05 and np.all(np.isfinite(data.tails)):
        best = optimize.least_squares(residuals, x0=np.array([math.log(0.05), 0.0]), bounds=([-12, -8], [3, 8]))
        lam, w = math.exp(best.x[0]), 1 / (1 + math.exp(-best.x[1]))
    q = data.q
    jumps_per_hour = 60 * lam
    scale = math.sqrt(w * q / (2 * lam)) if lam > 0 else 0.0
    out = attrs.evolve(
        prior, vol_bps_per_min=math.sqrt((1 - w) * q), jumps_per_hour=jumps_per_hour, jump_scale_bps=scale
    )
    if math.isfinite(data.vol_acf) and math.isfinite(data.vol_var) and data.vol_acf > 0.01:
        noise = _sampling_var(data.kurt, data.block_n)

        def acf_gap(log_t: float) -> float:
            return _vol_moments(1.0, math.exp(log_t), data.block_n, data.block_gap)[1] - data.vol_acf

        lo, hi = math.log(10.0), math.log(1e6)
        if acf_gap(lo) < 0 < acf_gap(hi):
            reversion = math.exp(optimize.brentq(acf_gap, lo, hi))
            per_unit = _vol_moments(1.0, reversion, data.block_n, data.block_gap)[0]
            eta = math.sqrt(max(data.vol_var - noise, 1e-6) / per_unit)
            out = attrs.evolve(out, vol_of_vol=min(eta, 3.0), vol_reversion_min=reversion)
            fitted |= {"vol_of_vol", "vol_reversion_min"}
    return out, fitted


_PREMIUM_KEYS = (
    ("upbit", "lag_s", "log"),
    ("upbit", "beta", "lin"),
    ("upbit", "noise_bps", "log"),
    ("upbit", "noise_reversion_s", "log"),
    ("premium", "slow_std_bps", "log"),
    ("premium", "slow_reversion_min", "log"),
    ("premium", "medium_std_bps", "log"),
    ("premium", "medium_reversion_min", "log"),
    ("premium", "vol_elasticity", "lin"),
    ("premium", "slow_vol_elasticity", "lin"),
)
_BOUNDS = {
    "lag_s": (0.5, 600.0),
    "beta": (0.3, 1.3),
    "noise_bps": (0.05, 200.0),
    "noise_reversion_s": (1.0, 3600.0),
    "slow_std_bps": (0.5, 2000.0),
    "slow_reversion_min": (30.0, 1e5),
    "medium_std_bps": (0.05, 500.0),
    "medium_reversion_min": (1.5, 600.0),
    "vol_elasticity": (0.0, 2.0),
    "slow_vol_elasticity": (0.0, 2.0),
}


def _with(params: MarketParams, values: Mapping[tuple[str, str], float]) -> MarketParams:
    upbit = {k: v for (s, k), v in values.items() if s == "upbit"}
    premium = {k: v for (s, k), v in values.items() if s == "premium"}
    return attrs.evolve(
        params, upbit=attrs.evolve(params.upbit, **upbit), premium=attrs.evolve(params.premium, **premium)
    )


def _residuals(model: Moments, data: Moments, slow: bool) -> Array:
    r: list[float] = []
    r += list(np.log(model.v / data.v) / 0.05)
    r += list((model.acf - data.acf) / 0.02)
    scale = math.sqrt(data.q * data.v[0])
    r += list((model.lead - data.lead) / (0.02 * scale))
    r += list((model.beta - data.beta) / 0.02)
    if slow:
        r.append(math.log(model.p_var / data.p_var) / 0.1)
        r.append((model.block_acf - data.block_acf) / 0.05)
    for d, m in ((data.slope, model.slope), (data.slope60, model.slope60)):
        if math.isfinite(d) and math.isfinite(m):
            r.append((m - d) / 0.05)
    return np.array([x if math.isfinite(x) else 1e3 for x in r])


def fit_premium(data: Moments, prior: MarketParams, start: MarketParams | None = None) -> tuple[MarketParams, set[str]]:
    """The premium's and Upbit's parameters; the least squares starts at ``start`` (default: ``prior``) for
    the parameters the data shows and keeps ``prior``'s for the others."""
    slow = math.isfinite(data.block_acf)
    keys = [k for k in _PREMIUM_KEYS if slow or k[1] != "slow_reversion_min"]
    if not math.isfinite(data.slope):
        keys = [k for k in keys if k[1] != "vol_elasticity"]
    if not math.isfinite(data.slope60):
        keys = [k for k in keys if k[1] != "slow_vol_elasticity"]

    def unpack(x: Array) -> dict[tuple[str, str], float]:
        return {(s, k): (math.exp(v) if kind == "log" else v) for (s, k, kind), v in zip(keys, x)}

    def pack(params: MarketParams) -> Array:
        out = []
        for section, key, kind in keys:
            lo, hi = _BOUNDS[key]
            value = min(max(getattr(getattr(params, section), key), lo), hi)
            out.append(math.log(value) if kind == "log" else value)
        return np.array(out)

    lo = [math.log(_BOUNDS[k][0]) if kind == "log" else _BOUNDS[k][0] for _, k, kind in keys]
    hi = [math.log(_BOUNDS[k][1]) if kind == "log" else _BOUNDS[k][1] for _, k, kind in keys]
    start = start or prior
    initial = {(sec, key): getattr(getattr(start, sec), key) for sec, key, _ in keys}
    base = _with(prior, initial)
    base = attrs.evolve(base, premium=attrs.evolve(base.premium, mean_bps=data.p_mean))

    def residuals(x: Array) -> Array:
        params = _with(base, unpack(x))
        try:
            model = model_moments(params, data.block_n, data.block_gap, premium_only=True)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.full(len(HORIZONS) + 12, 1e3)
        return _residuals(model, data, slow)

    best = optimize.least_squares(residuals, pack(base), bounds=(lo, hi), x_scale=1.0, max_nfev=400)
    fitted = {f"{s}.{k}" for s, k, _ in keys} | {"premium.mean_bps"}
    return _with(base, unpack(best.x)), fitted


def fit(
    sums: SpanSums,
    prior: MarketParams,
    consecutive: npt.NDArray[np.bool_] | None = None,
    start: MarketParams | None = None,
) -> Fit:
    """Fit to the spans' moments: what the data cannot show is ``prior``'s; the search starts at ``start``
    (default: ``prior``), so that a fit from a fixed start does not depend on the prior it could do without."""
    data = moments(sums, consecutive)
    if not math.isfinite(data.q):
        raise ValueError("no Binance prices in the data: nothing to fit the market to")
    binance, fitted_b = fit_binance(data, prior.binance)
    params, fitted = fit_premium(data, attrs.evolve(prior, binance=binance), start)
    model = model_moments(params, data.block_n, data.block_gap)
    return Fit(params, frozenset(fitted | {f"binance.{k}" for k in fitted_b}), model, data)


def bootstrap_draws(
    sums: SpanSums,
    prior: MarketParams,
    replicates: int,
    seed: int,
    run: int = 10,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Every parameter refitted on replicates made of runs of ``run`` consecutive spans drawn with
    replacement (pairs of spans across two runs' seam are not consecutive)."""
    rng = np.random.default_rng(seed)
    n = len(sums.n_min)
    starts = np.arange(max(n - run + 1, 1))
    draws: list[dict[str, float]] = []
    base_consecutive = np.diff(sums.start) >= MIN_GAP_FOR_SLOW_MIN
    for i in range(replicates):
        chosen = rng.choice(starts, size=max(1, math.ceil(n / run)))
        index = np.concatenate([np.arange(s, min(s + run, n)) for s in chosen])
        seam = np.zeros(len(index) - 1, dtype=bool)
        pos = 0
        for s in chosen:
            length = min(s + run, n) - s
            if pos + length - 1 < len(seam) + 1:
                seam[pos : pos + length - 1] = base_consecutive[s : s + length - 1]
            pos += length
        try:
            replicate = fit(sums.take(index), prior, seam)
        except (ValueError, np.linalg.LinAlgError):
            continue
        draws.append(flatten(replicate.params))
        if progress is not None:
            progress(i + 1)
    return draws


def bootstrap(sums: SpanSums, prior: MarketParams, replicates: int, seed: int) -> dict[str, tuple[float, float]]:
    """95 % intervals of every parameter: the 2.5 and 97.5 percentiles of ``bootstrap_draws``."""
    draws = bootstrap_draws(sums, prior, replicates, seed)
    out = {}
    for k in draws[0] if draws else ():
        values = [d[k] for d in draws]
        out[k] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    return out


def flatten(params: MarketParams) -> dict[str, float]:
    return {f"{section}.{key}": value for section, table in params.as_dict().items() for key, value in table.items()}


def moves_per_s(mids: Iterable[tuple[float, float]], step_s: float = 0.1) -> float | None:
    """How often Binance's mid moves: from (time s, mid) samples, the share of ``step_s`` steps in which it
    changed, as a Poisson rate (None with fewer than 100 steps)."""
    times: list[float] = []
    values: list[float] = []
    for when, mid in mids:
        times.append(when)
        values.append(mid)
    if len(times) < 2:
        return None
    t = np.asarray(times)
    v = np.asarray(values)
    grid = np.arange(t[0], t[-1], step_s)
    if len(grid) < 100:
        return None
    at = v[np.searchsorted(t, grid, side="right") - 1]
    changed = float(np.mean(np.diff(at) != 0))
    return -math.log(max(1.0 - changed, 1e-9)) / step_s
