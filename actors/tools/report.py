"""Session report: ``python -m actors.tools.report LOGS_DIR [--session ID] [--out FILE]``, or
``python -m actors.tools.report --compare LOGS_DIR... [--out FILE]``.

Reads a session's files (kpi, fill events, premium series) and writes ``report_<id>.md`` (or ``--out``)
with PNG plots beside it, and ``trades_<id>.csv`` (one row per trade, ``actors.tools.trades``). The report,
in the order a trader reads it: a header (status, start, trades, PnL, fill model and calibration),
acceptance criteria C1-C7 with the thresholds they were held to, session totals (win rate, average, best
and worst trade, max drawdown, fees per venue, balances before and after, turnover), for a session of several
pairs their table and premium heatmap (``report_pairs``: ``pair_table_<id>.csv``, the heatmap PNG), the trades, per-side
distributions of available volume, fill ratio and slippage (FIXED or DISPERSED, and what that means),
fill ratio per zone against the calibration, the feeds' health, and plots: the premium with its baseline
and the trades by direction, fill ratio per zone, available-volume histograms and the equity curve.
Also written at the end of every session run from the command line.

Without ``--session``, the newest session in LOGS_DIR is the one that started last (the KPI's
``started_utc``; the KPI file's modification time for files written before it), not the greatest id.

A KPI file is read with a bounded read (16 MiB) and decoded strictly into the KPI document's type
(``actors.records.kpi.Kpi``, fields added since older files were written have defaults): anything
else (``[]``, ``42``, ``{}``, a missing field) is one line ``report: FILE: not a KPI file (...)`` and
exit status 2, bad input (the rule of every command: docs/reliability.md); a report the disk cannot take
(full, an I/O error) is one line and exit status 1, and leaves no file cut short. Fill-event lines of the wrong
shape are skipped and counted, and the report says how many.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import attrs

from actors.config import ConfigError, read_slippage_calibration
from actors.conventions import ExitCode, write_failure_status
from actors.core.acceptance import SIDES, side_distributions
from actors.records.files import replacing
from actors.records.kpi import Kpi, ReplayInfo
from actors.records.summary import market_label
from actors.tools import ledger_report, realism, report_pairs, slippage_report
from actors.tools.report_compare import compare
from actors.tools.report_numbers import fmt, num
from actors.tools.report_plots import SIMPLE_MODEL_NOTE, clean, figures, save_figure, zone_order
from actors.tools.session_files import ReportError, Session, find_session, load_session, skip_note
from actors.tools.trades import Trade, clock_time, max_drawdown, totals, write_trades_csv
from supervision import most_frequent_first

FULL_TABLE_UP_TO = 20  # trades; above it the report shows the first FIRST_TRADES and the WORST_TRADES
FIRST_TRADES, WORST_TRADES = 10, 5
DESCRIPTION = (
    "Write a session's report (report_<id>.md, PNG plots beside it, trades_<id>.csv), or with --compare put "
    "the newest session of each LOGS_DIR side by side."
)


# -- numbers and words -----------------------------------------------------------------------------


_AMOUNT = {"BTC": ".8f", "KRW": ",.2f", "USDT": ",.4f"}
MANY_ASSETS = 12  # more balances than this (a market of many coins): the unchanged coins are not listed


def _amount(x: float | None, ccy: str) -> str:
    return num(x, ("+" if x is not None and x < 0 else "") + _AMOUNT.get(ccy, ".6g"))


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


def _model(kpi: Kpi) -> str:
    c = kpi.calibration
    if c is not None:
        return f"calibrated fill model: calibration {c.version} ({c.mode}), zones {', '.join(c.zones) or '-'}"
    if kpi.fill_model == "simple":
        return "simple fill model (no calibration)"
    return f"fill model {kpi.fill_model} (the KPI file names no calibration)"


def _sizing(kpi: Kpi) -> str:
    """How the session sized its trades, in words (docs/slippage.md)."""
    o = kpi.orders
    if o.sizing == "fixed":
        text = "fixed order size"
    else:
        mean = o.planned_qty_btc / o.parents if o.parents else 0.0
        text = f"depth-aware sizing (mean {mean:.4g} BTC planned, {fmt(o.filled_share, 3)} of it filled)"
    if o.parents and o.children > o.parents:
        trades = f"{o.parents} trade" + ("s" if o.parents != 1 else "")
        text += f", {o.children} child orders for {trades} ({o.parents_stopped_early} stopped early)"
    if o.slippage_calibration:
        text += f", slippage drift model {o.slippage_calibration}"
    return text


def _header(s: Session) -> list[str]:
    kpi = s.kpi
    started = _utc(kpi.started_utc)
    lines = [
        f"# Session {s.paths.session_id}",
        "",
        realism.market_sentence(kpi),  # where the market came from, and what the PnL measures
        "",
        f"{kpi.status.capitalize()} {kpi.market} session{f' started {started}' if started else ''}: "
        f"traded {kpi.duration_s:.1f} s of the {kpi.requested_duration_s:g} s asked. {kpi.entry_trades} trades "
        f"({kpi.closed_trades} closed, {kpi.open_trades} open at the end), {kpi.fill_events} fill events. "
        f"PnL {num(kpi.pnl_usdt, '+.4f')} USDT ({num(kpi.pnl_krw, '+,.0f')} KRW) realized after fees; "
        f"open trades marked {num(kpi.unrealized_pnl_usdt, '+.4f')} USDT. {_capital(_model(kpi))}; "
        f"L2 source {kpi.l2_source}; order latency {kpi.latency_ms.fixed:g} ± {kpi.latency_ms.jitter:g} ms; "
        f"{_sizing(kpi)}.",
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
        lines += [skip_note(s.paths.fill_events, s.fills) + ".", ""]
    return lines


def _not_final(kpi: Kpi) -> list[str]:
    """A KPI file that is not the session's final one (it is still running, or its final write failed)."""
    if kpi.final:
        return []
    return [
        f"**Not final:** this KPI file is a snapshot taken while the session ran (status {kpi.status}, "
        f"{kpi.duration_s:.1f} s traded): the session is still running, or could not write its final KPI file "
        "(its summary on the terminal has the final figures). Trades and fills below are from the fill events.",
        "",
    ]


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
        lines.append(f"| {venue} | {ccy} | {_amount(paid[key], ccy)} | {num(in_usdt.get(key), ',.4f')} |")
    lines.append(f"| **all** | | | **{num(sum(in_usdt.values()), ',.4f')}** |")
    return lines + [""]


def _balances(kpi: Kpi) -> list[str]:
    if not kpi.initial_balances and not kpi.balances:
        return []
    lines = ["| balance | asset | before | after | change |", "|---|---|---|---|---|"]
    assets = sum(len(b) for b in kpi.initial_balances.values())
    unchanged = 0
    for venue in dict.fromkeys([*kpi.initial_balances, *kpi.balances]):
        before, after = kpi.initial_balances.get(venue, {}), kpi.balances.get(venue, {})
        for asset in dict.fromkeys([*before, *after]):
            a, b = before.get(asset), after.get(asset)
            change = None if a is None or b is None else b - a
            if assets > MANY_ASSETS and change == 0 and asset not in _AMOUNT:
                unchanged += 1  # a market of many coins: the coins no trade touched are counted, not listed
                continue
            lines.append(
                f"| {venue} | {asset} | {_amount(a, asset)} | {_amount(b, asset)} | "
                f"{num(change, '+' + _AMOUNT.get(asset, '.6g'))} |"
            )
    if unchanged:
        lines += ["", f"{unchanged} more coin balances (venue x coin) did not change (every one: kpi_<id>.json)."]
    return lines + [""]


def _totals(s: Session) -> list[str]:
    kpi, t = s.kpi, totals(s.trades)
    lines = ["## Totals", ""]
    extra = [f"{t.open} open at the end"] + ([f"{t.no_position} never held a position"] if t.no_position else [])
    won = "" if t.win_rate is None else f"; win rate {t.win_rate:.0%} ({t.wins} of {t.closed} made money)"
    lines.append(f"- Closed trades: {t.closed} ({', '.join(extra)}){won}.")
    if t.best is not None and t.worst is not None:
        lines.append(
            f"- PnL per closed trade: average {num(t.average_usdt, '+.4f')}, best {num(t.best.pnl_usdt, '+.4f')} "
            f"(trade {t.best.trade_id}), worst {num(t.worst.pnl_usdt, '+.4f')} (trade {t.worst.trade_id}) USDT."
        )
    equity = kpi.pnl_usdt + kpi.unrealized_pnl_usdt
    lines.append(
        f"- PnL: realized {num(kpi.pnl_usdt, '+.4f')} USDT after fees, open trades marked "
        f"{num(kpi.unrealized_pnl_usdt, '+.4f')}, equity at the end {num(equity, '+.4f')}."
    )
    curve, source = s.equity_curve()
    dd = max_drawdown(curve)
    if dd is None or clean(dd.depth_usdt) == 0:
        lines.append(f"- Max drawdown: none (on {source}, it never fell).")
    else:
        lines.append(
            f"- Max drawdown: {num(dd.depth_usdt, '.4f')} USDT on {source}: from {num(dd.peak_usdt, '+.4f')} "
            f"at {dd.peak_t_s:.1f} s to {num(dd.trough_usdt, '+.4f')} at {dd.trough_t_s:.1f} s."
        )
    by_venue: dict[str, float] = {}
    for e in s.events:
        by_venue[str(e.venue)] = by_venue.get(str(e.venue), 0.0) + e.notional_usdt
    split = ", ".join(f"{v} {num(n, ',.2f')}" for v, n in sorted(by_venue.items()) if n)
    lines.append(f"- Turnover: {num(t.turnover_usdt, ',.2f')} USDT filled" + (f" ({split})." if split else "."))
    lines.append(f"- Fees: {num(t.fees_usdt, ',.4f')} USDT in all (KRW at each leg's FX rate, BTC at its price).")
    if kpi.refusals:
        refused = ", ".join(f"{k} {n}" for k, n in most_frequent_first(kpi.refusals))
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
        f"{t.direction_words} | {t.zone} | {num(t.size_btc, '.6f')} | {num(t.entry_premium_bps, '.1f')} | "
        f"{num(t.exit_premium_bps, '.1f')} | {num(t.fees_usdt, '.4f')} | {num(t.slippage_bps, '.2f')} | "
        f"{t.exit_reason} | {num(t.pnl_usdt, '+.4f')} | {num(t.pnl_krw, '+,.0f')} |"
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
                disagree.append(f"{side} {measure} (KPI: {own.count} legs, median {fmt(own.median)})")
            lines.append(
                f"| {side} | {measure} | {d.count} | {fmt(d.min)} | {fmt(d.max)} | {fmt(d.mean)} | "
                f"{fmt(d.median)} | {fmt(d.std)} | {fmt(median)} | {d.label} |"
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
    for zone in sorted(kpi.fill_ratio_by_zone, key=zone_order):
        sides = kpi.fill_ratio_by_zone[zone]
        for side in SIDES:
            row = sides.of(side)
            ci = row.predicted_ci95
            lines.append(
                f"| {zone} | {side} | {row.n} | {fmt(row.mean)} | {fmt(row.predicted)} | "
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
        save_figure(fig, path)
        plots.append(path)
    lines = _header(s) + _not_final(s.kpi) + realism.section(s.kpi) + _criteria(s.kpi) + _totals(s)
    heatmap = paths.plot(report_pairs.HEATMAP_PLOT) if out is None else page.with_name(f"{page.stem}_pairs_heatmap.png")
    lines += report_pairs.section(s, heatmap, lambda target: _link(target, page))  # several pairs only
    inventory_plot = paths.plot("inventory") if out is None else page.with_name(f"{page.stem}_inventory.png")
    lines += ledger_report.section(s, inventory_plot) + _trades(s, _link(paths.trades, page))
    slippage_plot = paths.plot("slippage") if out is None else page.with_name(f"{page.stem}_slippage.png")
    lines += _fills(s) + _slippage(s, slippage_plot) + _zones(s.kpi) + _feeds(s.kpi)
    lines += ["## Plots", ""] + [f"![{p.name}]({_link(p, page)})" for p in plots] + [""]
    with replacing(page) as f:  # whole or not at all, as every file of the report
        f.write("\n".join(lines).encode("utf-8"))
    return page


def _slippage(s: Session, plot: Path) -> list[str]:
    """Predicted against realized slippage, judged against the session's drift model, and the PnL
    attribution (``actors.tools.slippage_report``); nothing for fill events written before predictions."""
    orders = s.kpi.orders
    model, name = None, None
    if orders.slippage_calibration_path:
        name = f"{orders.slippage_calibration} ({orders.slippage_calibration_path})"
        try:
            model = read_slippage_calibration(orders.slippage_calibration_path)
        except ConfigError as exc:
            return [f"Slippage not judged: the session's drift model cannot be read now ({exc}).", ""]
    return slippage_report.section(s.events, model, name, plot, note=market_label(s.kpi))


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
            return ExitCode.OK
        if len(args.logs_dirs) != 1:
            parser.error("one LOGS_DIR, or several with --compare")
        path = write_report(Path(args.logs_dirs[0]), args.session, Path(args.out) if args.out else None)
    except (ReportError, ValueError) as exc:  # InputError is a ValueError
        print(f"report: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:  # DataWriteError: the report, a plot or the trades could not be written
        print(f"report: {exc}", file=sys.stderr)
        return write_failure_status(exc)
    print(f"wrote {path}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
