"""Session report: ``python -m actors.tools.report LOGS_DIR [--session ID]``, or
``python -m actors.tools.report --compare LOGS_DIR... [--out FILE]``.

Reads a session's files (kpi, fill events, premium series) and writes ``report_<id>.md`` with PNG
plots beside it: acceptance criteria C1-C7 (PASS/FAIL), per-side distributions of available volume,
fill ratio and slippage (FIXED or DISPERSED), calibration predicted vs measured per zone, reconnects
by cause and downtime per feed, and plots of the premium with its baseline and the trades, fill ratio
per zone against the prediction, available-volume histograms and the PnL curve. Also written at the
end of every session run from the command line.

A KPI file is read with a bounded read (16 MiB) and checked by a typed decoder for the fields a
report needs: anything else (``[]``, ``42``, ``{}``, a missing field) is one line
``report: FILE: not a KPI file (...)`` and exit status 1. Fill-event lines of the wrong shape are
skipped and counted, and the report says how many.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

import attrs
import matplotlib
import msgspec

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402

from actors.core.acceptance import SIDES, side_distributions  # noqa: E402
from actors.inputs import (  # noqa: E402
    MIB,
    LineReader,  # noqa: E402
    read_bounded,
)

KPI_MAX_BYTES = 16 * MIB


class ReportError(Exception):
    pass


# -- what a report reads ---------------------------------------------------------------------------

class _Criterion(msgspec.Struct):
    id: str
    name: str
    threshold: str
    measured: str
    passed: bool


class _ZoneSide(msgspec.Struct):
    n: int
    mean: float | None
    predicted: float | None = None
    predicted_ci95: tuple[float, float] | None = None
    within_ci95: bool | None = None


class _ZoneRatios(msgspec.Struct):
    BUY: _ZoneSide
    SELL: _ZoneSide


class _Feed(msgspec.Struct):
    connects: int
    reconnects: int
    reconnect_causes: dict[str, int]
    downtime_s: float
    messages: int
    bad_frames: int
    gaps: int
    resyncs: int
    untrusted_s: float = 0.0


class _Replay(msgspec.Struct):
    sources: list[str]
    recording_s: float
    speed: float | str
    recorded: list[str]
    synthesised: list[str]


class Kpi(msgspec.Struct):
    """The fields of a KPI file (docs/kpis.md) a report reads; the others are not checked."""

    status: str
    market: str
    duration_s: float
    requested_duration_s: float
    entry_trades: int
    fill_events: int
    pnl_usdt: float
    pnl_note: str
    fill_model: str
    l2_source: str
    feeds: dict[str, _Feed]
    acceptance: list[_Criterion] = []
    fill_ratio_by_zone: dict[str, _ZoneRatios] = {}
    replay: _Replay | None = None


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


_kpi_decoder = msgspec.json.Decoder(Kpi)
_fill_decoder = msgspec.json.Decoder(_Fill)


@attrs.frozen
class FillEvents:
    events: list[dict[str, Any]]
    skipped: int = 0             # lines that are not fill events (a torn last line too)
    first_skipped: str = ""      # "line N: why", for the report


def read_kpi(path: Path) -> Kpi:
    """A KPI file, checked; InputError (not a small regular file) or ReportError (not a KPI file)."""
    data = read_bounded(path, KPI_MAX_BYTES)
    try:
        return _kpi_decoder.decode(data)
    except Exception as exc:  # a decode or validation error, or RecursionError on nested JSON
        raise ReportError(f"{path}: not a KPI file ({type(exc).__name__}: {exc})") from None


def find_session(logs_dir: Path, session_id: str | None) -> str:
    if session_id:
        if not (logs_dir / f"kpi_{session_id}.json").exists():
            raise ReportError(f"{logs_dir}: no kpi_{session_id}.json")
        return session_id
    ids = sorted(p.name[4:-5] for p in logs_dir.glob("kpi_*.json"))
    if not ids:
        raise ReportError(f"{logs_dir}: no session files (kpi_<id>.json) here")
    return ids[-1]


def _events(path: Path) -> FillEvents:
    """The fill events of a file; other lines (a torn last line after a crash too) are counted, not fatal."""
    if not path.exists():
        return FillEvents([])
    out, skipped, first = [], 0, ""
    for number, line, _ in LineReader(path):
        try:
            if line is None:
                raise ValueError("longer than 16 MiB")
            out.append(msgspec.structs.asdict(_fill_decoder.decode(line)))
        except Exception as exc:  # one bad line, whatever the decoder raised
            skipped += 1
            first = first or f"line {number}: {type(exc).__name__}: {str(exc)[:80]}"
    return FillEvents(out, skipped, first)


def _skip_note(path: Path, fills: FillEvents) -> str:
    return (f"{fills.skipped} line{'s' if fills.skipped > 1 else ''} of {path.name} skipped: not fill events "
            f"(first at {fills.first_skipped})")


def _premium(path: Path) -> list[tuple[float, float, float]]:
    """The premium series; rows that do not parse are left out (the file is a plot's input only)."""
    if not path.exists():
        return []
    rows = []
    for _, line, _ in LineReader(path):
        try:
            t_s, premium_bps, baseline_bps = (float(x) for x in (line or b"").split(b","))
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


def _plots(logs_dir: Path, sid: str, kpi: Kpi, events: list[dict], premium: list) -> list[str]:
    names = []

    def save(fig, suffix: str) -> None:
        name = f"report_{sid}_{suffix}.png"
        fig.tight_layout()
        fig.savefig(logs_dir / name, dpi=90)
        plt.close(fig)
        names.append(name)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    if premium:
        t, p, b = zip(*premium)
        ax.plot(t, p, lw=0.8, label="premium (mid)")
        ax.plot(t, b, lw=1.2, label="baseline")
    for leg, marker, color in (("entry", "^", "green"), ("exit", "v", "red")):
        pts = [(e["decided_t_s"], e["premium_bps"]) for e in events if e["leg"] == leg]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=color, s=25, label=f"{leg} legs", zorder=3)
    ax.set_xlabel("session time (s)")
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
        ax.bar(xs, [getattr(zones[z], side).mean or 0 for z in labels], width, label=f"{side} measured")
        predicted = [getattr(zones[z], side).predicted for z in labels]
        if any(p is not None for p in predicted):
            ax.scatter(xs, [p if p is not None else float("nan") for p in predicted], marker="_", s=400,
                       color="black", zorder=3, label=f"{side} predicted" if i == 0 else None)
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
        values = [e["available_volume"] for e in events if e["side"] == side]
        if values:
            ax.hist(values, bins=min(30, max(5, len(values) // 2)))
        ax.set_title(f"{side} available_volume (BTC)")
    save(fig, "available_volume")

    fig, ax = plt.subplots(figsize=(9, 3))
    closes = sorted((e["t_s"], e["trade_pnl_usdt"]) for e in events if e.get("trade_pnl_usdt") is not None)
    total, xs, ys = 0.0, [0.0], [0.0]
    for t, pnl in closes:
        total += pnl
        xs.append(t)
        ys.append(total)
    ax.step(xs, ys, where="post")
    ax.set_xlabel("session time (s)")
    ax.set_ylabel("USDT")
    ax.set_title("Realized PnL after fees")
    save(fig, "pnl")
    return names


def write_report(logs_dir: Path, session_id: str | None = None) -> Path:
    sid = find_session(logs_dir, session_id)
    kpi = read_kpi(logs_dir / f"kpi_{sid}.json")
    fills_path = logs_dir / f"fill_events_{sid}.jsonl"
    fills = _events(fills_path)
    premium = _premium(logs_dir / f"premium_{sid}.csv")
    plots = _plots(logs_dir, sid, kpi, fills.events, premium)
    lines = [f"# Session {sid}", "",
             f"{kpi.status}, market {kpi.market}, {kpi.duration_s:.1f} s of {kpi.requested_duration_s:g} s; "
             f"{kpi.entry_trades} entry trades, {kpi.fill_events} fill events, PnL {kpi.pnl_usdt:+.4f} USDT "
             f"({kpi.pnl_note}); fill model {kpi.fill_model}, L2 source {kpi.l2_source}.", ""]
    if kpi.replay is not None:
        r = kpi.replay
        lines += [f"Replay of {' + '.join(r.sources)} ({r.recording_s:.1f} s, speed {r.speed}): recorded "
                  f"{', '.join(r.recorded)}; synthesised {', '.join(r.synthesised) or 'nothing'} "
                  "(simulator model pinned to the recorded mid).", ""]
    if fills.skipped:
        lines += [_skip_note(fills_path, fills) + ".", ""]
    lines += ["## Acceptance criteria", "", "| | criterion | threshold | measured | result |", "|---|---|---|---|---|"]
    for c in kpi.acceptance:
        lines.append(f"| {c.id} | {c.name} | {c.threshold} | {c.measured} | {'PASS' if c.passed else '**FAIL**'} |")
    lines += ["", "## Fills per side", "",
              "| side | measure | count | min | max | mean | median | std | |", "|---|---|---|---|---|---|---|---|---|"]
    for side, measures in side_distributions(fills.events).items():
        for measure, d in measures.items():
            lines.append(f"| {side} | {measure} | {d['count']} | {_fmt(d['min'])} | {_fmt(d['max'])} | "
                         f"{_fmt(d['mean'])} | {_fmt(d['median'])} | {_fmt(d['std'])} | {d['label']} |")
    lines += ["", "## Fill ratio per zone", "", "| zone | side | n | measured | predicted | 95 % interval | inside |",
              "|---|---|---|---|---|---|---|"]
    for zone, sides in kpi.fill_ratio_by_zone.items():
        for side in SIDES:
            row = getattr(sides, side)
            ci = row.predicted_ci95
            lines.append(f"| {zone} | {side} | {row.n} | {_fmt(row.mean)} | {_fmt(row.predicted)} | "
                         f"{'-' if ci is None else f'{ci[0]:.4f}-{ci[1]:.4f}'} | "
                         f"{'-' if row.within_ci95 is None else ('yes' if row.within_ci95 else 'no')} |")
    lines += ["", "## Feeds", "", "| feed | connects | reconnects | causes | downtime s | untrusted s | messages | "
              "bad frames | gaps | resyncs |", "|---|---|---|---|---|---|---|---|---|---|"]
    for venue, f in kpi.feeds.items():
        causes = ", ".join(f"{k} {v}" for k, v in f.reconnect_causes.items()) or "-"
        lines.append(f"| {venue} | {f.connects} | {f.reconnects} | {causes} | {f.downtime_s:.2f} | "
                     f"{f.untrusted_s:.2f} | {f.messages} | {f.bad_frames} | {f.gaps} | {f.resyncs} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    path = logs_dir / f"report_{sid}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


MEASURES = ("available_volume", "fill_ratio", "slippage_bps")
CALL_OUT = 0.10  # a mean or a std/mean this much (relative) away from the first session's is called out


def compare(logs_dirs: list[Path]) -> str:
    """Sessions side by side (the latest in each folder), differences in fill distributions called out."""
    rows, skips = [], []
    for folder in logs_dirs:
        sid = find_session(folder, None)
        kpi = read_kpi(folder / f"kpi_{sid}.json")
        fills_path = folder / f"fill_events_{sid}.jsonl"
        fills = _events(fills_path)
        if fills.skipped:
            skips.append(f"- {folder}: {_skip_note(fills_path, fills)}")
        rows.append((folder, sid, kpi, side_distributions(fills.events)))
    lines = ["# Session comparison", "", "| session | folder | L2 source | fill model | trades | fill events | "
             "PnL USDT | criteria passed |", "|---|---|---|---|---|---|---|---|"]
    for folder, sid, kpi, _ in rows:
        passed = sum(c.passed for c in kpi.acceptance)
        lines.append(f"| {sid} | {folder} | {kpi.l2_source} | {kpi.fill_model} | {kpi.entry_trades} | "
                     f"{kpi.fill_events} | {kpi.pnl_usdt:+.4f} | {passed}/{len(kpi.acceptance)} |")
    if skips:
        lines += [""] + skips
    lines += ["", "## Fill distributions", "",
              "| session | side | measure | count | mean | median | std | std/mean | |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _, sid, kpi, dists in rows:
        for side in SIDES:
            for measure in MEASURES:
                d = dists[side][measure]
                cv = None if not d["mean"] else d["std"] / d["mean"]
                lines.append(f"| {sid} ({kpi.l2_source}) | {side} | {measure} | {d['count']} | {_fmt(d['mean'])} | "
                             f"{_fmt(d['median'])} | {_fmt(d['std'])} | {_fmt(cv, 3)} | {d['label']} |")
    notes = []
    _, base_sid, base_kpi, base = rows[0]
    for _, sid, kpi, dists in rows[1:]:
        for side in SIDES:
            for measure in MEASURES:
                a, b = base[side][measure], dists[side][measure]
                if a["mean"] is None or b["mean"] is None:
                    continue
                if a["label"] != b["label"]:
                    notes.append(f"{side} {measure}: {b['label']} with {kpi.l2_source} ({sid}) but {a['label']} "
                                 f"with {base_kpi.l2_source} ({base_sid})")
                if a["mean"] and abs(b["mean"] - a["mean"]) / abs(a["mean"]) > CALL_OUT:
                    notes.append(f"{side} {measure}: mean {_fmt(b['mean'])} with {kpi.l2_source} ({sid}) vs "
                                 f"{_fmt(a['mean'])} with {base_kpi.l2_source} ({base_sid}), "
                                 f"{(b['mean'] - a['mean']) / a['mean']:+.0%}")
    lines += ["", "## Differences against the first session", ""]
    lines += [f"- {n}" for n in notes] or ["- none above 10 %"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.tools.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs_dirs", nargs="+", metavar="LOGS_DIR")
    parser.add_argument("--session", metavar="ID", help="session id (default: the latest in LOGS_DIR)")
    parser.add_argument("--compare", action="store_true",
                        help="put the latest session of each LOGS_DIR side by side (Markdown on stdout or --out)")
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
