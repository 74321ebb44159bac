"""``python -m actors.calibrate --market FILE... --out PATH``: fit the simulated market to real prices.

Reads 1-minute closes of both venues (``actors.tools.market_data``), fits ``MarketParams`` by the method of
moments (``actors.tools.market_fit``) with bootstrap 95 % intervals, checks the fit by running the model
over the data's own layout (as many runs of as many minutes, as far apart) and measuring it the way the
data is measured (``actors.core.realism``), prints the data's statistics next to the model's, and writes
the model file: parameters, intervals, which parameters the data could not show (taken from ``--prior``),
the moments side by side and the data's statistics with their spread over 3-hour windows (the realism
reference a session is compared to).

Exit status 0; 2 for input it cannot use (one line on stderr naming the file and the problem).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np

from actors.core import realism
from actors.sim import market_file
from actors.sim.market_model import FORMAT, VERSION, FxParams, MarketParams, MarketProcess
from actors.tools import market_data, market_fit, market_moments

REFERENCE_WINDOW_MIN = 180
SHORTER_WINDOWS_MIN = (20, 60)  # the spreads a shorter session is compared with
CHECK_DT_S = 1.0  # the check run's step


def _utc(minutes: float) -> str:
    return datetime.fromtimestamp(minutes * 60, timezone.utc).strftime("%Y-%m-%d %H:%M")


def simulate_layout(
    params: MarketParams, spans: Sequence[market_moments.Span], seed: int, dt: float = CHECK_DT_S
) -> list[market_moments.Span]:
    """The model run over the data's layout: a run of the same length where each span is, gaps skipped in
    one exact step; sampled each minute like the data (closes)."""
    process = MarketProcess(params, dt, seed)
    per_min = int(round(60 / dt))
    out: list[market_moments.Span] = []
    clock = spans[0].start_min if spans else 0.0
    for span in spans:
        if span.start_min > clock:
            process.skip((span.start_min - clock) * 60)
        n = len(span.stretch)
        path = process.run(n * per_min)
        close = slice(per_min - 1, None, per_min)
        b, p, fx = path.binance[close], path.premium[close], path.fx[close]
        binance = 60_000.0 * np.exp(b / 1e4)
        upbit = binance * np.exp(p / 1e4) * 1_400.0 * np.exp(fx / 1e4)
        out.append(market_moments.Span(span.start_min, realism.Stretch(p.copy(), binance, upbit)))
        clock = span.start_min + n
    return out


def reference(spans: Sequence[market_moments.Span], sources: Sequence[str]) -> dict[str, Any]:
    stretches = [s.stretch for s in spans]
    measured = realism.measure(stretches)
    stats: dict[str, dict[str, float]] = {}
    for key, value in measured.items():
        entry = {"value": round(value, 6)}
        spread = realism.window_spread(stretches, key, REFERENCE_WINDOW_MIN)
        if spread is not None:
            entry.update(p10=round(spread[0], 6), p50=round(spread[1], 6), p90=round(spread[2], 6))
        stats[key] = entry
    windows: dict[str, dict[str, dict[str, float]]] = {}
    for length in SHORTER_WINDOWS_MIN:
        for key in measured:
            spread = realism.window_spread(stretches, key, length)
            if spread is not None:
                windows.setdefault(str(length), {})[key] = dict(
                    p10=round(spread[0], 6), p50=round(spread[1], 6), p90=round(spread[2], 6)
                )
    first, last = spans[0].start_min, spans[-1].start_min + len(spans[-1].stretch)
    return {
        "source": f"real Upbit KRW-BTC / Binance BTCUSDT 1-minute closes, {_utc(first)[:10]}..{_utc(last)[:10]} "
        f"({sum(len(s) for s in stretches):,} minutes)",
        "files": list(sources),
        "window_min": REFERENCE_WINDOW_MIN,
        "stats": stats,
        "windows": windows,
    }


def _moments_table(m: market_moments.Moments) -> dict[str, Any]:
    def clean(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return [clean(v) for v in x]
        return None if not math.isfinite(float(x)) else round(float(x), 6)

    return {f.name: clean(getattr(m, f.name)) for f in attrs.fields(market_moments.Moments)}


def _prior(path: str | None) -> tuple[MarketParams, str]:
    chosen = path or str(market_file.DEFAULT_PATH)
    if path is None and not Path(chosen).exists():
        return STARTING_POINT, "built-in starting values"
    try:
        shown = os.path.relpath(chosen) if not os.path.relpath(chosen).startswith("..") else chosen
        return market_file.read(chosen).params, shown
    except market_file.MarketModelError as exc:
        raise market_data.MarketDataError(f"--prior {chosen}: {exc}") from None


# Where the fit starts when no model file exists yet: an optimiser's starting point, not a model. Parameters
# the data cannot show are refused rather than taken from here (``_unfitted``).
STARTING_POINT = MarketParams.from_dict(
    {
        "binance": {
            "vol_bps_per_min": 6.0,
            "moves_per_s": 1.0,
            "vol_of_vol": 0.5,
            "vol_reversion_min": 600.0,
            "jumps_per_hour": 10.0,
            "jump_scale_bps": 5.0,
        },
        "upbit": {"lag_s": 10.0, "beta": 0.8, "noise_bps": 3.0, "noise_reversion_s": 10.0},
        "premium": {
            "mean_bps": 0.0,
            "slow_std_bps": 40.0,
            "slow_reversion_min": 600.0,
            "medium_std_bps": 5.0,
            "medium_reversion_min": 10.0,
            "vol_elasticity": 0.5,
            "slow_vol_elasticity": 0.5,
        },
        "fx": {"vol_bps_per_day": 50.0},
    }
)


def _line(label: str, data: float | None, model: float | None, verdict: str = "") -> str:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    return f"  {label:<72} {f(data):>10} {f(model):>10} {verdict}"


@attrs.frozen
class _Fitted:
    """The fit and what it rests on."""

    data: market_data.MarketData
    spans: list[market_moments.Span]  # the runs with Binance prices
    result: market_fit.Fit
    params: MarketParams  # the fit's, with what the data shows besides (Binance's moves, FX)
    fitted: set[str]
    unfitted: list[str]  # from the prior
    prior_name: str
    ci: dict[str, tuple[float, float]]


def _fit(args: argparse.Namespace) -> _Fitted:
    """Read, fit and bootstrap; MarketDataError (or ValueError) for input it cannot use."""
    data = market_data.read(args.files)
    if data.minutes < 120 or not any(s.stretch.binance is not None for s in data.spans):
        raise market_data.MarketDataError(
            f"{', '.join(args.files)}: {data.minutes} minutes with both venues' prices; the fit needs at least 120"
        )
    prior, prior_name = _prior(args.prior)
    spans = [s for s in data.spans if s.stretch.binance is not None]
    sums = market_moments.SpanSums.of(spans)
    result = market_fit.fit(sums, prior, start=STARTING_POINT)
    params = result.params
    fitted = set(result.fitted)
    if data.binance_moves_per_s is not None:
        params = attrs.evolve(params, binance=attrs.evolve(params.binance, moves_per_s=data.binance_moves_per_s))
        fitted.add("binance.moves_per_s")
    if len(data.fx_daily_bps) >= 10:
        params = attrs.evolve(params, fx=FxParams(float(np.std(data.fx_daily_bps))))
        fitted.add("fx.vol_bps_per_day")
    unfitted = sorted(set(market_fit.flatten(params)) - fitted)
    if unfitted and prior_name == "built-in starting values":
        raise market_data.MarketDataError(
            f"{', '.join(args.files)}: cannot show {', '.join(unfitted)} (see docs/simulator.md) and there is no "
            "model to take them from: give --prior MODEL or more data"
        )
    print(
        f"calibrate: fitted {len(fitted)} parameters on {data.minutes:,} minutes; "
        f"bootstrap {args.bootstrap} replicates",
        file=sys.stderr,
    )
    ci = market_fit.bootstrap(sums, params, args.bootstrap, args.seed) if args.bootstrap else {}
    return _Fitted(data, spans, result, params, fitted, unfitted, prior_name, ci)


def _document(args: argparse.Namespace, out: Path, f: _Fitted, model_stats: dict[str, float]) -> dict[str, Any]:
    """The model file's contents."""
    spans = f.spans
    first, last = spans[0].start_min, spans[-1].start_min + len(spans[-1].stretch)
    return {
        "kind": FORMAT,
        "version": VERSION,
        "name": args.name or out.stem,
        "fitted_on": {
            "summary": f"real Upbit/Binance 1-minute closes {_utc(first)[:10]}..{_utc(last)[:10]}",
            "sources": list(f.data.sources),
            "minutes": f.data.minutes,
            "runs": len(spans),
            "first_utc": _utc(first),
            "last_utc": _utc(last),
            "command": "python -m actors.calibrate --market " + " ".join(args.files) + f" --out {args.out}",
        },
        "params": f.params.as_dict(),
        "ci95": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in sorted(f.ci.items()) if k in f.result.fitted},
        "fitted": sorted(f.fitted),
        "from_prior": {"model": f.prior_name, "params": f.unfitted},
        "moments": {"data": _moments_table(f.result.data), "model": _moments_table(f.result.model)},
        "check": {
            "what": "the model run over the data's layout (seed %d, %g s steps) and measured as the data is"
            % (args.seed, CHECK_DT_S),
            "stats": {k: round(v, 6) for k, v in model_stats.items()},
        },
        "reference": reference(spans, f.data.sources),
    }


def _print_tables(f: _Fitted, data_stats: dict[str, float], model_stats: dict[str, float]) -> None:
    """The data's statistics next to the model's, then every parameter with its interval."""
    print(f"{'statistic (1-minute closes)':<74} {'data':>10} {'model':>10}")
    for stat in realism.STATISTICS:
        d, m = data_stats.get(stat.key), model_stats.get(stat.key)
        verdict = "" if d is None or m is None else ("ok" if realism.agrees(stat.key, m, d) else "DIFFERS")
        print(_line(stat.label, d, m, verdict))
    print(f"{'parameter':<40} {'value':>12}  95 % interval")
    for key, value in market_fit.flatten(f.params).items():
        lo_hi = f.ci.get(key)
        note = "" if key in f.fitted else f"  (from {f.prior_name})"
        interval = f"{lo_hi[0]:.4g} .. {lo_hi[1]:.4g}" if lo_hi and key in f.result.fitted else ""
        print(f"  {key:<38} {value:>12.5g}  {interval}{note}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        fitted = _fit(args)
    except (market_data.MarketDataError, ValueError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    check = simulate_layout(fitted.params, fitted.spans, args.seed)
    data_stats = realism.measure([s.stretch for s in fitted.spans])
    model_stats = realism.measure([s.stretch for s in check])
    document = _document(args, out, fitted, model_stats)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(document, indent=1) + "\n")
        tmp.replace(out)
    except OSError as exc:
        print(f"calibrate: {out}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        return 2
    _print_tables(fitted, data_stats, model_stats)
    print(f"wrote {out}")
    return 0
