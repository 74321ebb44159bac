"""The session's context (everything its actors count, held by the session frame), the KPI document
built from it, the status line and the premium series."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import attrs

from actors.core.acceptance import Thresholds, criteria
from actors.core.fills import BUY, SELL
from actors.core.kpi import FeedStats, LatencyHistogram
from actors.core.market import MarketState
from actors.core.trader import Trader
from actors.records.files import DataWriteError
from supervision import ChildStats


@attrs.define
class SessionContext:
    """Everything the session's actors count, held by the session frame (survives restarts)."""

    session_id: str
    market: str
    requested_duration_s: float
    trader: Trader
    market_state: MarketState
    feeds: dict[str, FeedStats]
    children: dict[str, ChildStats]
    opened_at: float                 # trio time when the session began starting up
    trading_since: float | None = None  # trio time when both feeds were ready
    ended_at: float | None = None
    fill_events_written: int = 0
    fatal: list[str] = attrs.field(factory=list)
    chaos_kills: Counter = attrs.field(factory=Counter)
    chaos_every_s: float = 0.0
    thresholds: Thresholds = attrs.field(factory=Thresholds)
    status: str = "running"          # running | completed | interrupted | failed
    replay: dict[str, Any] | None = None  # market = "replay": what was replayed (build_kpi copies it)
    wire_to_decision: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    wire_to_fill_written: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    disk_error: str | None = None    # the first data write that failed; the session stops on it
    on_disk_error: Callable[[str], None] | None = None  # set by the session: log it, stop the session

    def write_failed(self, error: DataWriteError) -> None:
        """A data file could not be written: no new trades from now on (no fill we could not record), the
        session stops and fails. Reported once; later failures (the disk is still full) add nothing."""
        if self.disk_error is not None:
            return
        self.disk_error = str(error)
        self.trader.stop_entries(f"disk: {error}")
        self.fatal.append(f"disk: {error}; no new trades were opened after it")
        if self.on_disk_error is not None:
            self.on_disk_error(self.disk_error)

    def duration_s(self, now: float) -> float:
        if self.trading_since is None:
            return 0.0
        return (self.ended_at if self.ended_at is not None else now) - self.trading_since


FEED_ACTORS = {"upbit": "feed:upbit", "binance": "feed:binance"}


def build_kpi(ctx: SessionContext, now: float, *, final: bool) -> dict[str, Any]:
    trader = ctx.trader
    view = ctx.market_state.view(now)
    feeds = {}
    for venue, stats in ctx.feeds.items():
        child = ctx.children.get(FEED_ACTORS.get(venue, ""))
        book = view.krw_leg if venue == "upbit" else view.usdt_leg
        feeds[venue] = {
            **stats.as_dict(ctx.ended_at if ctx.ended_at is not None else now),  # health while trading
            "reconnects": child.restarts if child else 0,
            "reconnect_causes": dict(sorted(child.causes.items())) if child else {},
            "downtime_s": round(child.current_downtime_s(now), 6) if child else 0.0,
            "book_age_s": None if book is None else round(view.book_age_s(book), 6),
        }
    kpi = {
        "session_id": ctx.session_id,
        "final": final,
        "status": ctx.status,
        "market": ctx.market,
        "requested_duration_s": ctx.requested_duration_s,
        "duration_s": round(ctx.duration_s(now), 6),
        "startup_s": None if ctx.trading_since is None else round(ctx.trading_since - ctx.opened_at, 6),
        "entry_trades": trader.entries,
        "closed_trades": trader.exits,
        "open_trades": len(trader.trades),
        "fill_events": sum(trader.fills_by_side.values()),
        "fill_events_written": ctx.fill_events_written,
        "disk_error": ctx.disk_error,
        "fill_events_by_side": {BUY: trader.fills_by_side[BUY], SELL: trader.fills_by_side[SELL]},
        "available_volume": {BUY: trader.available_volume[BUY].as_dict(),
                             SELL: trader.available_volume[SELL].as_dict()},
        "fill_events_by_zone": {zone.label: n for zone, n in sorted(trader.fills_by_zone.items())},
        "fill_ratio_by_zone": _zone_ratios(trader),
        "pnl_usdt": round(trader.realized_pnl_usdt, 8),
        "pnl_krw": round(trader.realized_pnl_krw, 4),
        "unrealized_pnl_usdt": round(trader.unrealized_pnl_usdt(), 8),
        "pnl_note": "realized over closed trades, after fees; open trades marked to mid, not closed",
        "fees_paid": {f"{venue}:{ccy}": round(amount, 10) for (venue, ccy), amount in
                      sorted(trader.portfolio.fees_paid.items())},
        "balances": trader.portfolio.balances,
        "initial_balances": trader.portfolio.initial,
        "carried_imbalance_btc": trader.carried_imbalance_btc,
        "legs_in_flight": len(trader.pending),
        "risk_stopped": trader.risk_stopped,
        "refusals": dict(sorted(trader.refusals.items())),
        "l2_source": trader.l2_source,
        "fill_model": trader.fill_model.name,
        "latency_ms": {"fixed": trader.execution.latency_ms, "jitter": trader.execution.latency_jitter_ms},
        "leg_risk": trader.execution.leg_risk,
        "premium_bps": view.premium_bps,
        "fx": None if view.fx is None else {"krw_per_usdt": view.fx.krw_per_usdt, "source": view.fx.source},
        "feeds": feeds,
        "reconnects": {venue: f["reconnects"] for venue, f in feeds.items()},
        "actors": {name: child.as_dict(now) for name, child in ctx.children.items()},
        "chaos": {"kill_every_s": ctx.chaos_every_s, "kills": sum(ctx.chaos_kills.values()),
                  "kills_by_actor": dict(sorted(ctx.chaos_kills.items()))},
        "fatal_exceptions": len(ctx.fatal),
        "fatal_errors": list(ctx.fatal),
    }
    kpi["pipeline_latency_ms"] = {"wire_to_decision": ctx.wire_to_decision.as_dict_ms(),
                                  "wire_to_fill_written": ctx.wire_to_fill_written.as_dict_ms()}
    if ctx.replay is not None:
        kpi["replay"] = ctx.replay
    kpi["acceptance_thresholds"] = attrs.asdict(ctx.thresholds)
    kpi["acceptance"] = [attrs.asdict(c) for c in criteria(kpi, ctx.thresholds)]
    return kpi


def _zone_ratios(trader: Trader) -> dict[str, Any]:
    """Measured mean fill ratio per zone and side, with the calibration's prediction when there is one."""
    calibration = getattr(trader.fill_model, "calibration", None)
    out: dict[str, Any] = {}
    for zone, sides in sorted(trader.zone_ratios.items()):
        out[zone.label] = {}
        for side, ratios in sides.items():
            row: dict[str, Any] = {"n": ratios.count, "mean": ratios.mean if ratios.count else None}
            if calibration is not None:
                predicted = calibration.lookup(zone, side)
                row["predicted"] = predicted.mean
                row["predicted_ci95"] = list(predicted.ci95)
                lo, hi = predicted.ci95
                row["within_ci95"] = None if row["mean"] is None else lo - 1e-9 <= row["mean"] <= hi + 1e-9
            out[zone.label][side] = row
    return out


def premium_sample(ctx: SessionContext, now: float) -> str | None:
    """One line of premium_<id>.csv: t_s, premium_bps, baseline_bps (None before both books)."""
    view = ctx.market_state.view(now)
    baseline = ctx.trader.baseline.value
    if view.premium_bps is None or baseline is None:
        return None
    return f"{now - ctx.opened_at:.3f},{view.premium_bps:.4f},{baseline:.4f}\n"


def status_line(ctx: SessionContext, now: float) -> str:
    view = ctx.market_state.view(now)
    parts = [f"t={ctx.duration_s(now):7.1f}s"]
    for venue, stats in ctx.feeds.items():
        book = view.krw_leg if venue == "upbit" else view.usdt_leg
        age = "-" if book is None else f"{view.book_age_s(book):.2f}s"
        child = ctx.children.get(FEED_ACTORS.get(venue, ""))
        state = "up" if stats.connected else "DOWN"
        parts.append(f"{venue}:{state} msgs={stats.messages} age={age} rc={child.restarts if child else 0}")
    premium = "-" if view.premium_bps is None else f"{view.premium_bps:.1f}bps"
    trader = ctx.trader
    parts.append(f"premium={premium} trades={trader.entries} fills={sum(trader.fills_by_side.values())} "
                 f"pnl={trader.realized_pnl_usdt:+.4f}USDT")
    return " | ".join(parts)
