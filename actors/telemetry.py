"""What a session records: its context, the KPI document, the status line, and the two data files.

Fill events and KPI files are data, written here with explicit flushing, never through the logger:
- ``FillWriter``: one JSON object per line, flushed per line, fsynced at close. A crash can at
  worst leave the last line torn, never an earlier one.
- ``write_json_atomic``: temp file, fsync, rename over the target, fsync the directory; a reader
  sees the old or the new KPI file, never a mix.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import msgspec

from actors.core.acceptance import Thresholds, criteria
from actors.core.fills import BUY, SELL
from actors.core.kpi import FeedStats, LatencyHistogram
from actors.core.market import MarketState
from actors.core.trader import FillEvent, Trader
from supervision import ChildStats

_encoder = msgspec.json.Encoder()


@attrs.frozen
class SessionPaths:
    logs_dir: Path
    session_id: str

    @property
    def fill_events(self) -> Path:
        return self.logs_dir / f"fill_events_{self.session_id}.jsonl"

    @property
    def kpi(self) -> Path:
        return self.logs_dir / f"kpi_{self.session_id}.json"

    @property
    def log(self) -> Path:
        return self.logs_dir / f"session_{self.session_id}.log"

    @property
    def premium(self) -> Path:
        return self.logs_dir / f"premium_{self.session_id}.csv"

    @property
    def report(self) -> Path:
        return self.logs_dir / f"report_{self.session_id}.md"

    @property
    def recording(self) -> Path:
        return self.logs_dir / f"recording_{self.session_id}.jsonl.gz"


LATEST = {"session.log": "log", "fill_events.jsonl": "fill_events", "kpi.json": "kpi", "premium.csv": "premium",
          "report.md": "report", "recording.jsonl.gz": "recording"}


def point_latest(paths: SessionPaths) -> Path:
    """Make ``<logs_dir>/latest/`` hold links to this session's files (replaced atomically)."""
    latest = paths.logs_dir / "latest"
    fresh = paths.logs_dir / f".latest.{paths.session_id}"
    fresh.mkdir(exist_ok=True)
    for name, attr in LATEST.items():
        link = fresh / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / getattr(paths, attr).name)
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        old = paths.logs_dir / f".latest.old.{paths.session_id}"
        latest.rename(old)
        fresh.rename(latest)
        for link in old.iterdir():
            link.unlink()
        old.rmdir()
        return latest
    fresh.rename(latest)
    return latest


class Recorder:
    """Every raw frame a feed received, with its receive time: recording_<id>.jsonl.gz.

    One JSON object a line: ``t_s`` (session clock), ``wall_ns`` (wall clock), ``venue``, ``kind``
    (``ws`` for a WebSocket frame, ``rest`` for a REST depth snapshot body) and ``frame`` (the text;
    Upbit's binary frames are UTF-8 JSON and are stored as text).
    """

    def __init__(self, path: Path, started_at: float) -> None:
        self.path = path
        self.frames = 0
        self._started_at = started_at
        self._file = gzip.open(path, "ab")

    def write(self, venue: str, kind: str, at: float, frame: bytes | str) -> None:
        text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
        self._file.write(_encoder.encode({"t_s": round(at - self._started_at, 6), "wall_ns": time.time_ns(),
                                          "venue": venue, "kind": kind, "frame": text}) + b"\n")
        self.frames += 1

    def close(self) -> None:
        self._file.close()


class FillWriter:
    """Appends fill events, one JSON line each, flushed per line.

    ``fsync``: "every_line" (each line on disk before the next), "interval" (at most
    ``fsync_interval_s`` of lines at risk on a power loss), or "close". Opening an existing file
    whose last line is torn (a crash mid-write) truncates that line and keeps every good one.
    """

    def __init__(self, path: Path, fsync: str = "interval", fsync_interval_s: float = 1.0,
                 clock=time.monotonic) -> None:
        self.path = path
        self.count = 0
        self.repaired_bytes = _repair_torn_tail(path)
        self._fsync = fsync
        self._interval = fsync_interval_s
        self._clock = clock
        self._last_sync = clock()
        self._file = open(path, "ab")

    def write(self, event: FillEvent) -> None:
        self._file.write(_encoder.encode(event.as_dict()) + b"\n")
        self._file.flush()
        self.count += 1
        if self._fsync == "every_line" or (self._fsync == "interval" and
                                           self._clock() - self._last_sync >= self._interval):
            os.fsync(self._file.fileno())
            self._last_sync = self._clock()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _repair_torn_tail(path: Path) -> int:
    """Cut an unterminated last line off ``path``; return how many bytes were removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep = 0
        block = 65536
        pos = size
        while pos > 0:  # find the last newline from the end
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def write_json_atomic(path: Path, document: Any) -> None:
    data = msgspec.json.format(_encoder.encode(document), indent=2) + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
        "fill_events_by_side": {BUY: trader.fills_by_side[BUY], SELL: trader.fills_by_side[SELL]},
        "available_volume": {BUY: trader.available_volume[BUY].as_dict(),
                             SELL: trader.available_volume[SELL].as_dict()},
        "fill_events_by_zone": dict(sorted(trader.fills_by_zone.items())),
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
        entry, tp = (float(x) for x in zone.split("/"))
        out[zone] = {}
        for side, ratios in sides.items():
            row: dict[str, Any] = {"n": ratios.count, "mean": ratios.mean if ratios.count else None}
            if calibration is not None:
                predicted = calibration.lookup(entry, tp, side)
                row["predicted"] = predicted.mean
                row["predicted_ci95"] = list(predicted.ci95)
                lo, hi = predicted.ci95
                row["within_ci95"] = None if row["mean"] is None else lo - 1e-9 <= row["mean"] <= hi + 1e-9
            out[zone][side] = row
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
