"""Fitting ``MarketParams`` to 1-minute closes of both venues (``python -m actors.calibrate --market``).

A method of moments: what the data show (``actors.tools.market_moments``: sums over ``Span``s, runs of
consecutive minutes, so a bootstrap that resamples runs of consecutive spans costs a few additions per
replicate) against the model's value of the same moments, in closed form (``actors.tools.model_moments``).

Stage one fits Binance, stage two the premium and Upbit (nine parameters, least squares on about 25
moments with the tolerance of each, ``scipy.optimize.least_squares``). 95 % intervals are the 2.5 and 97.5
percentiles of refits on bootstrap replicates. What the data cannot show (how often Binance's price moves
within a second, from a recording; the slow processes, without several spans hours apart; USDT/KRW's
volatility, without FX that changes) is taken from a prior model and said so.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import attrs
import numpy as np
import numpy.typing as npt
from scipy import optimize

from actors.sim.market_model import BinanceParams, MarketParams
from actors.tools.market_moments import HORIZONS, MIN_GAP_FOR_SLOW_MIN, Array, Moments, SpanSums, moments
from actors.tools.model_moments import jump_moments, model_moments, vol_moments


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
        kurt, tails = jump_moments(lam, w)
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
            return vol_moments(1.0, math.exp(log_t), data.block_n, data.block_gap)[1] - data.vol_acf

        lo, hi = math.log(10.0), math.log(1e6)
        if acf_gap(lo) < 0 < acf_gap(hi):
            reversion = math.exp(optimize.brentq(acf_gap, lo, hi))
            per_unit = vol_moments(1.0, reversion, data.block_n, data.block_gap)[0]
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
