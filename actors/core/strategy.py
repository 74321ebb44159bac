"""Premium-deviation strategy: trade the premium's deviation from its moving baseline.

- The baseline is a time-aware exponential moving average of the premium (half-life in seconds).
- Open when ``premium - baseline`` reaches ``entry_bps`` in absolute value: if the KRW venue is rich
  (deviation >= entry) sell there and buy on the USDT venue ("sell_krw"); if it is cheap, the
  reverse ("buy_krw").
- Close when the premium has moved ``tp_bps`` in the trade's favour since entry ("take_profit"),
  or after ``max_hold_s`` ("max_hold").
"""

from __future__ import annotations

import math

import attrs

SELL_KRW, BUY_KRW = "sell_krw", "buy_krw"


@attrs.frozen
class StrategyParams:
    entry_bps: float
    tp_bps: float
    order_qty_btc: float
    baseline_halflife_s: float = 30.0
    warmup_s: float = 5.0
    max_hold_s: float = 60.0
    max_book_age_s: float = 5.0


@attrs.define
class Baseline:
    halflife_s: float
    value: float | None = None
    first_at: float | None = None
    _last_at: float | None = None

    def update(self, x: float, now: float) -> float:
        if self.value is None or self._last_at is None:
            self.value, self.first_at = x, now
        else:
            dt = max(now - self._last_at, 0.0)
            alpha = 1.0 - math.exp(-dt * math.log(2) / self.halflife_s)
            self.value += alpha * (x - self.value)
        self._last_at = now
        return self.value


@attrs.frozen
class Open:
    direction: str
    deviation_bps: float


@attrs.frozen
class Close:
    reason: str
    captured_bps: float


def entry_signal(deviation_bps: float, entry_bps: float) -> Open | None:
    if deviation_bps >= entry_bps:
        return Open(SELL_KRW, deviation_bps)
    if deviation_bps <= -entry_bps:
        return Open(BUY_KRW, deviation_bps)
    return None


def exit_signal(direction: str, entry_premium_bps: float, premium_bps: float, held_s: float,
                params: StrategyParams) -> Close | None:
    captured = entry_premium_bps - premium_bps if direction == SELL_KRW else premium_bps - entry_premium_bps
    if captured >= params.tp_bps:
        return Close("take_profit", captured)
    if held_s >= params.max_hold_s:
        return Close("max_hold", captured)
    return None
