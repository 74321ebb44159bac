"""Sessions side by side: ``python -m actors.tools.report --compare LOGS_DIR...`` (the newest session of each
folder), their fill distributions, their pairs when every session traded several (``report_pairs``), and the
differences against the first session called out."""

from __future__ import annotations

from pathlib import Path

import attrs

from actors.core.acceptance import SIDES, SideDistributions, side_distributions
from actors.core.vocabulary import Side
from actors.records.kpi import Kpi
from actors.records.pairs import PairRow
from actors.tools.report_numbers import fmt, num
from actors.tools.report_pairs import compare_lines
from actors.tools.session_files import find_session, read_events, read_kpi_and_pairs, skip_note

CALL_OUT = 0.10  # a mean or a std/mean this much (relative) away from the first session's is called out


@attrs.frozen
class _Compared:
    folder: Path
    session_id: str
    kpi: Kpi
    sides: dict[Side, SideDistributions]
    pairs: tuple[PairRow, ...] = ()  # the KPI's pairs block: () in a one-pair session


def compare(logs_dirs: list[Path]) -> str:
    """Sessions side by side (the newest in each folder), differences in fill distributions called out."""
    rows, skips = [], []
    for folder in logs_dirs:
        paths = find_session(folder, None)
        kpi, pairs = read_kpi_and_pairs(paths.kpi)
        fills = read_events(paths.fill_events)
        if fills.skipped:
            skips.append(f"- {folder}: {skip_note(paths.fill_events, fills)}")
        rows.append(_Compared(folder, paths.session_id, kpi, side_distributions(fills.events), pairs))
    lines = _sessions(rows)
    if skips:
        lines += [""] + skips
    lines += _distributions(rows)
    lines += compare_lines([(f"{row.session_id} (#{i})", row.pairs) for i, row in enumerate(rows, 1)])
    lines += ["", "## Differences against the first session", ""]
    lines += [f"- {n}" for n in _differences(rows)] or ["- none above 10 %"]
    return "\n".join(lines) + "\n"


def _sessions(rows: list[_Compared]) -> list[str]:
    lines = [
        "# Session comparison",
        "",
        "| session | folder | L2 source | fill model | sizing | trades | mean size BTC | filled share "
        "| slippage bps BUY/SELL | fill events | PnL USDT | criteria passed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kpi = row.kpi
        passed = sum(c.passed for c in kpi.acceptance)
        orders = kpi.orders
        size = orders.planned_qty_btc / orders.parents if orders.parents else None
        slip = "/".join(fmt(x, 3) for x in (kpi.slippage_bps.BUY.mean, kpi.slippage_bps.SELL.mean))
        lines.append(
            f"| {row.session_id} | {row.folder} | {kpi.l2_source} | {kpi.fill_model} | {orders.sizing} | "
            f"{kpi.entry_trades} | {fmt(size)} | {fmt(orders.filled_share, 3)} | {slip} | "
            f"{kpi.fill_events} | {num(kpi.pnl_usdt, '+.4f')} | {passed}/{len(kpi.acceptance)} |"
        )
    return lines


def _distributions(rows: list[_Compared]) -> list[str]:
    lines = [
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
                    f"{fmt(d.mean)} | {fmt(d.median)} | {fmt(d.std)} | {fmt(d.std_over_mean, 3)} | "
                    f"{d.label} |"
                )
    return lines


def _differences(rows: list[_Compared]) -> list[str]:
    """Each later session's distributions against the first's: a kind that differs, a mean off by CALL_OUT."""
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
                        f"{side} {measure}: mean {fmt(b.mean)} {there} vs {fmt(a.mean)} {here}, "
                        f"{(b.mean - a.mean) / a.mean:+.0%}"
                    )
    return notes
