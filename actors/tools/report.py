"""Session report: ``python -m actors.tools.report LOGS_DIR [--session ID] [--out FILE]``, or
``python -m actors.tools.report --compare LOGS_DIR... [--out FILE]``.

Reads a session's files (kpi, fill events, premium series) and writes ``report_<id>.md`` (or ``--out``)
with PNG plots beside it, and ``trades_<id>.csv`` (one row per trade, ``actors.tools.trades``). The report,
in the order a trader reads it: a header (status, start, trades, PnL, fill model and calibration),
acceptance criteria C1-C7 with the thresholds they were held to, session totals (win rate, average, best
and worst trade, max drawdown, fees per venue, balances before and after, turnover), the trades, per-side
distributions of available volume, fill ratio and slippage (FIXED or DISPERSED, and what that means),
fill ratio per zone against the calibration, the feeds' health, and plots: the premium with its baseline
and the trades by direction, fill ratio per zone, available-volume histograms and the equity curve.
Also written at the end of every session run from the command line.

Without ``--session``, the newest session in LOGS_DIR is the one that started last (the KPI's
``started_utc``; the KPI file's modification time for files written before it), not the greatest id.

A KPI file is read with a bounded read (16 MiB) and decoded strictly into the KPI document's type
(``actors.records.kpi.Kpi``, fields added since older files were written have defaults): anything
else (``[]``, ``42``, ``{}``, a missing field) is one line ``report: FILE: not a KPI file (...)`` and
exit status 1. Fill-event lines of the wrong shape are skipped and counted, and the report says how many.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import matplotlib
import msgspec

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from actors.core.acceptance import SIDES, SideDistributions, side_distributions  # noqa: E402
from actors.core.vocabulary import Direction, Leg, Side  # noqa: E402
from actors.inputs import MIB, BadLine, LineReader, read_bounded, read_jsonl  # noqa: E402
from actors.records.kpi import Kpi, ReplayInfo, decode_kpi  # noqa: E402
from actors.records.paths import SessionPaths  # noqa: E402
from actors.tools.trades import (  # noqa: E402
    DIRECTION_WORDS,
    FillLine,
    Trade,
    clock_time,
    max_drawdown,
    realized_curve,
    rebuild_trades,
    totals,
    write_trades_csv,
)

KPI_MAX_BYTES = 16 * MIB
FULL_TABLE_UP_TO = 20  # trades; above it the report shows the first FIRST_TRADES and the WORST_TRADES
FIRST_TRADES, WORST_TRADES = 10, 5
SIMPLE_MODEL_NOTE = (
    "simple fill model: an order fills whatever the depth allows, so the ratio is 1.0 unless depth runs out"
)
DESCRIPTION = (
    "Write a session's report (report_<id>.md, PNG plots beside it, trades_<id>.csv), or with --compare put "
    "the newest session of each LOGS_DIR side by side."
)


class ReportError(Exception):
    pass


@attrs.frozen
class FillEvents:
    events: tuple[FillLine, ...] = ()
    skipped: int = 0  # lines that are not fill events (a torn last line too)
    first_skipped: str = ""  # "line N: why", for the report


def read_kpi(path: Path) -> Kpi:
    """A KPI file, checked; InputError (not a small regular file) or ReportError (not a KPI file)."""
    data = read_bounded(path, KPI_MAX_BYTES)
    try:
        return decode_kpi(data)
    except Exception as exc:  # a decode or validation error, or RecursionError on nested JSON
        raise ReportError(f"{path}: not a KPI file ({type(exc).__name__}: {exc})") from None


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


def _events(path: Path) -> FillEvents:
    """The fill events of a file; other lines (a torn last line after a crash too) are counted, not fatal."""
    if not path.exists():
        return FillEvents()
    skipped = _Skipped()
    events = tuple(event for _, event in read_jsonl(path, FillLine, on_bad=skipped))
    return FillEvents(events, skipped.count, skipped.first)


def _skip_note(path: Path, fills: FillEvents) -> str:
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
    fills = _events(paths.fill_events)
    return Session(paths, read_kpi(paths.kpi), fills, _premium(paths.premium), rebuild_trades(fills.events))


# -- numbers and words -----------------------------------------------------------------------------


def _clean(x: float) -> float:
    return round(x, 10) + 0.0  # floating-point noise (4.1e-17) reads 0; + 0.0 turns -0.0 into 0.0


def _fmt(x: Any, digits: int = 4) -> str:
    """A figure for a table: ``digits`` significant digits, thousands separated from 10,000 on."""
    if x is None:
        return "-"
    if isinstance(x, float):
        x = _clean(x)
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _num(x: float | None, spec: str) -> str:
    """``x`` formatted with ``spec`` (``"+.4f"``), or "-"; a value that rounds to zero shows no sign."""
    if x is None:
        return "-"
    text = format(_clean(x), spec)
    if float(text.replace(",", "")) == 0:
        text = format(0.0, spec.replace("+", ""))
    return text


_AMOUNT = {"BTC": ".8f", "KRW": ",.2f", "USDT": ",.4f"}


def _amount(x: float | None, ccy: str) -> str:
    return _num(x, ("+" if x is not None and x < 0 else "") + _AMOUNT.get(ccy, ".6g"))


def _zone_order(label: str) -> tuple[tuple[float, ...], str]:
    """Sort key of a zone label ("5/5" before "10/12"): its numbers in order (a sort key only; the
    label is not read back into a zone)."""
    return tuple(float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", label)), label


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _utc(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return ""


def _at(t_s: float | None, ts_utc: str | None) -> str:
    if t_s is None:
        return "-"
    clock = clock_time(ts_utc)
    return f"{t_s:.1f} s" + (f" ({clock})" if clock else "")


def _link(target: Path, page: Path) -> str:
    """``target`` as a Markdown link target relative to the folder of ``page``."""
    return Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()


# -- plots -----------------------------------------------------------------------------------------


def _time_axis(kpi: Kpi) -> tuple[Callable[[Sequence[float]], Sequence[Any]], str]:
    """How the plots place session times: as the recording's time in a replay, else as session seconds."""
    replay = kpi.replay
    if isinstance(replay, msgspec.UnsetType) or replay.recording_time(0.0) is None:
        return (lambda ts: ts), "session time (s)"

    def recorded(ts: Sequence[float]) -> list[datetime]:
        return [datetime.fromtimestamp(replay.recording_time(t) or 0.0, timezone.utc) for t in ts]

    return recorded, "recording time (UTC)"


def _no_data(ax: Any, why: str) -> None:
    """An empty plot says why instead of showing an empty frame."""
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="dimgray", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


_MARKERS = {Direction.SELL_KRW: ("v", "tab:red"), Direction.BUY_KRW: ("^", "tab:green")}


def _premium_plot(s: Session) -> Any:
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x, x_label = _time_axis(s.kpi)
    if s.premium:
        ax.plot(x([r.t_s for r in s.premium]), [r.premium_bps for r in s.premium], lw=0.8, label="premium (mid)")
        ax.plot(x([r.t_s for r in s.premium]), [r.baseline_bps for r in s.premium], lw=1.2, label="baseline")
    direction = {t.trade_id: t.direction for t in s.trades}
    first: dict[tuple[int, Leg], FillLine] = {}  # a trade's first entry and first exit leg: its decisions
    for e in s.events:
        if e.trade_id is not None and e.leg is not Leg.HEDGE:
            first.setdefault((e.trade_id, e.leg), e)
    for way, (marker, color) in _MARKERS.items():
        entries = [e for (tid, leg), e in first.items() if leg is Leg.ENTRY and direction.get(tid) is way]
        if entries:
            ax.scatter(
                x([e.decided_t_s for e in entries]),
                [e.premium_bps for e in entries],
                marker=marker,
                color=color,
                s=30,
                label=f"entry: {DIRECTION_WORDS[way]}",
                zorder=3,
            )
    exits = [e for (_, leg), e in first.items() if leg is Leg.EXIT]
    if exits:
        ax.scatter(
            x([e.decided_t_s for e in exits]),
            [e.premium_bps for e in exits],
            marker="x",
            color="black",
            s=25,
            label="exit",
            zorder=3,
        )
    ax.set_title("Premium, baseline and trades (at the decision, mid premium)")
    if not s.premium and not first:
        _no_data(ax, "no premium samples and no trades in this session")
        return fig
    ax.set_xlabel(x_label)
    ax.set_ylabel("premium (bps)")
    ax.legend(loc="best", fontsize=7)
    return fig


def _fill_ratio_plot(s: Session) -> Any:
    zones = s.kpi.fill_ratio_by_zone
    labels = sorted(zones, key=_zone_order)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    title = "Fill ratio per zone (entry and exit legs)"
    if s.kpi.fill_model == "simple":
        title += f"\n{SIMPLE_MODEL_NOTE}"
    ax.set_title(title, fontsize=9 if s.kpi.fill_model == "simple" else None)
    if not labels:
        _no_data(ax, "no fill events in this session")
        return fig
    width = 0.2
    for i, side in enumerate(SIDES):
        xs = [j + (i - 0.5) * 2 * width for j in range(len(labels))]
        ax.bar(xs, [zones[z].of(side).mean or 0 for z in labels], width, label=f"{side} measured")
        predicted = [zones[z].of(side).predicted for z in labels]
        if any(p is not None for p in predicted):
            ax.scatter(
                xs,
                [p if p is not None else float("nan") for p in predicted],
                marker="_",
                s=400,
                color="black",
                zorder=3,
                label="predicted (calibration)" if i == 0 else None,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("zone (entry/tp bps)")
    ax.set_ylabel("mean fill ratio")
    ax.set_ylim(0, 1.3)  # room for the legend above the bars
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    return fig


def _available_volume_plot(s: Session) -> Any:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, side in zip(axes, SIDES):
        ax.set_title(f"{side} legs: available volume")
        values = [e.available_volume for e in s.events if e.side == side]
        if not values:
            _no_data(ax, f"no {side} fill events in this session")
            continue
        ax.hist(values, bins=min(30, max(5, len(values) // 2)))
        ax.set_xlabel("available volume at the limit price (BTC)")
        ax.set_ylabel("legs (count)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _equity_plot(s: Session) -> Any:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    x, x_label = _time_axis(s.kpi)
    curve, _ = s.equity_curve()
    marked = any(r.equity_usdt is not None for r in s.premium)
    realized = realized_curve(s.trades)
    ax.set_title("Equity after fees: realized + open trades marked to mid" if marked else "Realized PnL after fees")
    if not marked and len(realized) == 1:
        _no_data(ax, "no equity samples and no finished trades in this session")
        return fig
    if marked:
        ax.plot(x([t for t, _ in curve]), [v for _, v in curve], lw=1.0, label="equity (realized + marked)")
    xs, ys = [t for t, _ in realized], [v for _, v in realized]
    if curve[-1][0] > xs[-1]:  # the realized step runs on to the last equity sample
        xs, ys = xs + [curve[-1][0]], ys + [ys[-1]]
    ax.step(x(xs), ys, where="post", lw=1.0, ls="--" if marked else "-", color="tab:gray", label="realized")
    drawdown = max_drawdown(curve)
    if drawdown is not None and drawdown.depth_usdt > 0:
        ax.plot(
            x([drawdown.peak_t_s, drawdown.trough_t_s]),
            [drawdown.peak_usdt, drawdown.trough_usdt],
            color="tab:red",
            lw=2,
            marker="o",
            ms=3,
            label=f"max drawdown {_clean(drawdown.depth_usdt):.4f} USDT",
        )
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel(x_label)
    ax.set_ylabel("USDT")
    ax.legend(loc="best", fontsize=8)
    return fig


PLOTS: dict[str, Callable[[Session], Any]] = {
    "premium": _premium_plot,
    "fill_ratio": _fill_ratio_plot,
    "available_volume": _available_volume_plot,
    "equity": _equity_plot,
}


def figures(s: Session) -> dict[str, Any]:
    """The report's plots, by name (``report_<id>_<name>.png``), as matplotlib figures not yet saved."""
    return {name: plot(s) for name, plot in PLOTS.items()}


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the report's sections -------------------------------------------------------------------------


def _model(kpi: Kpi) -> str:
    c = kpi.calibration
    if c is not None:
        return f"calibrated fill model: calibration {c.version} ({c.mode}), zones {', '.join(c.zones) or '-'}"
    if kpi.fill_model == "simple":
        return "simple fill model (no calibration)"
    return f"fill model {kpi.fill_model} (the KPI file names no calibration)"


def _header(s: Session) -> list[str]:
    kpi = s.kpi
    started = _utc(kpi.started_utc)
    lines = [
        f"# Session {s.paths.session_id}",
        "",
        f"{kpi.status.capitalize()} {kpi.market} session{f' started {started}' if started else ''}: "
        f"traded {kpi.duration_s:.1f} s of the {kpi.requested_duration_s:g} s asked. {kpi.entry_trades} trades "
        f"({kpi.closed_trades} closed, {kpi.open_trades} open at the end), {kpi.fill_events} fill events. "
        f"PnL {_num(kpi.pnl_usdt, '+.4f')} USDT ({_num(kpi.pnl_krw, '+,.0f')} KRW) realized after fees; "
        f"open trades marked {_num(kpi.unrealized_pnl_usdt, '+.4f')} USDT. {_capital(_model(kpi))}; "
        f"L2 source {kpi.l2_source}; order latency {kpi.latency_ms.fixed:g} ± {kpi.latency_ms.jitter:g} ms.",
        "",
    ]
    if isinstance(kpi.replay, ReplayInfo):
        r = kpi.replay
        lines += [
            f"Replay of {' + '.join(r.sources)} ({r.recording_s:.1f} s, speed {r.speed}): recorded "
            f"{', '.join(r.recorded)}; synthesised {', '.join(r.synthesised) or 'nothing'} "
            "(simulator model pinned to the recorded mid).",
            "",
        ]
    if s.fills.skipped:
        lines += [_skip_note(s.paths.fill_events, s.fills) + ".", ""]
    return lines


def _criteria(kpi: Kpi) -> list[str]:
    given = ", ".join(f"{k} {v:g}" for k, v in attrs.asdict(kpi.acceptance_thresholds).items())
    lines = ["## Acceptance criteria", "", f"Thresholds from `[acceptance]` in the config: {given}.", ""]
    lines += ["| | criterion | threshold | measured | result |", "|---|---|---|---|---|"]
    for c in kpi.acceptance:
        lines.append(f"| {c.id} | {c.name} | {c.threshold} | {c.measured} | {'PASS' if c.passed else '**FAIL**'} |")
    return lines + [""]


def _fees(s: Session) -> list[str]:
    """Fees per venue and currency: the KPI's amounts, in USDT at each leg's rates (from the fill events)."""
    paid = dict(s.kpi.fees_paid)
    in_usdt: dict[str, float] = {}
    for e in s.events:
        if e.fee and e.venue is not None:
            key = f"{e.venue}:{e.fee_ccy}"
            in_usdt[key] = in_usdt.get(key, 0.0) + e.fee_usdt
            if key not in s.kpi.fees_paid:  # an older KPI file without fees_paid: add the events' amounts
                paid[key] = paid.get(key, 0.0) + e.fee
    if not paid:
        return ["No fees paid.", ""]
    lines = ["| fees | currency | paid | in USDT |", "|---|---|---|---|"]
    for key in sorted(paid):
        venue, _, ccy = key.partition(":")
        lines.append(f"| {venue} | {ccy} | {_amount(paid[key], ccy)} | {_num(in_usdt.get(key), ',.4f')} |")
    lines.append(f"| **all** | | | **{_num(sum(in_usdt.values()), ',.4f')}** |")
    return lines + [""]


def _balances(kpi: Kpi) -> list[str]:
    if not kpi.initial_balances and not kpi.balances:
        return []
    lines = ["| balance | asset | before | after | change |", "|---|---|---|---|---|"]
    for venue in dict.fromkeys([*kpi.initial_balances, *kpi.balances]):
        before, after = kpi.initial_balances.get(venue, {}), kpi.balances.get(venue, {})
        for asset in dict.fromkeys([*before, *after]):
            a, b = before.get(asset), after.get(asset)
            change = None if a is None or b is None else b - a
            lines.append(
                f"| {venue} | {asset} | {_amount(a, asset)} | {_amount(b, asset)} | "
                f"{_num(change, '+' + _AMOUNT.get(asset, '.6g'))} |"
            )
    return lines + [""]


def _totals(s: Session) -> list[str]:
    kpi, t = s.kpi, totals(s.trades)
    lines = ["## Totals", ""]
    extra = [f"{t.open} open at the end"] + ([f"{t.no_position} never held a position"] if t.no_position else [])
    won = "" if t.win_rate is None else f"; win rate {t.win_rate:.0%} ({t.wins} of {t.closed} made money)"
    lines.append(f"- Closed trades: {t.closed} ({', '.join(extra)}){won}.")
    if t.best is not None and t.worst is not None:
        lines.append(
            f"- PnL per closed trade: average {_num(t.average_usdt, '+.4f')}, best {_num(t.best.pnl_usdt, '+.4f')} "
            f"(trade {t.best.trade_id}), worst {_num(t.worst.pnl_usdt, '+.4f')} (trade {t.worst.trade_id}) USDT."
        )
    equity = kpi.pnl_usdt + kpi.unrealized_pnl_usdt
    lines.append(
        f"- PnL: realized {_num(kpi.pnl_usdt, '+.4f')} USDT after fees, open trades marked "
        f"{_num(kpi.unrealized_pnl_usdt, '+.4f')}, equity at the end {_num(equity, '+.4f')}."
    )
    curve, source = s.equity_curve()
    dd = max_drawdown(curve)
    if dd is None or _clean(dd.depth_usdt) == 0:
        lines.append(f"- Max drawdown: none (on {source}, it never fell).")
    else:
        lines.append(
            f"- Max drawdown: {_num(dd.depth_usdt, '.4f')} USDT on {source}: from {_num(dd.peak_usdt, '+.4f')} "
            f"at {dd.peak_t_s:.1f} s to {_num(dd.trough_usdt, '+.4f')} at {dd.trough_t_s:.1f} s."
        )
    by_venue: dict[str, float] = {}
    for e in s.events:
        by_venue[str(e.venue)] = by_venue.get(str(e.venue), 0.0) + e.notional_usdt
    split = ", ".join(f"{v} {_num(n, ',.2f')}" for v, n in sorted(by_venue.items()) if n)
    lines.append(f"- Turnover: {_num(t.turnover_usdt, ',.2f')} USDT filled" + (f" ({split})." if split else "."))
    lines.append(f"- Fees: {_num(t.fees_usdt, ',.4f')} USDT in all (KRW at each leg's FX rate, BTC at its price).")
    if kpi.refusals:
        refused = ", ".join(f"{k} {n}" for k, n in sorted(kpi.refusals.items(), key=lambda kv: -kv[1]))
        lines.append(f"- Decisions not taken: {refused}.")
    return lines + [""] + _fees(s) + _balances(kpi)


_TRADE_HEAD = [
    "| # | opened | closed | direction | zone | size BTC | entry bps | exit bps | fees USDT | slippage bps "
    "| exit | PnL USDT | PnL KRW |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def _trade_row(t: Trade) -> str:
    return (
        f"| {t.trade_id} | {_at(t.opened_t_s, t.opened_utc)} | {_at(t.closed_t_s, t.closed_utc)} | "
        f"{t.direction_words} | {t.zone} | {_num(t.size_btc, '.6f')} | {_num(t.entry_premium_bps, '.1f')} | "
        f"{_num(t.exit_premium_bps, '.1f')} | {_num(t.fees_usdt, '.4f')} | {_num(t.slippage_bps, '.2f')} | "
        f"{t.exit_reason} | {_num(t.pnl_usdt, '+.4f')} | {_num(t.pnl_krw, '+,.0f')} |"
    )


def _trades(s: Session, csv_link: str) -> list[str]:
    lines = ["## Trades", ""]
    trades = s.trades
    if not trades:
        return lines + ["No trades.", ""]
    every = f"[{s.paths.trades.name}]({csv_link})"
    if len(trades) <= FULL_TABLE_UP_TO:
        lines += [f"Every trade (also in {every}):", ""] + _TRADE_HEAD + [_trade_row(t) for t in trades]
        return lines + [""]
    finished = sorted((t for t in trades if t.pnl_usdt is not None), key=lambda t: (t.pnl_usdt, t.trade_id))
    lines += [f"{len(trades)} trades: the first {FIRST_TRADES} here, every one in {every}.", ""]
    lines += _TRADE_HEAD + [_trade_row(t) for t in trades[:FIRST_TRADES]] + [""]
    if finished:
        lines += [f"The {min(WORST_TRADES, len(finished))} worst (lowest PnL):", ""]
        lines += _TRADE_HEAD + [_trade_row(t) for t in finished[:WORST_TRADES]] + [""]
    return lines


def _fills(s: Session) -> list[str]:
    kpi = s.kpi
    lines = [
        "## Fills per side",
        "",
        "Fill ratio over every leg (hedges too), slippage over the legs that filled. FIXED: std/mean under "
        "0.1, a constant rather than a live measurement. KPI median: the KPI file's own figure.",
        "",
        "| side | measure | count | min | max | mean | median | std | KPI median | kind |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    disagree = []
    for side, measures in side_distributions(s.events).items():
        for measure, d in measures.measures():
            spread = {"fill_ratio": kpi.fill_ratio, "slippage_bps": kpi.slippage_bps}.get(measure)
            own = None if spread is None else spread.of(side)
            median = None if own is None or not own.count else own.median
            if own is not None and own.count and (own.count, own.median) != (d.count, d.median):
                disagree.append(f"{side} {measure} (KPI: {own.count} legs, median {_fmt(own.median)})")
            lines.append(
                f"| {side} | {measure} | {d.count} | {_fmt(d.min)} | {_fmt(d.max)} | {_fmt(d.mean)} | "
                f"{_fmt(d.median)} | {_fmt(d.std)} | {_fmt(median)} | {d.label} |"
            )
    if disagree:
        lines += ["", f"The KPI file disagrees with the fill events on {'; '.join(disagree)}."]
    return lines + [""]


def _zones(kpi: Kpi) -> list[str]:
    lines = ["## Fill ratio per zone", ""]
    if kpi.fill_model == "simple":
        lines += [_capital(SIMPLE_MODEL_NOTE) + ".", ""]
    lines += [
        "| zone | side | n | measured | predicted | 95 % interval | inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for zone in sorted(kpi.fill_ratio_by_zone, key=_zone_order):
        sides = kpi.fill_ratio_by_zone[zone]
        for side in SIDES:
            row = sides.of(side)
            ci = row.predicted_ci95
            lines.append(
                f"| {zone} | {side} | {row.n} | {_fmt(row.mean)} | {_fmt(row.predicted)} | "
                f"{'-' if ci is None else f'{ci[0]:.4f}-{ci[1]:.4f}'} | "
                f"{'-' if row.within_ci95 is None else ('yes' if row.within_ci95 else 'no')} |"
            )
    return lines + [""]


def _feeds(kpi: Kpi) -> list[str]:
    lines = [
        "## Feeds",
        "",
        "| feed | connects | reconnects | causes | downtime s | untrusted s | messages | bad frames | gaps | resyncs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for venue, f in kpi.feeds.items():
        causes = ", ".join(f"{k} {v}" for k, v in f.reconnect_causes.items()) or "-"
        lines.append(
            f"| {venue} | {f.connects} | {f.reconnects} | {causes} | {f.downtime_s:.2f} | "
            f"{f.untrusted_s:.2f} | {f.messages} | {f.bad_frames} | {f.gaps} | {f.resyncs} |"
        )
    return lines + [""]


def write_report(logs_dir: Path, session_id: str | None = None, out: Path | None = None) -> Path:
    """Write the report of that session (or the newest in ``logs_dir``) to ``out`` (default
    ``report_<id>.md`` in ``logs_dir``) with its plots beside it, and the session's ``trades_<id>.csv``."""
    paths = find_session(logs_dir, session_id)
    s = load_session(paths)
    page = paths.report if out is None else Path(out)
    write_trades_csv(paths.trades, s.trades)
    plots = []
    for name, fig in figures(s).items():
        path = paths.plot(name) if out is None else page.with_name(f"{page.stem}_{name}.png")
        _save(fig, path)
        plots.append(path)
    lines = _header(s) + _criteria(s.kpi) + _totals(s) + _trades(s, _link(paths.trades, page))
    lines += _fills(s) + _zones(s.kpi) + _feeds(s.kpi)
    lines += ["## Plots", ""] + [f"![{p.name}]({_link(p, page)})" for p in plots] + [""]
    page.write_text("\n".join(lines), encoding="utf-8")
    return page


# -- comparison ------------------------------------------------------------------------------------

CALL_OUT = 0.10  # a mean or a std/mean this much (relative) away from the first session's is called out


@attrs.frozen
class _Compared:
    folder: Path
    session_id: str
    kpi: Kpi
    sides: dict[Side, SideDistributions]


def compare(logs_dirs: list[Path]) -> str:
    """Sessions side by side (the newest in each folder), differences in fill distributions called out."""
    rows, skips = [], []
    for folder in logs_dirs:
        paths = find_session(folder, None)
        kpi = read_kpi(paths.kpi)
        fills = _events(paths.fill_events)
        if fills.skipped:
            skips.append(f"- {folder}: {_skip_note(paths.fill_events, fills)}")
        rows.append(_Compared(folder, paths.session_id, kpi, side_distributions(fills.events)))
    lines = [
        "# Session comparison",
        "",
        "| session | folder | L2 source | fill model | trades | fill events | PnL USDT | criteria passed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kpi = row.kpi
        passed = sum(c.passed for c in kpi.acceptance)
        lines.append(
            f"| {row.session_id} | {row.folder} | {kpi.l2_source} | {kpi.fill_model} | {kpi.entry_trades} | "
            f"{kpi.fill_events} | {_num(kpi.pnl_usdt, '+.4f')} | {passed}/{len(kpi.acceptance)} |"
        )
    if skips:
        lines += [""] + skips
    lines += [
        "",
        "## Fill distributions",
        "",
        "| session | side | measure | count | mean | median | std | std/mean | kind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for side in SIDES:
            for measure, d in row.sides[side].measures():
                lines.append(
                    f"| {row.session_id} ({row.kpi.l2_source}) | {side} | {measure} | {d.count} | "
                    f"{_fmt(d.mean)} | {_fmt(d.median)} | {_fmt(d.std)} | {_fmt(d.std_over_mean, 3)} | "
                    f"{d.label} |"
                )
    notes = []
    base = rows[0]
    here = f"with {base.kpi.l2_source} ({base.session_id})"
    for row in rows[1:]:
        there = f"with {row.kpi.l2_source} ({row.session_id})"
        for side in SIDES:
            for (measure, a), (_, b) in zip(base.sides[side].measures(), row.sides[side].measures()):
                if a.mean is None or b.mean is None:
                    continue
                if a.kind != b.kind:
                    notes.append(f"{side} {measure}: {b.label} {there} but {a.label} {here}")
                if a.mean and abs(b.mean - a.mean) / abs(a.mean) > CALL_OUT:
                    notes.append(
                        f"{side} {measure}: mean {_fmt(b.mean)} {there} vs {_fmt(a.mean)} {here}, "
                        f"{(b.mean - a.mean) / a.mean:+.0%}"
                    )
    lines += ["", "## Differences against the first session", ""]
    lines += [f"- {n}" for n in notes] or ["- none above 10 %"]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors.tools.report", description=DESCRIPTION)
    parser.add_argument(
        "logs_dirs",
        nargs="+",
        metavar="LOGS_DIR",
        help="the session folder (several with --compare); its newest session is the one that started last",
    )
    parser.add_argument(
        "--session", metavar="ID", help="report this session id (default: the newest in LOGS_DIR, by start time)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="put the newest session of each LOGS_DIR side by side (default: off, one session's report)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the report here, plots beside it (default: report_<id>.md in LOGS_DIR); with --compare, "
        "the comparison (default: stdout)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.compare:
            text = compare([Path(d) for d in args.logs_dirs])
            if args.out:
                Path(args.out).write_text(text, encoding="utf-8")
                print(f"wrote {args.out}")
            else:
                print(text, end="")
            return 0
        if len(args.logs_dirs) != 1:
            parser.error("one LOGS_DIR, or several with --compare")
        path = write_report(Path(args.logs_dirs[0]), args.session, Path(args.out) if args.out else None)
    except (ReportError, OSError, ValueError) as exc:  # InputError is a ValueError
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
