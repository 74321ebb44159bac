"""The KPI document (``Kpi``, the type of kpi_<id>.json: docs/kpis.md) and ``build_kpi``, which assembles it
from what the session is (``SessionInfo``) and a ``Snapshot`` of its sources taken at one instant
(``actors.records.sources``): never from a live object.

``Kpi`` and its parts are frozen msgspec Structs: the field order is the file's, encoding is one call,
and a reader (the report, the sweep) decodes a file strictly into the same type (``decode_kpi``).
Fields that older files may lack have defaults, so those files still decode.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, Mapping, TypeVar

import attrs
import msgspec

from actors.conventions import feed_actor
from actors.core.acceptance import Criterion, Thresholds, criteria
from actors.core.fills import Lots
from actors.core.kpi import Dispersion, FeedStatistics, LatencyPercentiles, Spread
from actors.core.ledger import InventorySample, reconcile, unexplained_btc
from actors.core.trader_outputs import TraderStatistics, ZoneFillRatio
from actors.core.vocabulary import LegRisk, Side, Sizing
from actors.records.info import CalibrationInfo, SessionInfo, SessionStatus
from actors.records.pairs import PairsBlock, pairs_struct
from actors.records.realism import RealismKpi
from actors.records.sources import Progress, Snapshot
from actors.records.status import book_age_s
from actors.sim.replay import ReplayProgress
from supervision import ChildStatistics

# -- the KPI document (docs/kpis.md) ---------------------------------------------------------------

T = TypeVar("T")
PNL_NOTE = "realized over closed trades, after fees; open trades marked to mid, not closed"


class BySide(msgspec.Struct, Generic[T], frozen=True):
    """One value per side, spelled as in the file: ``{"BUY": ..., "SELL": ...}``."""

    BUY: T
    SELL: T

    def of(self, side: Side) -> T:
        return self.BUY if side == Side.BUY else self.SELL


class ZoneRatio(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fill_ratio_by_zone.<zone>.<side>``: the prediction's fields only with the calibrated fill model."""

    n: int
    mean: float | None
    predicted: float | None = None
    predicted_ci95: tuple[float, float] | None = None
    within_ci95: bool | None = None


class FeedKpi(msgspec.Struct, frozen=True, kw_only=True):
    """``feeds.<venue>``: the feed's counters (``FeedStatistics``) and its supervisor's reconnects."""

    connects: int
    connected: bool = False
    messages: int
    books: int = 0
    books_dropped: int = 0
    books_superseded: int = 0
    batches: int = 0
    bad_frames: int
    padded_levels: int = 0
    gaps: int
    resyncs: int
    snapshot_refetches: int = 0
    pings_sent: int = 0
    crossed_books: int = 0
    stuck_books: int = 0
    overflows: int = 0
    rest_weight: int = 0
    rest_wait_s: float = 0.0
    untrusted_s: float = 0.0
    reconnects: int
    reconnect_causes: dict[str, int]
    downtime_s: float
    book_age_s: float | None = None


class ActorKpi(msgspec.Struct, frozen=True):
    """``actors.<name>``: what its supervisor saw."""

    starts: int = 0
    restarts: int = 0
    causes: dict[str, int] = {}
    last_error: str | None = None
    downtime_s: float = 0.0
    gave_up: bool = False


class ChaosKpi(msgspec.Struct, frozen=True):
    kill_every_s: float = 0.0
    kills: int = 0
    kills_by_actor: dict[str, int] = {}


class Orders(msgspec.Struct, frozen=True):
    """``orders``: how trades were sized and sent (docs/kpis.md)."""

    sizing: Sizing = Sizing.FIXED
    parents: int = 0  # trades opened
    children: int = 0  # child orders sent (each a pair of entry legs)
    parents_stopped_early: int = 0  # split trades stopped when the premium no longer cleared
    planned_qty_btc: float = 0.0  # the trades' planned sizes, summed
    filled_qty_btc: float = 0.0  # what their entry legs filled, per leg (both legs summed, halved)
    filled_share: float | None = None  # filled_qty_btc / planned_qty_btc
    slippage_calibration: str | None = None  # the drift model's version, when one is loaded
    slippage_calibration_path: str | None = None  # and its file (strategy.slippage_calibration)


class InventoryPoint(msgspec.Struct, frozen=True):
    """``inventory.samples[]`` and ``inventory.end``: the balances' change since the start, marked to market."""

    t_s: float  # session seconds
    change: dict[str, dict[str, float]]  # venue -> asset -> balance minus its initial amount
    value_usdt: float  # that change in USDT at the time's marks: KRW at the FX rate, each venue's BTC at its mid
    net_btc: float  # the BTC changes of both venues summed


class Inventory(msgspec.Struct, frozen=True):
    """``inventory``: what the session holds over time, and what explains its BTC (docs/kpis.md)."""

    interval_s: float = 0.0  # the samples' spacing (it doubles when the series is thinned)
    samples: tuple[InventoryPoint, ...] = ()
    end: InventoryPoint | None = None  # at the latest market view
    open_btc: dict[str, float] = {}  # venue -> BTC the open trades hold there
    dust_btc: dict[str, float] = {}  # venue -> BTC closed trades left there, below its minimum order
    unexplained_btc: dict[str, float] = {}  # venue -> BTC change neither explains: 0 up to float rounding


class ReconciliationRow(msgspec.Struct, frozen=True):
    venue: str
    asset: str
    before: float
    flows: float  # every fill's flow of the asset on the venue, fees apart
    fees: float
    after: float
    residual: float  # after - (before + flows - fees)
    tolerance: float


class Reconciliation(msgspec.Struct, frozen=True):
    """``reconciliation``: balances after = balances before + every fill's flows - its fees, per venue and asset."""

    fills: int = 0
    ok: bool = True  # every residual within its tolerance
    rows: tuple[ReconciliationRow, ...] = ()


class Exits(msgspec.Struct, frozen=True):
    """``exits``: how exits were worked until flat (docs/architecture.md, the trade lifecycle)."""

    exit_retries: int = 0  # re-sends allowed before what is left is hedged (strategy.exit_retries)
    resent_legs: int = 0  # exit legs sent again for what an exit left unfilled
    unwind_legs: int = 0  # hedge legs sent for what the exit and its re-sends left
    trades_worked: int = 0  # closed trades that needed either
    open_by_phase: dict[str, int] = {}  # open trades per phase (opening, open, closing, working, unwinding)


class OrderLatency(msgspec.Struct, frozen=True):
    """``latency_ms``: each leg's latency is uniform in ``fixed`` ± ``jitter``."""

    fixed: float = 0.0
    jitter: float = 0.0


class Fx(msgspec.Struct, frozen=True):
    krw_per_usdt: float
    source: str


class PipelineLatency(msgspec.Struct, frozen=True):
    wire_to_decision: LatencyPercentiles = LatencyPercentiles()
    wire_to_fill_written: LatencyPercentiles = LatencyPercentiles()


class ReplayInfo(msgspec.Struct, frozen=True, kw_only=True):
    """``replay`` (market = "replay" only): what was served (docs/replay.md)."""

    files: tuple[str, ...] = ()
    sources: tuple[str, ...]  # "path (format)"
    speed: float | str  # or "as fast as possible"
    via: Literal["direct", "exchange"] = "exchange"  # "direct": frames handed to the feeds in memory
    recording_s: float  # of recording served (since the pre-roll)
    recording_ended: bool = False  # the replay served its recording to the end
    recorded: tuple[str, ...]
    synthesised: tuple[str, ...]
    start_epoch_ms: int | None = None
    # the market clock: from session time started_at_s on, recording time is
    # start_epoch_s + (t - started_at_s) * pace (recorded seconds per session second)
    started_at_s: float | None = None
    start_epoch_s: float | None = None
    pace: float = 1.0

    def recording_time(self, t_s: float) -> float | None:
        """Seconds since the epoch, in the recording, at session time ``t_s`` (None before it started)."""
        if self.started_at_s is None or self.start_epoch_s is None:
            return None
        return self.start_epoch_s + (t_s - self.started_at_s) * self.pace


class Kpi(msgspec.Struct, frozen=True, kw_only=True):
    """The KPI document, kpi_<id>.json (docs/kpis.md says what each field means)."""

    session_id: str = ""
    started_utc: str = ""
    final: bool = False
    status: SessionStatus
    market: str
    requested_duration_s: float
    duration_s: float
    startup_s: float | None = None
    entry_trades: int
    closed_trades: int = 0
    open_trades: int = 0
    fill_events: int
    fill_events_written: int = 0
    disk_error: str | None = None
    fill_events_by_side: BySide[int] = msgspec.field(default_factory=lambda: BySide(0, 0))
    available_volume: BySide[Dispersion] = msgspec.field(default_factory=lambda: BySide(Dispersion(), Dispersion()))
    fill_ratio: BySide[Spread] = msgspec.field(default_factory=lambda: BySide(Spread(), Spread()))
    slippage_bps: BySide[Spread] = msgspec.field(default_factory=lambda: BySide(Spread(), Spread()))
    fill_events_by_zone: dict[str, int] = {}
    fill_ratio_by_zone: dict[str, BySide[ZoneRatio]] = {}
    pnl_usdt: float
    pnl_krw: float = 0.0
    unrealized_pnl_usdt: float = 0.0
    pnl_note: str = PNL_NOTE
    fees_paid: dict[str, float] = {}
    balances: dict[str, dict[str, float]] = {}
    initial_balances: dict[str, dict[str, float]] = {}
    carried_imbalance_btc: float = 0.0
    legs_in_flight: int = 0
    exits: Exits = Exits()
    inventory: Inventory = Inventory()
    reconciliation: Reconciliation = Reconciliation()
    lots: Lots = msgspec.field(default_factory=Lots)
    risk_stopped: str | None = None
    refusals: dict[str, int] = {}
    l2_source: str
    fill_model: str
    calibration: CalibrationInfo | None = None
    orders: Orders = Orders()
    latency_ms: OrderLatency = OrderLatency()
    leg_risk: LegRisk = LegRisk.HEDGE
    premium_bps: float | None = None
    fx: Fx | None = None
    feeds: dict[str, FeedKpi]
    reconnects: dict[str, int] = {}
    actors: dict[str, ActorKpi] = {}
    chaos: ChaosKpi = ChaosKpi()
    fatal_exceptions: int = 0
    fatal_errors: tuple[str, ...] = ()
    pipeline_latency_ms: PipelineLatency = PipelineLatency()
    replay: ReplayInfo | msgspec.UnsetType = msgspec.UNSET  # absent unless market = "replay"
    pairs: PairsBlock | msgspec.UnsetType = msgspec.UNSET  # absent unless the session trades a market of pairs
    realism: RealismKpi | None = None  # the market against the real one (None in files written before it)
    acceptance_thresholds: Thresholds = msgspec.field(default_factory=Thresholds)
    acceptance: tuple[Criterion, ...] = ()

    def document(self) -> dict[str, Any]:
        """The document as kpi_<id>.json holds it: plain dicts, lists, strings and numbers."""
        return msgspec.json.decode(_encoder.encode(self), type=dict[str, Any])

    @property
    def recording_ended(self) -> bool:
        """A replay that served its recording to the end (C1 counts that as long enough)."""
        return not isinstance(self.replay, msgspec.UnsetType) and self.replay.recording_ended


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Kpi)


def decode_kpi(data: bytes) -> Kpi:
    """A KPI file's content, checked against ``Kpi``: msgspec.ValidationError names the first field that is
    missing or of the wrong type, msgspec.DecodeError a text that is not JSON (and, as for every msgspec
    decoder, deeply nested input can raise RecursionError)."""
    return _decoder.decode(data)


def as_kpi(kpi: Kpi | Mapping[str, Any]) -> Kpi:
    """The typed document, from itself or from its JSON form (``Kpi.document()``)."""
    return kpi if isinstance(kpi, Kpi) else msgspec.convert(kpi, Kpi)


def build_kpi(info: SessionInfo, snap: Snapshot, *, final: bool) -> Kpi:
    """The KPI document at the instant of ``snap`` (``final``: the session has ended)."""
    kpi = Kpi(**_session_fields(info, snap, final), **_trade_fields(info, snap.progress.trader, snap))
    thresholds = info.config.acceptance
    return msgspec.structs.replace(kpi, acceptance=tuple(criteria(kpi, thresholds)))


def _session_fields(info: SessionInfo, snap: Snapshot, final: bool) -> dict[str, Any]:
    """What the session did: its status and times, feeds, actors, chaos, failures, latency, replay, realism."""
    progress, life = snap.progress, snap.progress.lifecycle
    feeds = {venue: _feed(venue, feed, progress) for venue, feed in progress.feeds.items()}
    view = progress.view
    return {
        "session_id": info.session_id,
        "started_utc": info.started_utc,
        "final": final,
        "status": life.status,
        "market": info.market,
        "requested_duration_s": info.requested_duration_s,
        "duration_s": round(progress.duration_s(), 6),
        "startup_s": None if life.trading_since is None else round(life.trading_since - info.opened_at, 6),
        "fill_events_written": snap.collector.fill_events_written,
        "disk_error": snap.disk_error,
        "premium_bps": view.premium_bps,
        "fx": None if view.fx is None else Fx(view.fx.krw_per_usdt, view.fx.source),
        "feeds": feeds,
        "reconnects": {venue: feed.reconnects for venue, feed in feeds.items()},
        "actors": {name: _actor(child) for name, child in progress.actors.items()},
        "chaos": ChaosKpi(info.config.chaos.kill_every_s, sum(snap.chaos_kills.values()), dict(snap.chaos_kills)),
        "fatal_exceptions": len(life.fatal),
        "fatal_errors": life.fatal,
        "pipeline_latency_ms": PipelineLatency(snap.wire_to_decision, snap.collector.wire_to_fill_written),
        "replay": _replay(info, snap.replay),
        "realism": snap.collector.realism,
        "pairs": pairs_struct(progress.pairs) if progress.pairs else msgspec.UNSET,
        "acceptance_thresholds": info.config.acceptance,
    }


def _trade_fields(info: SessionInfo, trader: TraderStatistics, snap: Snapshot) -> dict[str, Any]:
    """What the trader did: trades, fills, PnL, balances, exits, inventory, orders, refusals."""
    return {
        "entry_trades": trader.entries,
        "closed_trades": trader.exits,
        "open_trades": trader.open_trades,
        "fill_events": trader.fill_events,
        "fill_events_by_side": BySide(trader.fills_by_side[Side.BUY], trader.fills_by_side[Side.SELL]),
        "available_volume": BySide(trader.available_volume[Side.BUY], trader.available_volume[Side.SELL]),
        "fill_ratio": BySide(snap.fill_ratio[Side.BUY], snap.fill_ratio[Side.SELL]),
        "slippage_bps": BySide(snap.slippage_bps[Side.BUY], snap.slippage_bps[Side.SELL]),
        "fill_events_by_zone": {zone.label: n for zone, n in trader.fills_by_zone.items()},
        "fill_ratio_by_zone": {
            zone.label: BySide(_zone_ratio(sides[Side.BUY]), _zone_ratio(sides[Side.SELL]))
            for zone, sides in trader.fill_ratios.items()
        },
        "pnl_usdt": round(trader.realized_pnl_usdt, 8),
        "pnl_krw": round(trader.realized_pnl_krw, 4),
        "unrealized_pnl_usdt": round(trader.unrealized_pnl_usdt, 8),
        "fees_paid": {f"{venue}:{ccy}": round(amount, 10) for (venue, ccy), amount in trader.fees_paid.items()},
        "balances": _balances(trader.balances),
        "initial_balances": _balances(trader.initial_balances),
        "carried_imbalance_btc": round(trader.carried_imbalance_btc, 12),
        "legs_in_flight": trader.legs_in_flight,
        "exits": Exits(
            trader.exit_retries,
            trader.resent_legs,
            trader.unwind_legs,
            trader.trades_worked,
            dict(trader.open_by_phase),
        ),
        "inventory": _inventory(trader),
        "reconciliation": _reconciliation(trader),
        "lots": trader.lots,
        "risk_stopped": trader.risk_stopped,
        "refusals": {reason.label: n for reason, n in trader.refusals.items()},
        "l2_source": trader.l2_source,
        "fill_model": trader.fill_model,
        "calibration": info.calibration,
        "orders": _orders(info, trader),
        "latency_ms": OrderLatency(trader.latency_ms, trader.latency_jitter_ms),
        "leg_risk": trader.leg_risk,
    }


def _orders(info: SessionInfo, trader: TraderStatistics) -> Orders:
    planned = trader.planned_qty_btc
    return Orders(
        trader.sizing,
        trader.entries,
        trader.children_sent,
        trader.parents_stopped,
        round(planned, 8),
        round(trader.entry_filled_btc / 2, 8),
        round(trader.entry_filled_btc / 2 / planned, 6) if planned else None,
        None if info.slippage is None else info.slippage.version,
        None if info.slippage is None else info.slippage.path,
    )


def _feed(venue: str, feed: FeedStatistics, progress: Progress) -> FeedKpi:
    """A feed's KPI entry: its health while trading (to the stop, not through the shutdown) and its restarts."""
    child = progress.actors.get(feed_actor(venue))
    age = book_age_s(progress.view, venue)
    counters = {
        f.name: getattr(feed, f.name) for f in attrs.fields(FeedStatistics) if f.name in FeedKpi.__struct_fields__
    }
    return FeedKpi(
        **counters,
        reconnects=child.restarts if child else 0,
        reconnect_causes=dict(child.causes) if child else {},
        downtime_s=child.downtime_s if child else 0.0,
        book_age_s=None if age is None else round(age, 6),
    )


def _actor(child: ChildStatistics) -> ActorKpi:
    return ActorKpi(child.starts, child.restarts, dict(child.causes), child.last_error, child.downtime_s, child.gave_up)


def _replay(info: SessionInfo, progress: ReplayProgress | None) -> ReplayInfo | msgspec.UnsetType:
    """The replay block: what the replay serves, and how far it got."""
    d = info.replay
    if d is None:
        return msgspec.UNSET
    started_at = None if progress is None else progress.started_at
    return ReplayInfo(
        files=d.files,
        sources=d.sources,
        speed=d.speed,
        via=d.via,
        recording_s=0.0 if progress is None else round(progress.served_s, 3),
        recording_ended=progress is not None and progress.ended,
        recorded=d.recorded,
        synthesised=d.synthesised,
        start_epoch_ms=d.start_epoch_ms,
        started_at_s=None if started_at is None else round(started_at - info.opened_at, 6),
        start_epoch_s=d.start_epoch_s,
        pace=d.pace,
    )


def _point(sample: InventorySample) -> InventoryPoint:
    return InventoryPoint(
        sample.t_s,
        {venue: {asset: round(x, 10) for asset, x in assets.items()} for venue, assets in sample.change.items()},
        round(sample.value_usdt, 6),
        round(sample.net_btc, 10),
    )


def _inventory(trader: TraderStatistics) -> Inventory:
    return Inventory(
        trader.inventory_interval_s,
        tuple(_point(s) for s in trader.inventory.samples()),
        None if trader.inventory_now is None else _point(trader.inventory_now),
        {venue: round(x, 12) for venue, x in trader.open_btc.items()},
        {venue: round(x, 12) for venue, x in trader.dust_btc.items()},
        {
            venue: round(x, 12)
            for venue, x in unexplained_btc(
                trader.initial_balances, trader.balances, trader.open_btc, trader.dust_btc
            ).items()
        },
    )


def _reconciliation(trader: TraderStatistics) -> Reconciliation:
    r = reconcile(trader.initial_balances, trader.balances, trader.flows)
    return Reconciliation(
        r.fills,
        r.ok,
        tuple(
            ReconciliationRow(
                row.venue, row.asset, row.before, row.flows, row.fees, row.after, row.residual, row.tolerance
            )
            for row in r.rows
        ),
    )


def _zone_ratio(r: ZoneFillRatio) -> ZoneRatio:
    if r.predicted_ci95 is None:
        return ZoneRatio(r.n, r.mean)
    return ZoneRatio(r.n, r.mean, r.predicted_mean, r.predicted_ci95, r.within_ci95)


def _balances(balances: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {venue: dict(assets) for venue, assets in balances.items()}
