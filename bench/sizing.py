"""What depth-aware sizing adds to an entry decision: ``python -m bench.sizing``.

Books shaped like d85_x's (Upbit KRW-BTC: 30 levels of about 0.07 BTC; Binance BTCUSDT: the view's 20
levels of about 0.24 BTC, 3.5 % of the 0.01 ticks occupied), a premium that clears the entry threshold,
and the trader's own sizing call (``Trader._size``: the reachable levels of both books, the caps, the
one-pass search) timed with ``sizing = "depth"`` against ``"fixed"`` (which returns the configured size).
The difference is what sizing adds to a decision that opens a trade; decisions that do not open one
never size. Prints microseconds per call (median of several runs) as JSON.
"""

from __future__ import annotations

import json
import random
import statistics
import time

from actors.core.book import BookView
from actors.core.execution import ExecutionParams
from actors.core.fills import Fees, SimpleFillModel
from actors.core.market import MarketState
from actors.core.portfolio import Portfolio
from actors.core.strategy import StrategyParams
from actors.core.trader import Trader
from actors.core.vocabulary import Direction

FX = 1380.0


def _view(rng: random.Random, premium_bps: float):
    usdt_mid = 60_000.0
    krw_mid = usdt_mid * FX * (1 + premium_bps / 1e4)

    def side(best: float, tick: float, sign: int, n: int, size: float, occupancy: float):
        levels, price = [], best
        while len(levels) < n:
            if rng.random() < occupancy:
                levels.append((round(price, 2), size * rng.lognormvariate(0, 0.5)))
            price += sign * tick
        return tuple(levels)

    state = MarketState(("upbit", "KRW-BTC"), ("binance", "BTCUSDT"), ("upbit", "KRW-USDT"))
    state.update(
        BookView(
            "upbit",
            "KRW-BTC",
            side(krw_mid - 500, 1000, -1, 30, 0.07, 0.8),
            side(krw_mid + 500, 1000, 1, 30, 0.07, 0.8),
            0.0,
        )
    )
    state.update(
        BookView(
            "binance",
            "BTCUSDT",
            side(usdt_mid - 0.005, 0.01, -1, 20, 0.24, 0.035),
            side(usdt_mid + 0.005, 0.01, 1, 20, 0.24, 0.035),
            0.0,
        )
    )
    state.update(BookView("upbit", "KRW-USDT", ((FX - 0.5, 1e6),), ((FX + 0.5, 1e6),), 0.0))
    return state.view(0.0)


def _trader(sizing: str) -> Trader:
    params = StrategyParams(
        10.0, 12.0, 0.01, sizing=sizing, max_order_qty_btc=2.0, min_order_qty_btc=0.001, max_depth_share=0.5
    )
    portfolio = Portfolio.of("upbit", 2e9, 10.0, "binance", 1.5e6, 10.0)
    return Trader(params, "bench", 0.0, portfolio, SimpleFillModel(), ExecutionParams(fees=Fees(5.0, 10.0)))


def per_call_us(sizing: str, calls: int = 2000, repeats: int = 7) -> float:
    rng = random.Random(1)
    views = [_view(rng, 40.0) for _ in range(50)]
    trader = _trader(sizing)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(calls):
            trader._size(views[i % len(views)], Direction.SELL_KRW, 10.0)
        runs.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(runs)


def measure() -> dict[str, float]:
    fixed, depth = per_call_us("fixed"), per_call_us("depth")
    return {"fixed_us": round(fixed, 2), "depth_us": round(depth, 2), "added_us": round(depth - fixed, 2)}


if __name__ == "__main__":
    print(json.dumps(measure()))
