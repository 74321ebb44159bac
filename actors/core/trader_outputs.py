"""What a ``Trader`` hands out: fill events (one line of fill_events_<id>.jsonl each) and the frozen
snapshot of its statistics that the KPI file, the status line and the live view read."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Literal, Mapping

import attrs

from actors.core.kpi import Dispersion
from actors.core.vocabulary import Leg, LegRisk, Side, Venue, Zone


@attrs.frozen
class FillEvent:
    """One simulated fill of one leg; one line of fill_events_<id>.jsonl (docs/file-formats.md)."""

    t_s: float
    ts_utc: str
    session_id: str
    trade_id: int
    leg: Leg
    venue: Venue
    symbol: str
    side: Side
    order_qty: float
    filled_qty: float
    fill_ratio: float
    available_volume: float
    limit_price: float
    avg_price: float | None
    best_price: float
    slippage_bps: float
    fee: float
    fee_ccy: str
    quote_ccy: str
    zone: str
    entry_bps: float
    tp_bps: float
    fill_model: str
    l2_source: str
    decided_t_s: float
    latency_ms: float
    book_age_ms: float
    fx_krw_per_usdt: float
    fx_source: str
    fx_age_ms: float
    premium_bps: float
    exec_premium_bps: float | None
    deviation_bps: float
    exit_reason: str | None = None
    trade_pnl_usdt: float | None = None
    trade_pnl_krw: float | None = None
    qty_planned: float = 0.0  # the parent trade's planned size (entry legs), or the leg's own size
    predicted_slippage_bps: float | None = None  # the walk of the book at the decision, for this leg's size
    levels_walked: int = 0  # levels that walk took
    predicted_depth_left_btc: float | None = None  # depth within the limit that walk left on the book
    parent_id: int = 0  # the trade this leg belongs to (= trade_id)
    child: int = 0  # the child order (1, 2, ...) of a split entry; 0 for exits
    decision_price: float | None = None  # the best price of the book the leg was decided on

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class ZoneFillRatio:
    """The fill ratio of entry and exit legs of one zone on one side: measured, and with the calibrated fill
    model its prediction (the calibration's mean and 95 % interval)."""

    n: int
    mean: float | None  # None before the first leg
    predicted_mean: float | None = None
    predicted_ci95: tuple[float, float] | None = None

    @property
    def within_ci95(self) -> bool | None:
        """Whether the measured mean lies in the predicted interval; None without both."""
        if self.mean is None or self.predicted_ci95 is None:
            return None
        lo, hi = self.predicted_ci95
        return lo - 1e-9 <= self.mean <= hi + 1e-9


@attrs.frozen
class TraderStatistics:
    """What a ``Trader`` has done, as of ``Trader.statistics()``: copies in read-only mappings, so a reader
    never sees the trader change under it and cannot change it. Zones are in numeric order."""

    entries: int  # trades opened
    exits: int  # trades closed
    open_trades: int  # held, or with legs in flight
    legs_in_flight: int
    fills_by_side: Mapping[Side, int]  # both sides, BUY first
    fills_by_zone: Mapping[Zone, int]
    refusals: Mapping[str, int]  # decisions not taken, by reason (sorted)
    available_volume: Mapping[Side, Dispersion]
    fill_ratios: Mapping[Zone, Mapping[Side, ZoneFillRatio]]
    realized_pnl_usdt: float
    realized_pnl_krw: float
    unrealized_pnl_usdt: float  # open trades marked to mid
    fees_paid: Mapping[tuple[str, str], float]  # (venue, currency), sorted
    balances: Mapping[str, Mapping[str, float]]  # venue -> asset -> amount
    initial_balances: Mapping[str, Mapping[str, float]]
    carried_imbalance_btc: float
    risk_stopped: str | None  # why new entries stopped, or None
    baseline_bps: float | None  # the strategy's baseline of the mid premium
    l2_source: str
    fill_model: str
    latency_ms: float
    latency_jitter_ms: float
    leg_risk: LegRisk
    sizing: Literal["fixed", "depth"] = "fixed"
    children_sent: int = 0  # child orders (a trade that is not split sends one)
    parents_stopped: int = 0  # split trades stopped before their last child because the premium closed
    planned_qty_btc: float = 0.0  # the trades' planned sizes, summed
    entry_filled_btc: float = 0.0  # entry legs' filled quantity, summed over both legs

    @property
    def fill_events(self) -> int:
        return sum(self.fills_by_side.values())


def balances_snapshot(balances: dict[str, dict[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({venue: MappingProxyType(dict(assets)) for venue, assets in balances.items()})
