"""The market model checked out of sample: fitted on one half of the real data, measured against the other.

``python -m bench.market_holdout [--market FILE] [--recording FILE] [--seeds 1 2 3]`` splits the shared
1-minute file's runs at the middle run (2024-08-24..2024-11-23 and 2024-11-24..2025-02-23), fits the model
on each half as ``python -m actors.calibrate --market`` does (no bootstrap), runs each fit over the other
half's layout for every seed and prints, per realism statistic, the other half's real figure, the fitting
half's, and the model's on each seed; then the parameters fitted on each half side by side. Needs
``../shared`` (docs/simulator.md, "The fit"). USDT/KRW's daily volatility is not fitted here (the prior's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attrs

from actors.core import realism
from actors.sim.market_model import MarketParams
from actors.tools import market_data, market_fit
from actors.tools.calibrate_market import STARTING_POINT, simulate_layout

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MARKET = SHARED / "market" / "upbit_binance_btc_1m_2024-08-24_2025-02-23.csv.gz"
RECORDING = SHARED / "recorded" / "hftbacktest" / "btcusdt_20240808.gz"


def halves(spans: list[market_fit.Span]) -> dict[str, list[market_fit.Span]]:
    """The runs before the middle run and from it on."""
    middle = spans[len(spans) // 2].start_min
    return {
        "first half": [s for s in spans if s.start_min < middle],
        "second half": [s for s in spans if s.start_min >= middle],
    }


def fit(spans: list[market_fit.Span], moves_per_s: float | None) -> MarketParams:
    params = market_fit.fit(market_fit.SpanSums.of(spans), STARTING_POINT, start=STARTING_POINT).params
    if moves_per_s is None:
        return params
    return attrs.evolve(params, binance=attrs.evolve(params.binance, moves_per_s=moves_per_s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.market_holdout", description=__doc__.split("\n")[0])
    parser.add_argument("--market", default=str(MARKET), help="the shared 1-minute file (default: %(default)s)")
    parser.add_argument("--recording", default=str(RECORDING), help="Binance's sub-second moves (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="model seeds (default: 1 2 3)")
    args = parser.parse_args(argv)
    try:
        data = market_data.read([args.market, args.recording])
    except market_data.MarketDataError as exc:
        print(f"market_holdout: {exc}", file=sys.stderr)
        return 2
    parts = halves([s for s in data.spans if s.stretch.binance is not None])
    fits = {name: fit(spans, data.binance_moves_per_s) for name, spans in parts.items()}
    real = {name: realism.measure([s.stretch for s in spans]) for name, spans in parts.items()}
    for fitted_on, checked_on in (("first half", "second half"), ("second half", "first half")):
        minutes = sum(len(s.stretch) for s in parts[fitted_on])
        print(f"\nfitted on the {fitted_on} ({minutes:,} minutes), checked on the {checked_on}:")
        seeds = " ".join(map(str, args.seeds))
        print(f"{'statistic':40} {'real, checked':>13} {'real, fitted':>13}  model, seeds {seeds}")
        runs = [
            realism.measure([s.stretch for s in simulate_layout(fits[fitted_on], parts[checked_on], seed)])
            for seed in args.seeds
        ]
        for key, value in real[checked_on].items():
            model = " ".join(f"{run[key]:8.3f}" if key in run else f"{'-':>8}" for run in runs)
            print(f"{key:40} {value:13.3f} {real[fitted_on][key]:13.3f}  {model}")
    first, second = (market_fit.flatten(p) for p in fits.values())
    print(f"\n{'parameter':40} {'first half':>12} {'second half':>12}")
    for key in first:
        print(f"{key:40} {first[key]:12.4g} {second[key]:12.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
