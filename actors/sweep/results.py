"""The rows of a sweep: read back, tabled (CSV, Markdown sorted by PnL) and drawn (heatmap)."""


from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

# -- results ---------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line torn by an interrupt: that run is simply done again
    return rows


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r.get("pnl_usdt") is None, -(r.get("pnl_usdt") or 0.0), r["run_id"]))


def write_tables(out: Path, rows: list[dict], grid_keys: list[str]) -> None:
    zones = sorted({z for r in rows for z in r.get("fill_ratio_by_zone", {})})
    columns = ["run_id", "recording", *grid_keys, "status", "seed", "replayed_s", "trades", "fill_events", "pnl_usdt",
               "unrealized_pnl_usdt", *(f"fill_ratio[{z}]" for z in zones), "reconnects", "wall_s", "error"]
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in _sorted(rows):
            ratios = r.get("fill_ratio_by_zone", {})
            writer.writerow([r.get(c, "") if not c.startswith("fill_ratio[") else ratios.get(c[11:-1], "")
                             for c in columns])
    md_cols = ["recording", *grid_keys, "trades", "fill events", "PnL USDT", "fill ratio per zone", "reconnects",
               "status"]
    lines = [f"# Sweep: {len(rows)} runs", "", "Sorted by realized PnL (USDT, after fees). Run files: "
             "`runs/<run_id>/`; every column, with wall times, in results.csv.", "",
             "| run | " + " | ".join(md_cols) + " |", "|" + "---|" * (len(md_cols) + 1)]
    for r in _sorted(rows):
        ratios = ", ".join(f"{z} {v:.3f}" for z, v in sorted(r.get("fill_ratio_by_zone", {}).items())) or "-"
        status = r["status"] + (f": {r['error']}" if r.get("error") else "")
        pnl = "-" if r.get("pnl_usdt") is None else f"{r['pnl_usdt']:+.4f}"
        lines.append(f"| {r['run_id']} | {r['recording']} | " + " | ".join(str(r.get(k, "")) for k in grid_keys)
                     + f" | {r.get('trades', '-')} | {r.get('fill_events', '-')} | {pnl} | {ratios} | "
                       f"{r.get('reconnects', '-')} | {status} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_heatmap(out: Path, rows: list[dict], keys: list[str]) -> Path | None:
    """Mean PnL over two grid keys (averaged over recordings and any other keys)."""
    good = [r for r in rows if r.get("pnl_usdt") is not None]
    if len(keys) < 2 or not good:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kx, ky = keys[:2]
    xs = sorted({r[kx] for r in good}, key=_order)
    ys = sorted({r[ky] for r in good}, key=_order)
    grid = [[float("nan")] * len(xs) for _ in ys]
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            cell = [r["pnl_usdt"] for r in good if r[kx] == x and r[ky] == y]
            if cell:
                grid[j][i] = sum(cell) / len(cell)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(xs), 1.4 + 0.8 * len(ys)))
    image = ax.imshow(grid, cmap="RdYlGn", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    for j, row in enumerate(grid):
        for i, v in enumerate(row):
            if v == v:
                ax.text(i, j, f"{v:+.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="mean realized PnL (USDT)")
    ax.set_title("PnL by " + kx + " x " + ky)
    fig.tight_layout()
    path = out / "heatmap.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _order(label: str) -> tuple:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


