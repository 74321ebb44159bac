"""Session report: ``python -m actors.tools.report LOGS_DIR [--session ID]``, or
``python -m actors.tools.report --compare LOGS_DIR... [--out FILE]``.

Reads a session's files (kpi, fill events, premium series) and writes ``report_<id>.md`` with PNG
plots beside it: acceptance criteria C1-C7 (PASS/FAIL), per-side distributions of available volume,
fill ratio and slippage (FIXED or DISPERSED), calibration predicted vs measured per zone, reconnects
by cause and downtime per feed, and plots of the premium with its baseline and the trades, fill ratio
per zone against the prediction, available-volume histograms and the PnL curve. Also written at the
end of every session run from the command line.

A KPI file is read with a bounded read (16 MiB) and decoded strictly into the KPI document's type
(``actors.records.kpi.Kpi``, fields added since older files were written have defaults): anything
else (``[]``, ``42``, ``{}``, a missing field) is one line ``report: FILE: not a KPI file (...)`` and
exit status 1. Fill-event lines of the wrong shape are skipped and counted, and the report says how many.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import attrs
import matplotlib
import msgspec

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402

from actors.core.acceptance import SIDES, SideDistributions, side_distributions  # noqa: E402
from actors.core.vocabulary import Side  # noqa: E402
from actors.inputs import MIB, BadLine, LineReader, read_bounded, read_jsonl  # noqa: E402
from actors.records.kpi import Kpi, ReplayInfo, decode_kpi  # noqa: E402
from actors.records.paths import SessionPaths  # noqa: E402

KPI_MAX_BYTES = 16 * MIB


class ReportError(Exception):
    pass


class _Fill(msgspec.Struct):
    """The fields of a fill-event line (docs/file-formats.md) a report reads."""

    t_s: float
    leg: Literal["entry", "hedge", "exit"]
    side: Literal["BUY", "SELL"]
    fill_ratio: float
    available_volume: float
    filled_qty: float
    slippage_bps: float
    decided_t_s: float
    premium_bps: float
    trade_pnl_usdt: float | None = None


@attrs.frozen
class FillEvents:
    events: tuple[_Fill, ...] = ()
    skipped: int = 0  # lines that are not fill events (a torn last line too)
    first_skipped: str = ""  # "line N: why", for the report


def read_kpi(path: Path) -> Kpi:
    """A KPI file, checked; InputError (not a small regular file) or ReportError (not a KPI file)."""
    data = read_bounded(path, KPI_MAX_BYTES)
    try:
        return decode_kpi(data)
    except Exception as exc:  # a decode or validation error, or RecursionError on nested JSON
        raise ReportError(f"{path}: not a KPI file ({type(exc).__name__}: {exc})") from None


def find_session(logs_dir: Path, session_id: str | None) -> SessionPaths:
    """The files of that session, or of the latest one in ``logs_dir`` (the one with the greatest id)."""
    if session_id:
        paths = SessionPaths(logs_dir, session_id)
        if not paths.kpi.exists():
            raise ReportError(f"{logs_dir}: no {paths.kpi.name}")
        return paths
    ids = SessionPaths.find_ids(logs_dir, "kpi")
    if not ids:
        raise ReportError(f"{logs_dir}: no session files ({SessionPaths(logs_dir, '<id>').kpi.name}) here")
    return SessionPaths(logs_dir, ids[-1])


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
    events = tuple(event for _, event in read_jsonl(path, _Fill, on_bad=skipped))
    return FillEvents(events, skipped.count, skipped.first)


def _skip_note(path: Path, fills: FillEvents) -> str:
    return (
        f"{fills.skipped} line{'s' if fills.skipped > 1 else ''} of {path.name} skipped: not fill events "
        f"(first at {fills.first_skipped})"
    )


def _premium(path: Path) -> list[tuple[float, float, float]]:
    """The premium series; rows that do not parse are left out (the file is a plot's input only)."""
    if not path.exists():
        return []
    rows = []
    for _, line, _ in LineReader(path):
        try:
            t_s, premium_bps, baseline_bps = (float(x) for x in (line or b"").split(b",")[:3])
        except ValueError:  # the header, a torn or over-long row
            continue
        rows.append((t_s, premium_bps, baseline_bps))
    return rows


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _time_axis(kpi: Kpi) -> tuple[Callable[[Sequence[float]], Sequence[Any]], str]:
    """How the plots place session times: as the recording's time in a replay, else as session seconds."""
    replay = kpi.replay
    if isinstance(replay, msgspec.UnsetType) or replay.recording_time(0.0) is None:
        return (lambda ts: ts), "session time (s)"

    def recorded(ts: Sequence[float]) -> list[datetime]:
        return [datetime.fromtimestamp(replay.recording_time(t) or 0.0, timezone.utc) for t in ts]

    return recorded, "recording time (UTC)"


def _plots(paths: SessionPaths, kpi: Kpi, events: tuple[_Fill, ...], premium: list) -> list[str]:
    names = []
    x, x_label = _time_axis(kpi)

    def save(fig, suffix: str) -> None:
        path = paths.plot(suffix)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        names.append(path.name)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    if premium:
        t, p, b = zip(*premium)
        ax.plot(x(t), p, lw=0.8, label="premium (mid)")
        ax.plot(x(t), b, lw=1.2, label="baseline")
    for leg, marker, color in (("entry", "^", "green"), ("exit", "v", "red")):
        legs = [e for e in events if e.leg == leg]
        if legs:
            ax.scatter(
                x([e.decided_t_s for e in legs]),
                [e.premium_bps for e in legs],
                marker=marker,
                color=color,
                s=25,
                label=f"{leg} legs",
                zorder=3,
            )
    ax.set_xlabel(x_label)
    ax.set_ylabel("bps")
    ax.set_title("Premium, baseline and trades")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    save(fig, "premium")

    zones = kpi.fill_ratio_by_zone
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels, width = list(zones), 0.2
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
                label=f"{side} predicted" if i == 0 else None,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("zone (entry/tp bps)")
    ax.set_ylabel("mean fill ratio")
    ax.set_ylim(0, 1.1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("Fill ratio per zone")
    save(fig, "fill_ratio")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, side in zip(axes, SIDES):
        values = [e.available_volume for e in events if e.side == side]
        if values:
            ax.hist(values, bins=min(30, max(5, len(values) // 2)))
        ax.set_title(f"{side} available_volume (BTC)")
    save(fig, "available_volume")

    fig, ax = plt.subplots(figsize=(9, 3))
    closes = sorted((e.t_s, e.trade_pnl_usdt) for e in events if e.trade_pnl_usdt is not None)
    total, xs, ys = 0.0, [0.0], [0.0]
    for at, pnl in closes:
        total += pnl
        xs.append(at)
        ys.append(total)
    ax.step(x(xs), ys, where="post")
    ax.set_xlabel(x_label)
    ax.set_ylabel("USDT")
    ax.set_title("Realized PnL after fees")
    save(fig, "pnl")
    return names


def write_report(logs_dir: Path, session_id: str | None = None) -> Path:
    paths = find_session(logs_dir, session_id)
    kpi = read_kpi(paths.kpi)
    fills = _events(paths.fill_events)
    plots = _plots(paths, kpi, fills.events, _premium(paths.premium))
    lines = [
        f"# Session {paths.session_id}",
        "",
        f"{kpi.status}, market {kpi.market}, {kpi.duration_s:.1f} s of {kpi.requested_duration_s:g} s; "
        f"{kpi.entry_trades} entry trades, {kpi.fill_events} fill events, PnL {kpi.pnl_usdt:+.4f} USDT "
        f"({kpi.pnl_note}); fill model {kpi.fill_model}, L2 source {kpi.l2_source}.",
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
    if fills.skipped:
        lines += [_skip_note(paths.fill_events, fills) + ".", ""]
    lines += ["## Acceptance criteria", "", "| | criterion | threshold | measured | result |", "|---|---|---|---|---|"]
    for c in kpi.acceptance:
        lines.append(f"| {c.id} | {c.name} | {c.threshold} | {c.measured} | {'PASS' if c.passed else '**FAIL**'} |")
    lines += [
        "",
        "## Fills per side",
        "",
        "| side | measure | count | min | max | mean | median | std | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for side, measures in side_distributions(fills.events).items():
        for measure, d in measures.measures():
            lines.append(
                f"| {side} | {measure} | {d.count} | {_fmt(d.min)} | {_fmt(d.max)} | "
                f"{_fmt(d.mean)} | {_fmt(d.median)} | {_fmt(d.std)} | {d.label} |"
            )
    lines += [
        "",
        "## Fill ratio per zone",
        "",
        "| zone | side | n | measured | predicted | 95 % interval | inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for zone, sides in kpi.fill_ratio_by_zone.items():
        for side in SIDES:
            row = sides.of(side)
            ci = row.predicted_ci95
            lines.append(
                f"| {zone} | {side} | {row.n} | {_fmt(row.mean)} | {_fmt(row.predicted)} | "
                f"{'-' if ci is None else f'{ci[0]:.4f}-{ci[1]:.4f}'} | "
                f"{'-' if row.within_ci95 is None else ('yes' if row.within_ci95 else 'no')} |"
            )
    lines += [
        "",
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
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    paths.report.write_text("\n".join(lines), encoding="utf-8")
    return paths.report


CALL_OUT = 0.10  # a mean or a std/mean this much (relative) away from the first session's is called out


@attrs.frozen
class _Compared:
    folder: Path
    session_id: str
    kpi: Kpi
    sides: dict[Side, SideDistributions]


def compare(logs_dirs: list[Path]) -> str:
    """Sessions side by side (the latest in each folder), differences in fill distributions called out."""
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
            f"{kpi.fill_events} | {kpi.pnl_usdt:+.4f} | {passed}/{len(kpi.acceptance)} |"
        )
    if skips:
        lines += [""] + skips
    lines += [
        "",
        "## Fill distributions",
        "",
        "| session | side | measure | count | mean | median | std | std/mean | |",
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
                if a.label != b.label:
                    notes.append(f"{side} {measure}: {b.label} {there} but {a.label} {here}")
                if a.mean and abs(b.mean - a.mean) / abs(a.mean) > CALL_OUT:
                    notes.append(
                        f"{side} {measure}: mean {_fmt(b.mean)} {there} vs {_fmt(a.mean)} {here}, "
                        f"{(b.mean - a.mean) / a.mean:+.0%}"
                    )
    lines += ["", "## Differences against the first session", ""]
    lines += [f"- {n}" for n in notes] or ["- none above 10 %"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.tools.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs_dirs", nargs="+", metavar="LOGS_DIR")
    parser.add_argument("--session", metavar="ID", help="session id (default: the latest in LOGS_DIR)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="put the latest session of each LOGS_DIR side by side (Markdown on stdout or --out)",
    )
    parser.add_argument("--out", metavar="FILE", help="with --compare: write the comparison here")
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
        path = write_report(Path(args.logs_dirs[0]), args.session)
    except (ReportError, OSError, ValueError) as exc:  # InputError is a ValueError
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
