"""What a session records: its context, the KPI document, the status line, and the data files.

Fill events and KPI files are data, written here with explicit flushing, never through the logger:
- ``FillWriter``: one JSON object per line, written whole and flushed per line, fsynced at close. A
  crash can at worst leave the last line torn, never an earlier one; a failed write (disk full, I/O
  error) is cut back to the last whole line and reported as ``DataWriteError``.
- ``write_json_atomic``: temp file, fsync, rename over the target, fsync the directory; a reader
  sees the old or the new KPI file, never a mix.
- Every data file is opened through ``open_data`` (the seam tests use to fill the disk).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import attrs
import msgspec

from actors.core.acceptance import Thresholds, criteria
from actors.core.fills import BUY, SELL
from actors.core.kpi import FeedStats, LatencyHistogram
from actors.core.market import MarketState
from actors.core.trader import FillEvent, Trader
from supervision import ChildStats

_encoder = msgspec.json.Encoder()


class DataWriteError(OSError):
    """A session data file could not be written (disk full, I/O error, read-only); says which and why."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot write {path}: {cause.strerror or cause}")
        self.path, self.cause = path, cause

    def __str__(self) -> str:
        return str(self.strerror)


def open_data(path: Path, mode: str, buffering: int = -1):
    """Open a session data file; the one place data files are opened (tests replace it to fill the disk)."""
    return open(path, mode, buffering=buffering)


def _write_all(f, data: bytes) -> None:
    """Write every byte to a raw (unbuffered) file, which may take several writes."""
    view = memoryview(data)
    while view:
        written = f.write(view)
        if not written:
            raise OSError(errno.EIO, "the file accepted no bytes")
        view = view[written:]


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


SESSION_FILES = ("fill_events", "kpi", "log", "premium", "report", "recording")


class SessionIdTaken(Exception):
    """A session id whose files already exist in the logs folder."""


def claim_session(logs_dir: Path, wanted: str | None, default: str) -> SessionPaths:
    """The session's paths, with an id no other session in ``logs_dir`` has or can get.

    The claim is the exclusive creation of the fill-event file. ``wanted`` (``--session-id``) is refused
    with SessionIdTaken when any file of that id exists; ``default`` (the start time, one-second
    resolution) gets a ``_2``, ``_3``, ... suffix when another session took it. OSError when the folder
    cannot be created or written."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    candidates = [wanted] if wanted is not None else [default] + [f"{default}_{n}" for n in range(2, 1000)]
    for session_id in candidates:
        paths = SessionPaths(logs_dir, session_id)
        existing = [getattr(paths, name).name for name in SESSION_FILES if getattr(paths, name).exists()]
        if not existing:
            try:
                with open(paths.fill_events, "xb"):
                    return paths
            except FileExistsError:
                existing = [paths.fill_events.name]  # another session claimed it just now
        if wanted is not None:
            raise SessionIdTaken(f"session id {wanted!r} already has files in {logs_dir}: {', '.join(existing)}; "
                                 "choose another --session-id or remove them")
    raise SessionIdTaken(f"{logs_dir}: ids {default} to {candidates[-1]} are all taken")


LATEST = {"session.log": "log", "fill_events.jsonl": "fill_events", "kpi.json": "kpi", "premium.csv": "premium",
          "report.md": "report", "recording.jsonl.gz": "recording"}


def point_latest(paths: SessionPaths) -> Path:
    """Make ``<logs_dir>/latest/`` hold links to this session's files (replaced atomically). Two sessions
    starting together race for it: the loser tries again, then leaves it to the winner."""
    for attempt in range(3):
        try:
            return _point_latest(paths)
        except (FileNotFoundError, FileExistsError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _point_latest(paths: SessionPaths) -> Path:
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


RECORDING_FLUSH_S = 1.0


class Recorder:
    """Every raw frame a feed received, with its receive time: recording_<id>.jsonl.gz.

    One JSON object a line: ``t_s`` (session clock), ``wall_ns`` (wall clock), ``venue``, ``kind``
    (``ws`` for a WebSocket frame, ``rest`` for a REST depth snapshot body) and ``frame`` (the text;
    Upbit's binary frames are UTF-8 JSON and are stored as text). The gzip stream is flushed every
    ``RECORDING_FLUSH_S`` of session time, so a killed session leaves a recording readable up to then.
    """

    def __init__(self, path: Path, started_at: float, on_error: Callable[[DataWriteError], None]) -> None:
        self.path = path
        self.frames = 0
        self._started_at = started_at
        self._on_error = on_error
        self._flushed_at = started_at
        self._raw = open_data(path, "ab")
        self._file: gzip.GzipFile | None = gzip.GzipFile(fileobj=self._raw, mode="ab")

    def write(self, venue: str, kind: str, at: float, frame: bytes | str) -> None:
        """Record one frame; a write error stops the recording (reported once), never the feed."""
        if self._file is None:
            return
        text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
        try:
            self._file.write(_encoder.encode({"t_s": round(at - self._started_at, 6), "wall_ns": time.time_ns(),
                                              "venue": venue, "kind": kind, "frame": text}) + b"\n")
            if at - self._flushed_at >= RECORDING_FLUSH_S:  # a killed session loses at most this much
                self._file.flush()
                self._flushed_at = at
        except OSError as exc:
            self._fail(exc)
            return
        self.frames += 1

    def _fail(self, exc: OSError) -> None:
        self._file = None
        with contextlib.suppress(OSError):
            self._raw.close()
        self._on_error(DataWriteError(self.path, exc))

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
            self._raw.close()
        except OSError as exc:
            self._fail(exc)


class FillWriter:
    """Appends fill events, one JSON line each, written whole and flushed per line.

    ``fsync``: "every_line" (each line on disk before the next), "interval" (at most
    ``fsync_interval_s`` of lines at risk on a power loss), or "close". Opening an existing file
    whose last line is torn (a crash mid-write) truncates that line and keeps every good one.

    A write that fails (ENOSPC, EIO, ...) is cut back to the last whole line, so every line on disk
    stays valid, and raises ``DataWriteError``; the writer is then ``failed`` and writes nothing more.
    ``close`` never raises: a failure there is reported the same way, through ``on_error``.
    """

    def __init__(self, path: Path, fsync: str = "interval", fsync_interval_s: float = 1.0,
                 clock=time.monotonic, on_error: Callable[[DataWriteError], None] | None = None) -> None:
        self.path = path
        self.count = 0
        self.failed: DataWriteError | None = None
        self.repaired_bytes = _repair_torn_tail(path)
        self._fsync = fsync
        self._interval = fsync_interval_s
        self._clock = clock
        self._last_sync = clock()
        self._on_error = on_error
        self._file = open_data(path, "ab", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size  # bytes of whole lines

    def write(self, event: FillEvent) -> None:
        if self.failed is not None:
            raise self.failed
        line = _encoder.encode(event.as_dict()) + b"\n"
        try:
            _write_all(self._file, line)
            if self._fsync == "every_line" or (self._fsync == "interval" and
                                               self._clock() - self._last_sync >= self._interval):
                os.fsync(self._file.fileno())
                self._last_sync = self._clock()
        except OSError as exc:
            self._fail(exc)
            raise self.failed from None
        self._size += len(line)
        self.count += 1

    def _fail(self, exc: OSError) -> None:
        if self.failed is None:
            self.failed = exc if isinstance(exc, DataWriteError) else DataWriteError(self.path, exc)
        with contextlib.suppress(OSError):  # cut a partly written line; truncating frees space, so it can work
            os.ftruncate(self._file.fileno(), self._size)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self.failed is None:
                os.fsync(self._file.fileno())
        except OSError as exc:
            self._fail(exc)
            if self._on_error is not None:
                self._on_error(self.failed)
        finally:
            with contextlib.suppress(OSError):
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
    """Replace ``path`` with ``document`` as indented JSON, atomically: a reader sees the old file or the new
    one. On an error the old file stays, the temporary file is removed and DataWriteError is raised."""
    data = msgspec.json.format(_encoder.encode(document), indent=2) + b"\n"
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open_data(tmp, "xb", buffering=0) as f:
            _write_all(f, data)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise DataWriteError(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def append_text(path: Path, text: str) -> None:
    """Append a few lines to a small data file (the premium series); DataWriteError on failure."""
    try:
        with open_data(path, "ab") as f:
            f.write(text.encode("utf-8"))
    except OSError as exc:
        raise DataWriteError(path, exc) from None


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
