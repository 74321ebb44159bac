"""What 1-minute closes of both venues show: the moments ``actors.tools.market_fit`` matches.

The data are ``Span``s: runs of consecutive minutes (``realism.Stretch``) with their start time, so statistics
never cross a gap and the slow processes are seen across gaps. Every moment is a sum over spans
(``SpanSums``), so a bootstrap that resamples runs of consecutive spans costs a few additions per replicate.
Binance: its mean variance per minute; the kurtosis and tails of returns divided by their own stretch's
volatility; the spread and the autocorrelation of the stretches' log volatility (the spans' start times give
the distance). The premium: the variance of its changes over every horizon, their autocorrelation, the
lead-lag covariances with Binance and the share of a Binance move Upbit follows.
"""

from __future__ import annotations

import math
from typing import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from actors.core import realism

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
