"""Session report: ``python -m actors.report LOGS_DIR [--session ID]``, or
``python -m actors.report --compare LOGS_DIR... [--out FILE]``.

Reads a session's files (kpi, fill events, premium series) and writes ``report_<id>.md`` with PNG
plots beside it: acceptance criteria C1-C7 (PASS/FAIL), per-side distributions of available volume,
fill ratio and slippage (FIXED or DISPERSED), calibration predicted vs measured per zone, reconnects
by cause and downtime per feed, and plots of the premium with its baseline and the trades, fill ratio
per zone against the prediction, available-volume histograms and the PnL curve. Also written at the
end of every session run from the command line.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402

from actors.core.acceptance import SIDES, side_distributions  # noqa: E402


class ReportError(Exception):
    pass


def find_session(logs_dir: Path, session_id: str | None) -> str:
    if session_id:
        if not (logs_dir / f"kpi_{session_id}.json").exists():
            raise ReportError(f"{logs_dir}: no kpi_{session_id}.json")
        return session_id
    ids = sorted(p.name[4:-5] for p in logs_dir.glob("kpi_*.json"))
    if not ids:
        raise ReportError(f"{logs_dir}: no session files (kpi_<id>.json) here")
    return ids[-1]


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line after a crash
    return out


def _premium(path: Path) -> list[tuple[float, float, float]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [(float(r["t_s"]), float(r["premium_bps"]), float(r["baseline_bps"])) for r in csv.DictReader(f)]


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _plots(logs_dir: Path, sid: str, kpi: dict, events: list[dict], premium: list) -> list[str]:
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

    zones = kpi.get("fill_ratio_by_zone", {})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels, width = list(zones), 0.2
    for i, side in enumerate(SIDES):
        xs = [j + (i - 0.5) * 2 * width for j in range(len(labels))]
        ax.bar(xs, [zones[z][side]["mean"] or 0 for z in labels], width, label=f"{side} measured")
        predicted = [zones[z][side].get("predicted") for z in labels]
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
    kpi = json.loads((logs_dir / f"kpi_{sid}.json").read_text(encoding="utf-8"))
    events = _events(logs_dir / f"fill_events_{sid}.jsonl")
    premium = _premium(logs_dir / f"premium_{sid}.csv")
    plots = _plots(logs_dir, sid, kpi, events, premium)
    lines = [f"# Session {sid}", "",
             f"{kpi['status']}, market {kpi['market']}, {kpi['duration_s']:.1f} s of {kpi['requested_duration_s']:g} s; "
             f"{kpi['entry_trades']} entry trades, {kpi['fill_events']} fill events, PnL {kpi['pnl_usdt']:+.4f} USDT "
             f"({kpi['pnl_note']}); fill model {kpi['fill_model']}, L2 source {kpi['l2_source']}.", ""]
    if kpi.get("replay"):
        r = kpi["replay"]
        lines += [f"Replay of {' + '.join(r['sources'])} ({r['recording_s']:.1f} s, speed {r['speed']}): recorded "
                  f"{', '.join(r['recorded'])}; synthesised {', '.join(r['synthesised']) or 'nothing'} "
                  "(simulator model pinned to the recorded mid).", ""]
    lines += ["## Acceptance criteria", "", "| | criterion | threshold | measured | result |", "|---|---|---|---|---|"]
    for c in kpi.get("acceptance", []):
        lines.append(f"| {c['id']} | {c['name']} | {c['threshold']} | {c['measured']} | "
                     f"{'PASS' if c['passed'] else '**FAIL**'} |")
    lines += ["", "## Fills per side", "",
              "| side | measure | count | min | max | mean | median | std | |", "|---|---|---|---|---|---|---|---|---|"]
    for side, measures in side_distributions(events).items():
        for measure, d in measures.items():
            lines.append(f"| {side} | {measure} | {d['count']} | {_fmt(d['min'])} | {_fmt(d['max'])} | "
                         f"{_fmt(d['mean'])} | {_fmt(d['median'])} | {_fmt(d['std'])} | {d['label']} |")
    lines += ["", "## Fill ratio per zone", "", "| zone | side | n | measured | predicted | 95 % interval | inside |",
              "|---|---|---|---|---|---|---|"]
    for zone, sides in kpi.get("fill_ratio_by_zone", {}).items():
        for side, row in sides.items():
            ci = row.get("predicted_ci95")
            lines.append(f"| {zone} | {side} | {row['n']} | {_fmt(row['mean'])} | {_fmt(row.get('predicted'))} | "
                         f"{'-' if ci is None else f'{ci[0]:.4f}-{ci[1]:.4f}'} | "
                         f"{'-' if row.get('within_ci95') is None else ('yes' if row['within_ci95'] else 'no')} |")
    lines += ["", "## Feeds", "", "| feed | connects | reconnects | causes | downtime s | untrusted s | messages | "
              "bad frames | gaps | resyncs |", "|---|---|---|---|---|---|---|---|---|---|"]
    for venue, f in kpi["feeds"].items():
        causes = ", ".join(f"{k} {v}" for k, v in f["reconnect_causes"].items()) or "-"
        lines.append(f"| {venue} | {f['connects']} | {f['reconnects']} | {causes} | {f['downtime_s']:.2f} | "
                     f"{f.get('untrusted_s', 0):.2f} | {f['messages']} | {f['bad_frames']} | {f['gaps']} | "
                     f"{f['resyncs']} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    path = logs_dir / f"report_{sid}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


MEASURES = ("available_volume", "fill_ratio", "slippage_bps")
CALL_OUT = 0.10  # a mean or a std/mean this much (relative) away from the first session's is called out


def compare(logs_dirs: list[Path]) -> str:
    """Sessions side by side (the latest in each folder), differences in fill distributions called out."""
    rows = []
    for folder in logs_dirs:
        sid = find_session(folder, None)
        kpi = json.loads((folder / f"kpi_{sid}.json").read_text(encoding="utf-8"))
        rows.append((folder, sid, kpi, side_distributions(_events(folder / f"fill_events_{sid}.jsonl"))))
    lines = ["# Session comparison", "", "| session | folder | L2 source | fill model | trades | fill events | "
             "PnL USDT | criteria passed |", "|---|---|---|---|---|---|---|---|"]
    for folder, sid, kpi, _ in rows:
        passed = sum(c["passed"] for c in kpi.get("acceptance", []))
        lines.append(f"| {sid} | {folder} | {kpi['l2_source']} | {kpi['fill_model']} | {kpi['entry_trades']} | "
                     f"{kpi['fill_events']} | {kpi['pnl_usdt']:+.4f} | {passed}/{len(kpi.get('acceptance', []))} |")
    lines += ["", "## Fill distributions", "", "| session | side | measure | count | mean | median | std | std/mean | |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _, sid, kpi, dists in rows:
        for side in SIDES:
            for measure in MEASURES:
                d = dists[side][measure]
                cv = None if not d["mean"] else d["std"] / d["mean"]
                lines.append(f"| {sid} ({kpi['l2_source']}) | {side} | {measure} | {d['count']} | {_fmt(d['mean'])} | "
                             f"{_fmt(d['median'])} | {_fmt(d['std'])} | {_fmt(cv, 3)} | {d['label']} |")
    notes = []
    _, base_sid, base_kpi, base = rows[0]
    for folder, sid, kpi, dists in rows[1:]:
        for side in SIDES:
            for measure in MEASURES:
                a, b = base[side][measure], dists[side][measure]
                if a["mean"] is None or b["mean"] is None:
                    continue
                if a["label"] != b["label"]:
                    notes.append(f"{side} {measure}: {b['label']} with {kpi['l2_source']} ({sid}) but {a['label']} "
                                 f"with {base_kpi['l2_source']} ({base_sid})")
                if a["mean"] and abs(b["mean"] - a["mean"]) / abs(a["mean"]) > CALL_OUT:
                    notes.append(f"{side} {measure}: mean {_fmt(b['mean'])} with {kpi['l2_source']} ({sid}) vs "
                                 f"{_fmt(a['mean'])} with {base_kpi['l2_source']} ({base_sid}), "
                                 f"{(b['mean'] - a['mean']) / a['mean']:+.0%}")
    lines += ["", "## Differences against the first session", ""]
    lines += [f"- {n}" for n in notes] or ["- none above 10 %"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.report", description=__doc__.split("\n\n")[0])
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
    except (ReportError, OSError, ValueError, KeyError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
