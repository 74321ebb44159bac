"""How much a market behaves like the real Upbit/Binance market: the statistics of its 1-minute closes.

The same functions measure the real data (``../shared/fixtures/market``: blocks of 200 consecutive minutes),
a session's own premium series and a long run of the market model, so the three are compared on one
definition (docs/simulator.md, "Realism"). Pure: numpy arrays in, numbers out.

A market is given as ``Stretch``es: runs of consecutive minutes (a statistic never spans two of them).
Each holds the premium in bps (on the USDT basis: Upbit KRW-BTC against Binance BTCUSDT times USDT/KRW)
and, where known, Binance's and Upbit's closes (``binance``: USDT, ``upbit``: KRW).

Statistics (``STATISTICS`` names them; ``measure`` computes the ones the data is long enough for):

- the RMS change of the premium over 1, 5, 15, 60 and 180 minutes (within stretches, overlapping);
- the lag-1 autocorrelation of 1-minute premium changes (the fast part that reverts within a minute);
- the lag-1 autocorrelation of the premium level, each window of at most ``WINDOW_MIN`` minutes demeaned
  (how slowly the premium wanders);
- Binance's 1-minute log-return std (bps) and kurtosis (3 for a normal distribution);
- Upbit's 1-minute log-return std, and the correlation of Upbit's returns with Binance's in the same
  minute and one minute later (Upbit follows Binance).

A horizon is measured only where a stretch holds at least ``MIN_SPAN`` times that many minutes; the
correlations and moments need ``MIN_MINUTES`` minutes in all.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import attrs
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

HORIZONS_MIN = (1, 5, 15, 60, 180)
WINDOW_MIN = 200  # the level autocorrelation demeans windows of at most this many minutes (the real blocks')
MIN_SPAN = 3  # a horizon of h minutes needs a stretch of at least 3 h minutes
MIN_MINUTES = 30  # fewer minutes in all: no correlation or moment is measured


@attrs.frozen
class Statistic:
    key: str
    label: str
    kind: str  # "ratio": compared as a ratio (within a factor); "corr": compared as a difference


def _rms_key(h: int) -> str:
    return f"premium_rms_change_{h}m_bps"


STATISTICS: tuple[Statistic, ...] = (
    *(Statistic(_rms_key(h), f"RMS premium change over {h} min (bps)", "ratio") for h in HORIZONS_MIN),
    Statistic("premium_change_acf1", "lag-1 autocorrelation of 1-minute premium changes", "corr"),
    Statistic(
        "premium_level_acf1", f"premium level autocorrelation, 1 min apart (windows <= {WINDOW_MIN} min)", "corr"
    ),
    Statistic("binance_return_std_bps", "Binance 1-minute return std (bps)", "ratio"),
    Statistic("binance_return_kurtosis", "Binance 1-minute return kurtosis", "ratio"),
    Statistic("upbit_return_std_bps", "Upbit 1-minute return std (bps)", "ratio"),
    Statistic("upbit_binance_corr", "correlation of Upbit and Binance 1-minute returns, same minute", "corr"),
    Statistic("upbit_follow_corr", "correlation of Upbit's 1-minute return with Binance's a minute before", "corr"),
)
BY_KEY: Mapping[str, Statistic] = {s.key: s for s in STATISTICS}
RATIO_TOLERANCE = 1.5  # a "ratio" statistic agrees within this factor
CORR_TOLERANCE = 0.15  # a "corr" statistic agrees within this difference


@attrs.frozen
class Stretch:
    """Consecutive 1-minute closes; ``binance`` and ``upbit`` may be absent (a premium series alone)."""

    premium_bps: Array
    binance: Array | None = None
    upbit: Array | None = None

    def __len__(self) -> int:
        return len(self.premium_bps)


def stretches_from_samples(
    t_s: Sequence[float],
    premium_bps: Sequence[float],
    binance: Sequence[float] | None = None,
    upbit: Sequence[float] | None = None,
) -> list[Stretch]:
    """1-minute closes of an irregular series (times in seconds, ascending): in each minute ``[60 k, 60 k +
    60)`` the last sample; a minute without a sample (or with a missing value) ends the stretch."""
    t = np.asarray(t_s, dtype=np.float64)
    columns = [np.asarray(c, dtype=np.float64) for c in (premium_bps, binance, upbit) if c is not None]
    if len(t) == 0:
        return []
    minute = np.floor(t / 60.0).astype(np.int64)
    last = np.flatnonzero(np.diff(minute, append=minute[-1] + 1))  # the last sample of each minute present
    minutes = minute[last]
    closes = [c[last] for c in columns]
    valid = np.all([np.isfinite(c) for c in closes], axis=0)
    if binance is not None:
        valid &= closes[1] > 0
    if upbit is not None:
        valid &= closes[-1] > 0
    out: list[Stretch] = []
    start = 0
    for i in range(1, len(minutes) + 1):
        if i == len(minutes) or minutes[i] != minutes[i - 1] + 1 or not valid[i] or not valid[i - 1]:
            run = slice(start, i)
            if valid[start:i].all() and i - start >= 2:
                out.append(_stretch([c[run] for c in closes], binance is not None, upbit is not None))
            start = i
    return out


def _stretch(columns: list[Array], has_binance: bool, has_upbit: bool) -> Stretch:
    premium, rest = columns[0], columns[1:]
    binance = rest.pop(0) if has_binance else None
    upbit = rest.pop(0) if has_upbit else None
    return Stretch(premium, binance, upbit)


def _changes(stretches: Iterable[Stretch], h: int) -> Array:
    parts = [s.premium_bps[h:] - s.premium_bps[:-h] for s in stretches if len(s) > h]
    return np.concatenate(parts) if parts else np.empty(0)


def _log_returns(series: Iterable[Array]) -> list[Array]:
    return [np.diff(np.log(x)) * 1e4 for x in series if len(x) >= 2]


def _corr(a: Array, b: Array) -> float | None:
    if len(a) < MIN_MINUTES or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _lag_pairs(parts: Sequence[tuple[Array, Array]], lag: int) -> tuple[Array, Array]:
    """(x[t], y[t + lag]) over every part, never across two."""
    xs = [x[: len(x) - lag] for x, y in parts if len(x) > lag]
    ys = [y[lag:] for x, y in parts if len(x) > lag]
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs), np.concatenate(ys)


def _windows(x: Array) -> list[Array]:
    """``x`` cut into windows of at most ``WINDOW_MIN``, as even as possible."""
    n = max(1, math.ceil(len(x) / WINDOW_MIN))
    return [w for w in np.array_split(x, n) if len(w) >= 2]


def measure(stretches: Sequence[Stretch]) -> dict[str, float]:
    """Every statistic the stretches are long enough for (``STATISTICS`` keys; missing: not measurable)."""
    out: dict[str, float] = {}
    longest = max((len(s) for s in stretches), default=0)
    minutes = sum(len(s) for s in stretches)
    for h in HORIZONS_MIN:
        if longest >= MIN_SPAN * h:
            d = _changes([s for s in stretches if len(s) >= MIN_SPAN * h], h)
            out[_rms_key(h)] = float(np.sqrt(np.mean(d * d)))
    if minutes < MIN_MINUTES:
        return out
    steps = [np.diff(s.premium_bps) for s in stretches]
    a, b = _lag_pairs([(d, d) for d in steps], 1)
    _put(out, "premium_change_acf1", _corr(a, b))
    demeaned = [w - w.mean() for s in stretches for w in _windows(s.premium_bps)]
    x, y = _lag_pairs([(w, w) for w in demeaned], 1)
    if len(x) >= MIN_MINUTES and (x * x).sum() > 0:
        out["premium_level_acf1"] = float((x * y).sum() / math.sqrt((x * x).sum() * (y * y).sum()))
    binance = _log_returns(s.binance for s in stretches if s.binance is not None)
    upbit = _log_returns(s.upbit for s in stretches if s.upbit is not None)
    if binance and sum(len(r) for r in binance) >= MIN_MINUTES:
        r = np.concatenate(binance)
        r = r - r.mean()
        out["binance_return_std_bps"] = float(r.std())
        if r.var() > 0:
            out["binance_return_kurtosis"] = float(np.mean(r**4) / r.var() ** 2)
    if upbit and sum(len(r) for r in upbit) >= MIN_MINUTES:
        out["upbit_return_std_bps"] = float(np.concatenate(upbit).std())
    both = [(rb, ru) for rb, ru in _paired_returns(stretches)]
    if both:
        _put(out, "upbit_binance_corr", _corr(*_lag_pairs(both, 0)))
        _put(out, "upbit_follow_corr", _corr(*_lag_pairs(both, 1)))
    return out


def _paired_returns(stretches: Sequence[Stretch]) -> list[tuple[Array, Array]]:
    return [
        (np.diff(np.log(s.binance)) * 1e4, np.diff(np.log(s.upbit)) * 1e4)
        for s in stretches
        if s.binance is not None and s.upbit is not None and len(s) >= 2
    ]


def _put(out: dict[str, float], key: str, value: float | None) -> None:
    if value is not None and math.isfinite(value):
        out[key] = value


@attrs.frozen
class Reference:
    """What a statistic is in the real data: over the whole data (``value``) and its spread over windows
    of the data as long as a session (10th, 50th and 90th percentile over windows of ``window_min``)."""

    value: float
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None


def window_spread(stretches: Sequence[Stretch], key: str, window_min: int) -> tuple[float, float, float] | None:
    """10th, 50th and 90th percentile of statistic ``key`` measured on each window of ``window_min``
    consecutive minutes (each stretch cut into as many whole windows as it holds); None if fewer than 10."""
    values = []
    for s in stretches:
        for start in range(0, len(s) - window_min + 1, window_min):
            part = slice(start, start + window_min)
            window = Stretch(
                s.premium_bps[part],
                None if s.binance is None else s.binance[part],
                None if s.upbit is None else s.upbit[part],
            )
            value = measure([window]).get(key)
            if value is not None:
                values.append(value)
    if len(values) < 10:
        return None
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return float(p10), float(p50), float(p90)


@attrs.frozen
class Verdict:
    key: str
    measured: float
    reference: Reference
    agrees: bool  # within RATIO_TOLERANCE (a factor) or CORR_TOLERANCE (a difference) of the reference value
    in_window_range: bool | None  # within the real windows' 10-90 % range (None: no range known)


def agrees(key: str, measured: float, reference: float) -> bool:
    if BY_KEY[key].kind == "corr":
        return abs(measured - reference) <= CORR_TOLERANCE
    if reference <= 0 or measured <= 0:
        return False
    return 1 / RATIO_TOLERANCE <= measured / reference <= RATIO_TOLERANCE


def compare(measured: Mapping[str, float], references: Mapping[str, Reference]) -> list[Verdict]:
    """A verdict per statistic measured that has a reference, in ``STATISTICS`` order."""
    out = []
    for stat in STATISTICS:
        value, ref = measured.get(stat.key), references.get(stat.key)
        if value is None or ref is None:
            continue
        spread = None if ref.p10 is None or ref.p90 is None else ref.p10 <= value <= ref.p90
        out.append(Verdict(stat.key, value, ref, agrees(stat.key, value, ref.value), spread))
    return out
