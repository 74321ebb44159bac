"""A session's files as a report reads them: the KPI file (bounded, strictly decoded), the fill events (lines
of the wrong shape counted, not fatal), the premium series, the trades rebuilt from the fill events, and
which session of a folder is the newest (by its start time, not its id)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import attrs

from actors.inputs import MIB, BadLine, LineReader, read_bounded, read_jsonl
from actors.records.kpi import Kpi, decode_kpi
from actors.records.pairs import PairRow, read_pairs_block
from actors.records.paths import SessionPaths
from actors.tools.trades import FillLine, Trade, realized_curve, rebuild_trades

KPI_MAX_BYTES = 16 * MIB


class ReportError(Exception):
    pass


@attrs.frozen
class FillEvents:
    events: tuple[FillLine, ...] = ()
    skipped: int = 0  # lines that are not fill events (a torn last line too)
    first_skipped: str = ""  # "line N: why", for the report


def read_kpi_and_pairs(path: Path) -> tuple[Kpi, tuple[PairRow, ...]]:
    """A KPI file, checked, and its ``pairs`` block's rows (() without one: a one-pair session); InputError
    (not a small regular file) or ReportError (not a KPI file, or a ``pairs`` block of the wrong shape)."""
    data = read_bounded(path, KPI_MAX_BYTES)
    try:
        return decode_kpi(data), read_pairs_block(data)
    except Exception as exc:  # a decode or validation error, or RecursionError on nested JSON
        raise ReportError(f"{path}: not a KPI file ({type(exc).__name__}: {exc})") from None


def read_kpi(path: Path) -> Kpi:
    """A KPI file, checked; InputError (not a small regular file) or ReportError (not a KPI file)."""
    return read_kpi_and_pairs(path)[0]


def _started(paths: SessionPaths) -> float:
    """When the session started, in seconds since the epoch: the KPI's ``started_utc``, or for a file
    without it (older, or not a KPI file at all) the file's modification time."""
    try:
        started = read_kpi(paths.kpi).started_utc
        return datetime.fromisoformat(started).timestamp()
    except (ReportError, ValueError, OSError):  # InputError is a ValueError
        try:
            return paths.kpi.stat().st_mtime
        except OSError:
            return float("-inf")


def find_session(logs_dir: Path, session_id: str | None) -> SessionPaths:
    """The files of session ``session_id``, or of the newest session in ``logs_dir``: the one that started
    last by its KPI's ``started_utc`` (a KPI file written before that field: by the file's modification
    time), ties broken by the greater id. Not the greatest id: ``--session-id rec1`` sorts after every
    timestamp id, yet it is not newer."""
    if session_id:
        paths = SessionPaths(logs_dir, session_id)
        if not paths.kpi.exists():
            raise ReportError(f"{logs_dir}: no {paths.kpi.name}")
        return paths
    ids = SessionPaths.find_ids(logs_dir, "kpi")
    if not ids:
        raise ReportError(f"{logs_dir}: no session files ({SessionPaths(logs_dir, '<id>').kpi.name}) here")
    if len(ids) == 1:
        return SessionPaths(logs_dir, ids[0])
    return max((SessionPaths(logs_dir, i) for i in ids), key=lambda p: (_started(p), p.session_id))


@attrs.define
class _Skipped:
    """Counts the lines of a fill-event file that are not fill events and remembers the first."""

    count: int = 0
    first: str = ""

    def __call__(self, line: BadLine) -> None:
        self.count += 1
        self.first = self.first or f"line {line.number}: {line.problem[:80]}"


def read_events(path: Path) -> FillEvents:
    """The fill events of a file; other lines (a torn last line after a crash too) are counted, not fatal."""
    if not path.exists():
        return FillEvents()
    skipped = _Skipped()
    events = tuple(event for _, event in read_jsonl(path, FillLine, on_bad=skipped))
    return FillEvents(events, skipped.count, skipped.first)


def skip_note(path: Path, fills: FillEvents) -> str:
    return (
        f"{fills.skipped} line{'s' if fills.skipped > 1 else ''} of {path.name} skipped: not fill events "
        f"(first at {fills.first_skipped})"
    )


@attrs.frozen
class PremiumRow:
    t_s: float
    premium_bps: float
    baseline_bps: float
    equity_usdt: float | None  # None in files written before the column


def _premium(path: Path) -> tuple[PremiumRow, ...]:
    """The premium series; rows that do not parse are left out (the file is a plot's input only)."""
    if not path.exists():
        return ()
    rows = []
    for _, line, _ in LineReader(path):
        cells = (line or b"").split(b",")
        try:
            t_s, premium_bps, baseline_bps = (float(x) for x in cells[:3])
            equity = float(cells[4]) if len(cells) > 4 and cells[4].strip() else None
        except ValueError:  # the header, a torn or over-long row
            continue
        rows.append(PremiumRow(t_s, premium_bps, baseline_bps, equity))
    return tuple(rows)


@attrs.frozen
class Session:
    """What a report reads: the session's files, decoded."""

    paths: SessionPaths
    kpi: Kpi
    fills: FillEvents
    premium: tuple[PremiumRow, ...]
    trades: tuple[Trade, ...]
    pairs: tuple[PairRow, ...] = ()  # the KPI's pairs block (issue 26): () in a one-pair session

    @property
    def events(self) -> tuple[FillLine, ...]:
        return self.fills.events

    def equity_curve(self) -> tuple[list[tuple[float, float]], str]:
        """(t_s, USDT) points and what they are: the premium file's equity column (realized + open trades
        marked to mid), or without it the realized PnL after each finished trade."""
        marked = [(r.t_s, r.equity_usdt) for r in self.premium if r.equity_usdt is not None]
        if marked:
            return [(0.0, 0.0)] + marked, "the equity curve (realized + open trades marked to mid, once a second)"
        return realized_curve(self.trades), f"realized PnL ({self.paths.premium.name} has no equity_usdt column)"


def load_session(paths: SessionPaths) -> Session:
    fills = read_events(paths.fill_events)
    kpi, pairs = read_kpi_and_pairs(paths.kpi)
    return Session(paths, kpi, fills, _premium(paths.premium), rebuild_trades(fills.events), pairs)
