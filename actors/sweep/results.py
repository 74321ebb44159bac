"""The rows of a sweep: one per run (``SweepRow``), appended to rows.jsonl, read back, tabled (CSV,
Markdown sorted by PnL) and drawn (heatmap).

A row's line in rows.jsonl is flat: the run's fields and its grid values (``strategy.entry_bps``: every
grid key is a dotted config key, no field name is) side by side; a failed run has no result fields.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import msgspec

from actors.inputs import read_jsonl


class SweepRow(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One finished run: what it ran and, unless it failed before the session ended, its results."""

    run_id: str
    recording: str  # the recording's (first) file name
    values: dict[str, str] = {}  # grid key -> value, as labelled in the manifest
    status: str  # the session's status; "failed" when it did not run
    error: str  # why the run failed, or the session's fatal errors; "" when none
    seed: int | None = None
    replayed_s: float | None = None
    trades: int | None = None
    fill_events: int | None = None
    pnl_usdt: float | None = None
    unrealized_pnl_usdt: float | None = None
    fill_ratio_by_zone: dict[str, float] | None = None  # "<zone> <side>" -> mean fill ratio
    reconnects: int | None = None
    wall_s: float = 0.0


_FIELDS = frozenset(SweepRow.__struct_fields__) - {"values"}


def row_document(row: SweepRow) -> dict[str, Any]:
    """The row as its line in rows.jsonl holds it: the grid values after the run's id and recording."""
    fields = msgspec.to_builtins(row)
    values = fields.pop("values", {})
    head = {"run_id": fields.pop("run_id"), "recording": fields.pop("recording")}
    return {**head, **values, **fields}


def row_from_document(document: dict[str, Any]) -> SweepRow:
    """A row from its line; msgspec.ValidationError when it is not one."""
    fields = {k: v for k, v in document.items() if k in _FIELDS}
    values = {k: v for k, v in document.items() if k not in _FIELDS}
    return msgspec.convert({**fields, "values": values}, SweepRow)


def read_rows(path: Path) -> list[SweepRow]:
    """The rows of rows.jsonl; a line that is not a row (torn by an interrupt) is left out: that run is
    simply done again."""
    if not path.exists():
        return []
    rows = []
    for _, document in read_jsonl(path, dict[str, Any], on_bad=lambda line: None):
        try:
            rows.append(row_from_document(document))
        except msgspec.ValidationError:
            continue
    return rows


def _sorted(rows: list[SweepRow]) -> list[SweepRow]:
    return sorted(rows, key=lambda r: (r.pnl_usdt is None, -(r.pnl_usdt or 0.0), r.run_id))


def write_tables(out: Path, rows: list[SweepRow], grid_keys: list[str]) -> None:
    zones = sorted({z for r in rows for z in r.fill_ratio_by_zone or {}})
    columns = [
        "run_id",
        "recording",
        *grid_keys,
        "status",
        "seed",
        "replayed_s",
        "trades",
        "fill_events",
        "pnl_usdt",
        "unrealized_pnl_usdt",
        *(f"fill_ratio[{z}]" for z in zones),
        "reconnects",
        "wall_s",
        "error",
    ]
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # None is written as an empty cell
        writer.writerow(columns)
        for r in _sorted(rows):
            ratios = r.fill_ratio_by_zone or {}
            writer.writerow(
                [
                    r.run_id,
                    r.recording,
                    *(r.values.get(k, "") for k in grid_keys),
                    r.status,
                    r.seed,
                    r.replayed_s,
                    r.trades,
                    r.fill_events,
                    r.pnl_usdt,
                    r.unrealized_pnl_usdt,
                    *(ratios.get(z, "") for z in zones),
                    r.reconnects,
                    r.wall_s,
                    r.error,
                ]
            )
    md_cols = [
        "recording",
        *grid_keys,
        "trades",
        "fill events",
        "PnL USDT",
        "fill ratio per zone",
        "reconnects",
        "status",
    ]
    lines = [
        f"# Sweep: {len(rows)} runs",
        "",
        "Sorted by realized PnL (USDT, after fees). Run files: "
        "`runs/<run_id>/`; every column, with wall times, in results.csv.",
        "",
        "| run | " + " | ".join(md_cols) + " |",
        "|" + "---|" * (len(md_cols) + 1),
    ]
    for r in _sorted(rows):
        zone_ratios = ", ".join(f"{z} {v:.3f}" for z, v in sorted((r.fill_ratio_by_zone or {}).items())) or "-"
        status = r.status + (f": {r.error}" if r.error else "")
        pnl = "-" if r.pnl_usdt is None else f"{r.pnl_usdt:+.4f}"
        lines.append(
            f"| {r.run_id} | {r.recording} | "
            + " | ".join(r.values.get(k, "") for k in grid_keys)
            + f" | {_or_dash(r.trades)} | {_or_dash(r.fill_events)} | {pnl} | {zone_ratios} | "
            f"{_or_dash(r.reconnects)} | {status} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def write_heatmap(out: Path, rows: list[SweepRow], keys: list[str]) -> Path | None:
    """Mean PnL over two grid keys (averaged over recordings and any other keys), as heatmap.png."""
    figure = heatmap_figure(rows, keys)
    if figure is None:
        return None
    import matplotlib.pyplot as plt

    path = out / "heatmap.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def heatmap_figure(rows: list[SweepRow], keys: list[str]) -> Any:
    """The heatmap's matplotlib figure, or None without two grid keys or a run with a PnL. The colours
    diverge from zero: red loses, green gains, the middle (yellow) is a PnL of 0 whatever the range, so a
    grid that only gains is all green and one that only loses all red."""
    good = [r for r in rows if r.pnl_usdt is not None]
    if len(keys) < 2 or not good:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import CenteredNorm

    kx, ky = keys[:2]
    xs = sorted({r.values[kx] for r in good}, key=_order)
    ys = sorted({r.values[ky] for r in good}, key=_order)
    grid = [[float("nan")] * len(xs) for _ in ys]
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            cell = [r.pnl_usdt for r in good if r.values[kx] == x and r.values[ky] == y and r.pnl_usdt is not None]
            if cell:
                grid[j][i] = sum(cell) / len(cell)
    widest = max((abs(v) for row in grid for v in row if v == v), default=0.0)
    norm = CenteredNorm(vcenter=0.0, halfrange=widest or 1.0)  # all zero: the middle colour, not the lowest
    fig, ax = plt.subplots(figsize=(2.4 + 1.3 * len(xs), 1.4 + 0.8 * len(ys)))
    image = ax.imshow(grid, cmap="RdYlGn", norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    for j, row in enumerate(grid):
        for i, v in enumerate(row):
            if v == v:
                ax.text(i, j, f"{v:+.2f}", ha="center", va="center", fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("mean realized PnL (USDT)\n0 = break-even")
    ax.set_title("PnL by " + kx + " x " + ky)
    fig.tight_layout()
    return fig


def _order(label: str) -> tuple:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
