"""The report's "Pairs" section (issue 26), for a session that traded several pairs: a table of the pairs by
PnL, then trades (the first ``SHOWN_ROWS``, every one in ``pair_table_<id>.csv``), and a market-wide premium
heatmap (``report_<id>_pairs_heatmap.png``) drawn from ``pairs_<id>.csv``: pairs down, time across, each
cell the pair's premium minus its own mean over the session, the ``HEATMAP_MAX_PAIRS`` pairs whose premium
moved most (by std) shown. A one-pair session (no ``pairs`` block in its KPI, or one pair) has no section.

A panel file that cannot be used (too large, not a panel, too many pairs) is one line in the section, not a
failure of the report."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402

from actors.inputs import InputError  # noqa: E402
from actors.records.files import replacing  # noqa: E402
from actors.records.pairs import PairPanel, PairRow, read_panel  # noqa: E402
from actors.records.summary import market_label  # noqa: E402
from actors.tools.report_numbers import num  # noqa: E402
from actors.tools.report_plots import save_figure  # noqa: E402
from actors.tools.session_files import Session  # noqa: E402

SHOWN_ROWS = 30  # rows of the pair table in the report; every row is in pair_table_<id>.csv
HEATMAP_MAX_PAIRS = 60  # rows of the heatmap: the pairs whose premium moved most
HEATMAP_MAX_COLUMNS = 240  # time bins of the heatmap (each the mean of its samples)
HEATMAP_PLOT = "pairs_heatmap"
TABLE_COLUMNS = (
    "pair",
    "premium_mean_bps",
    "premium_std_bps",
    "latest_premium_bps",
    "latest_deviation_bps",
    "views",
    "entries",
    "exits",
    "fills",
    "pnl_usdt",
    "refusals",
    "resyncs",
    "untrusted_s",
)


def ranked(rows: Sequence[PairRow]) -> list[PairRow]:
    """The pairs as the report lists them: highest PnL first, then most trades, then by name."""
    return sorted(rows, key=lambda r: (-r.pnl_usdt, -r.entries, r.pair))


def write_pair_table(path: Path, rows: Sequence[PairRow]) -> Path:
    """``pair_table_<id>.csv``: a header (``TABLE_COLUMNS``), then a row per pair in ``ranked`` order (empty
    cell: no value). Written whole or not at all (``replacing``); DataWriteError otherwise."""
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(TABLE_COLUMNS)
    for r in ranked(rows):
        out.writerow(["" if v is None else v for v in (getattr(r, c) for c in TABLE_COLUMNS)])
    with replacing(path) as f:
        f.write(text.getvalue().encode("utf-8"))
    return path


_HEAD = [
    "| pair | premium mean bps | std bps | trades | fills | PnL USDT | refusals | resyncs | untrusted s |",
    "|---|---|---|---|---|---|---|---|---|",
]


def _row(r: PairRow) -> str:
    return (
        f"| {r.pair} | {num(r.premium_mean_bps, '+.1f')} | {num(r.premium_std_bps, '.1f')} | {r.entries} | "
        f"{r.fills} | {num(r.pnl_usdt, '+.4f')} | {r.refusals} | {r.resyncs} | {num(r.untrusted_s, '.1f')} |"
    )


def table_lines(rows: Sequence[PairRow], every: str) -> list[str]:
    """The pair table: the first ``SHOWN_ROWS`` in ``ranked`` order, then "and N more" pointing at ``every``."""
    order = ranked(rows)
    lines = _HEAD + [_row(r) for r in order[:SHOWN_ROWS]]
    if len(order) > SHOWN_ROWS:
        lines += ["", f"... and {len(order) - SHOWN_ROWS} more: every pair in {every}."]
    return lines + [""]


def section(s: Session, heatmap: Path, link: Callable[[Path], str]) -> list[str]:
    """The "Pairs" section, writing ``pair_table_<id>.csv`` and the heatmap at ``heatmap`` (``link``: a path as
    the report links it); [] for a one-pair session."""
    rows = s.pairs
    if len(rows) <= 1:
        return []
    write_pair_table(s.paths.pair_table, rows)
    traded = [r for r in rows if r.entries]
    total = sum(r.pnl_usdt for r in rows)
    every = f"[{s.paths.pair_table.name}]({link(s.paths.pair_table)})"
    lines = [
        "## Pairs",
        "",
        f"{len(rows)} pairs; {len(traded)} traded, {sum(r.entries for r in rows)} trades, "
        f"{sum(r.fills for r in rows)} fill events, PnL {num(total, '+.4f')} USDT over all pairs. By PnL, then "
        "trades (premium: each pair's mid premium over its views; untrusted s: time its books were not "
        f"trustworthy); every pair also in {every}:",
        "",
    ]
    lines += table_lines(rows, every)
    return lines + _heatmap_lines(s, heatmap, link)


def _heatmap_lines(s: Session, heatmap: Path, link: Callable[[Path], str]) -> list[str]:
    panel_file = s.paths.pairs
    if not panel_file.exists():
        return [f"No premium heatmap: the session wrote no {panel_file.name}.", ""]
    try:
        panel = read_panel(panel_file)
    except InputError as exc:
        return [f"No premium heatmap: {exc}.", ""]
    if not panel.rows:
        return [f"No premium heatmap: {panel_file.name} holds no samples.", ""]
    fig, shown = heatmap_figure(panel)
    fig.suptitle(market_label(s.kpi), fontsize=8, color="dimgray", x=0.99, ha="right")
    save_figure(fig, heatmap)
    lines = [
        f"Premium across the market ({panel.rows} samples of {len(panel.series)} pairs in {panel_file.name}; "
        f"the {len(shown)} pairs whose premium moved most, by std, top down; colour: the pair's premium minus "
        "its own mean over the session):",
        "",
        f"![{heatmap.name}]({link(heatmap)})",
        "",
    ]
    if panel.skipped:
        skipped = f"{panel.skipped} rows of {panel_file.name} skipped: not samples (a torn last row, or damage)."
        lines[0:0] = [skipped, ""]
    return lines


def heatmap_grid(panel: PairPanel, max_pairs: int = HEATMAP_MAX_PAIRS) -> tuple[list[str], Any, tuple[float, float]]:
    """The heatmap's data: the pairs shown (highest premium std first, at most ``max_pairs``), a (pairs x time
    bins) array of each pair's premium minus its mean over the panel (NaN: no sample in that bin), and the
    time span (first and last sample, session seconds)."""
    stds = {name: float(np.std(np.asarray(one.premium_bps))) for name, one in panel.series.items() if one.t_s}
    shown = sorted(stds, key=lambda name: (-stds[name], name))[:max_pairs]
    t0 = min(min(panel.series[name].t_s) for name in shown)
    t1 = max(max(panel.series[name].t_s) for name in shown)
    columns = max(1, min(HEATMAP_MAX_COLUMNS, len({t for name in shown for t in panel.series[name].t_s})))
    edges = np.linspace(t0, t1 if t1 > t0 else t0 + 1.0, columns + 1)
    grid = np.full((len(shown), columns), np.nan)
    for i, name in enumerate(shown):
        one = panel.series[name]
        t, premium = np.asarray(one.t_s), np.asarray(one.premium_bps)
        counts, _ = np.histogram(t, bins=edges)
        sums, _ = np.histogram(t, bins=edges, weights=premium - premium.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            grid[i] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return shown, grid, (float(edges[0]), float(edges[-1]))


def heatmap_figure(panel: PairPanel) -> tuple[Any, list[str]]:
    """The heatmap as a matplotlib figure not yet saved, and the pairs it shows (top down)."""
    shown, grid, (t0, t1) = heatmap_grid(panel)
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.17 * len(shown) + 1.6)))
    finite = np.abs(grid[np.isfinite(grid)])
    bound = float(np.percentile(finite, 98)) if finite.size else 1.0
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        interpolation="nearest",
        cmap="RdBu_r",
        vmin=-(bound or 1.0),
        vmax=bound or 1.0,
        extent=(t0, t1, len(shown) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(shown)), shown, fontsize=max(5, min(9, 400 // max(len(shown), 1))))
    ax.set_xlabel("session time (s)")
    more = len(panel.series) - len(shown)
    ax.set_title(
        f"Premium per pair, minus the pair's mean: the {len(shown)} most volatile pairs"
        + (f" ({more} more not shown)" if more else ""),
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="premium - pair mean (bps)", fraction=0.03, pad=0.02)
    return fig, shown


def compare_lines(sessions: Sequence[tuple[str, Sequence[PairRow]]]) -> list[str]:
    """The pairs of several sessions side by side (``(label, rows)`` each), when every one traded several pairs:
    for each of the first ``SHOWN_ROWS`` pairs by PnL over all sessions, a row per session; [] otherwise."""
    if len(sessions) < 2 or any(len(rows) <= 1 for _, rows in sessions):
        return []
    by_pair: dict[str, list[PairRow | None]] = {}
    for i, (_, rows) in enumerate(sessions):
        for row in rows:
            by_pair.setdefault(row.pair, [None] * len(sessions))[i] = row

    def key(pair: str) -> tuple[float, int, str]:
        present = [r for r in by_pair[pair] if r is not None]
        return -sum(r.pnl_usdt for r in present), -sum(r.entries for r in present), pair

    order = sorted(by_pair, key=key)
    lines = [
        "",
        "## Pairs",
        "",
        f"{len(by_pair)} pairs in all; by PnL over the sessions, then trades (-: the session had no such pair).",
        "",
        "| pair | session | premium mean bps | std bps | trades | fills | PnL USDT | resyncs | untrusted s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in order[:SHOWN_ROWS]:
        for (label, _), r in zip(sessions, by_pair[pair]):
            if r is None:
                lines.append(f"| {pair} | {label} | - | - | - | - | - | - | - |")
            else:
                lines.append(
                    f"| {pair} | {label} | {num(r.premium_mean_bps, '+.1f')} | {num(r.premium_std_bps, '.1f')} | "
                    f"{r.entries} | {r.fills} | {num(r.pnl_usdt, '+.4f')} | {r.resyncs} | {num(r.untrusted_s, '.1f')} |"
                )
    if len(order) > SHOWN_ROWS:
        rest = len(order) - SHOWN_ROWS
        lines += ["", f"... and {rest} more pairs (each session's pair_table_<id>.csv has them all)."]
    return lines
