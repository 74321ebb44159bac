"""The rows of a sweep: one per run (``SweepRow``), appended to rows.jsonl, read back, summed up per grid
point over its seeds or recordings (``by_point``), tabled (CSV; Markdown sorted by PnL, saying which market
the runs were on) and drawn (heatmap).

A row's line in rows.jsonl is flat: the run's fields and its grid values (``strategy.entry_bps``: every
grid key is a dotted config key, no field name is) side by side; a failed run has no result fields.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any, Sequence

import attrs
import msgspec

from actors.inputs import read_jsonl

# where a sweep's runs take their market from (session.market): recordings, or the simulator
REPLAY, SIM = "replay", "sim"


class SweepRow(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One finished run: what it ran and, unless it failed before the session ended, its results."""

    run_id: str
    market: str = REPLAY  # "replay" or "sim" (rows written before sweeps on the simulator are replays)
    recording: str = ""  # a replay's recording (its first file's name); "" on the simulated market
    values: dict[str, str] = {}  # grid key -> value, as labelled in the manifest
    status: str  # the session's status; "failed" when it did not run
    error: str  # why the run failed, or the session's fatal errors; "" when none
    seed: int | None = None
    replayed_s: float | None = None  # a replay: the recording's seconds replayed
    simulated_s: float | None = None  # the simulated market: the session's seconds
    trades: int | None = None  # entry trades
    closed_trades: int | None = None  # trades that held a position and closed it
    wins: int | None = None  # closed trades with a realized PnL above 0
    fill_events: int | None = None
    pnl_usdt: float | None = None  # realized, after fees
    unrealized_pnl_usdt: float | None = None  # open trades marked to mid at the end
    fees_usdt: float | None = None  # the fees (USDT) of the finished trades pnl_usdt counts: PnL + fees = before fees
    fill_ratio_by_zone: dict[str, float] | None = None  # "<zone> <side>" -> mean fill ratio
    reconnects: int | None = None
    risk_stopped: str | None = None  # why new entries stopped ([risk]), when they did
    realism_in_range: int | None = None  # realism statistics inside the real windows' 10-90 % range ...
    realism_judged: int | None = None  # ... of those measured against a reference (docs/realism.md)
    market_note: str = ""  # where the market came from and what the PnL measures (the report's first line)
    wall_s: float = 0.0


_FIELDS = frozenset(SweepRow.__struct_fields__) - {"values"}


def row_document(row: SweepRow) -> dict[str, Any]:
    """The row as its line in rows.jsonl holds it: the grid values after the run's id and its recording (a
    replay) or seed (the simulated market)."""
    fields = msgspec.to_builtins(row)
    values = fields.pop("values", {})
    head = {"run_id": fields.pop("run_id")}
    for key in ("recording", "seed") if row.market == SIM else ("recording",):
        if key in fields:
            head[key] = fields.pop(key)
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


# -- per grid point ---------------------------------------------------------------------------------


@attrs.frozen
class Point:
    """One grid point over its runs (seeds on the simulated market, recordings in a replay sweep): whether it
    makes money on most of them, or on one lucky one."""

    values: dict[str, str]
    runs: int  # rows, failed ones included
    failed: int  # runs without a PnL (they did not run to the end of a session)
    pnl_usdt: tuple[float, ...]  # realized PnL of each run that has one, in run order
    trades: int  # entry trades, over the runs
    closed_trades: int
    wins: int
    fees_usdt: float

    @property
    def mean_pnl_usdt(self) -> float | None:
        return statistics.fmean(self.pnl_usdt) if self.pnl_usdt else None

    @property
    def std_pnl_usdt(self) -> float | None:
        """The spread over the runs: their sample standard deviation (None below two runs)."""
        return statistics.stdev(self.pnl_usdt) if len(self.pnl_usdt) > 1 else None

    @property
    def in_profit(self) -> int:
        """Runs that made money (floating-point noise is no profit)."""
        return sum(round(p, 10) > 0 for p in self.pnl_usdt)

    @property
    def win_rate(self) -> float | None:
        """Closed trades that made money, pooled over the runs."""
        return self.wins / self.closed_trades if self.closed_trades else None

    def per_run(self, total: float) -> float | None:
        return total / len(self.pnl_usdt) if self.pnl_usdt else None


def by_point(rows: Sequence[SweepRow], grid_keys: Sequence[str]) -> list[Point]:
    """Each grid point's runs summed up, best mean PnL first (points without a PnL last)."""
    groups: dict[tuple[str, ...], list[SweepRow]] = {}
    for r in rows:
        groups.setdefault(tuple(r.values.get(k, "") for k in grid_keys), []).append(r)
    points = [
        Point(
            values=dict(zip(grid_keys, key)),
            runs=len(group),
            failed=sum(r.pnl_usdt is None for r in group),
            pnl_usdt=tuple(r.pnl_usdt for r in group if r.pnl_usdt is not None),
            trades=sum(r.trades or 0 for r in group if r.pnl_usdt is not None),
            closed_trades=sum(r.closed_trades or 0 for r in group if r.pnl_usdt is not None),
            wins=sum(r.wins or 0 for r in group if r.pnl_usdt is not None),
            fees_usdt=sum(r.fees_usdt or 0.0 for r in group if r.pnl_usdt is not None),
        )
        for key, group in groups.items()
    ]
    return sorted(points, key=lambda p: (p.mean_pnl_usdt is None, -(p.mean_pnl_usdt or 0.0)))


# -- tables -----------------------------------------------------------------------------------------


def _sorted(rows: list[SweepRow]) -> list[SweepRow]:
    return sorted(rows, key=lambda r: (r.pnl_usdt is None, -(r.pnl_usdt or 0.0), r.run_id))


def write_tables(out: Path, rows: list[SweepRow], grid_keys: list[str]) -> None:
    """results.csv (every run, every column), results_by_point.csv (each grid point over its runs) and
    results.md (both, sorted by PnL, after which market the runs were on)."""
    points = by_point(rows, grid_keys)
    _write_csv(out / "results.csv", rows, grid_keys)
    _write_points_csv(out / "results_by_point.csv", points, grid_keys)
    (out / "results.md").write_text("\n".join(_markdown(rows, points, grid_keys)) + "\n", encoding="utf-8")


def _write_csv(path: Path, rows: list[SweepRow], grid_keys: list[str]) -> None:
    zones = sorted({z for r in rows for z in r.fill_ratio_by_zone or {}})
    sim = any(r.market == SIM for r in rows)
    replay = any(r.market == REPLAY for r in rows) or not rows
    columns = [
        "run_id",
        *(["market"] if sim else []),
        *(["recording"] if replay else []),
        *grid_keys,
        "status",
        "seed",
        *(["replayed_s"] if replay else []),
        *(["simulated_s"] if sim else []),
        "trades",
        "closed_trades",
        "wins",
        "fill_events",
        "pnl_usdt",
        "unrealized_pnl_usdt",
        "fees_usdt",
        *(f"fill_ratio[{z}]" for z in zones),
        "reconnects",
        "risk_stopped",
        "realism_in_range",
        "realism_judged",
        "wall_s",
        "error",
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # None is written as an empty cell
        writer.writerow(columns)
        for r in _sorted(rows):
            cells = {**msgspec.to_builtins(r), **r.values}
            cells.update({f"fill_ratio[{z}]": v for z, v in (r.fill_ratio_by_zone or {}).items()})
            writer.writerow([cells.get(c) for c in columns])


def _write_points_csv(path: Path, points: list[Point], grid_keys: list[str]) -> None:
    columns = [
        *grid_keys,
        "runs",
        "failed",
        "pnl_mean_usdt",
        "pnl_std_usdt",
        "pnl_min_usdt",
        "pnl_max_usdt",
        "runs_in_profit",
        "trades",
        "closed_trades",
        "wins",
        "win_rate",
        "fees_usdt",
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for p in points:
            writer.writerow(
                [
                    *(p.values[k] for k in grid_keys),
                    p.runs,
                    p.failed,
                    _rounded(p.mean_pnl_usdt),
                    _rounded(p.std_pnl_usdt),
                    min(p.pnl_usdt, default=None),
                    max(p.pnl_usdt, default=None),
                    p.in_profit,
                    p.trades,
                    p.closed_trades,
                    p.wins,
                    _rounded(p.win_rate),
                    round(p.fees_usdt, 6),
                ]
            )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _markdown(rows: list[SweepRow], points: list[Point], grid_keys: list[str]) -> list[str]:
    sim = [r for r in rows if r.market == SIM]
    where = " on the simulated market" if sim else " on replayed recordings" if rows else ""
    lines = [f"# Sweep: {len(rows)} runs{where}", ""]
    notes = list(dict.fromkeys(r.market_note for r in rows if r.market_note))
    lines += [line for note in notes for line in (note, "")]
    if sim:
        lines += [_seeds_line(sim), ""]
    over = "seeds" if sim else "recordings"
    if any(p.runs > 1 for p in points):
        lines += _points_table(points, grid_keys, over)
    lines += _runs_table(rows, grid_keys, seeds=bool(sim))
    return lines


def _seeds_line(rows: list[SweepRow]) -> str:
    seeds = sorted({r.seed for r in rows if r.seed is not None})
    lengths = sorted({r.simulated_s for r in rows if r.simulated_s is not None})
    if not lengths:
        length = ""
    elif len(lengths) == 1:
        length = f"; {lengths[0]:g} s of market each"
    else:
        length = f"; between {lengths[0]:g} and {lengths[-1]:g} s of market"
    return (
        f"Seeds {', '.join(map(str, seeds))}: each seed is one path of the simulated market, and every grid point "
        f"runs on each of them{length}."
    )


def _points_table(points: list[Point], grid_keys: list[str], over: str) -> list[str]:
    cols = [
        *grid_keys,
        "runs",
        "PnL mean",
        "PnL std",
        "worst",
        "best",
        "in profit",
        "trades per run",
        "win rate",
        "before fees per run",
        "fees per run",
    ]
    lines = [
        f"## By grid point, over its {over}",
        "",
        f"Sorted by mean realized PnL (USDT, after fees, per run). PnL std: the spread over the {over} (sample "
        f"standard deviation); in profit: {over} whose realized PnL is above 0; win rate: closed trades that made "
        "money (after fees), pooled; before fees: the realized PnL plus the fees its trades paid. A point is robust "
        f"when most of its {over} agree, not when one of them is lucky.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for p in points:
        runs = str(p.runs) + (f" ({p.failed} failed)" if p.failed else "")
        win = "-" if p.win_rate is None else f"{p.win_rate:.0%} ({p.wins}/{p.closed_trades})"
        trades, fees = p.per_run(p.trades), p.per_run(p.fees_usdt)
        gross = None if p.mean_pnl_usdt is None or fees is None else p.mean_pnl_usdt + fees
        lines.append(
            "| "
            + " | ".join(
                [
                    *(p.values[k] for k in grid_keys),
                    runs,
                    _money(p.mean_pnl_usdt),
                    "-" if p.std_pnl_usdt is None else f"{p.std_pnl_usdt:.4f}",
                    _money(min(p.pnl_usdt, default=None)),
                    _money(max(p.pnl_usdt, default=None)),
                    f"{p.in_profit} of {len(p.pnl_usdt)}" if p.pnl_usdt else "-",
                    "-" if trades is None else f"{trades:.1f}",
                    win,
                    _money(gross),
                    "-" if fees is None else f"{fees:.4f}",
                ]
            )
            + " |"
        )
    return lines + [""]


def _runs_table(rows: list[SweepRow], grid_keys: list[str], *, seeds: bool) -> list[str]:
    first = ["seed"] if seeds else ["recording"]
    md_cols = [
        *first,
        *grid_keys,
        "trades",
        "fill events",
        "PnL USDT",
        "fees USDT",
        "fill ratio per zone",
        "realism in range",
        "reconnects",
        "status",
    ]
    lines = [
        "## Every run",
        "",
        "Sorted by realized PnL (USDT, after fees). Run files: "
        "`runs/<run_id>/`; every column, with wall times, in results.csv. Realism in range: the statistics of the "
        "real market (docs/realism.md) this run's market had inside the real windows' 10-90 % range.",
        "",
        "| run | " + " | ".join(md_cols) + " |",
        "|" + "---|" * (len(md_cols) + 1),
    ]
    for r in _sorted(rows):
        zone_ratios = ", ".join(f"{z} {v:.3f}" for z, v in sorted((r.fill_ratio_by_zone or {}).items())) or "-"
        status = r.status + (" (risk stop)" if r.risk_stopped else "") + (f": {r.error}" if r.error else "")
        realism = "-" if r.realism_judged is None else f"{r.realism_in_range} of {r.realism_judged}"
        where = _or_dash(r.seed) if seeds else r.recording
        fees = "-" if r.fees_usdt is None else f"{r.fees_usdt:.4f}"
        lines.append(
            f"| {r.run_id} | {where} | "
            + " | ".join(r.values.get(k, "") for k in grid_keys)
            + f" | {_or_dash(r.trades)} | {_or_dash(r.fill_events)} | {_money(r.pnl_usdt)} | {fees} | {zone_ratios} | "
            f"{realism} | {_or_dash(r.reconnects)} | {status} |"
        )
    return lines


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def write_heatmap(
    out: Path, rows: list[SweepRow], keys: list[str], order: dict[str, list[str]] | None = None
) -> Path | None:
    """Mean PnL over two grid keys (averaged over seeds or recordings and any other keys), as heatmap.png."""
    figure = heatmap_figure(rows, keys, order)
    if figure is None:
        return None
    import matplotlib.pyplot as plt

    path = out / "heatmap.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def heatmap_figure(rows: list[SweepRow], keys: list[str], order: dict[str, list[str]] | None = None) -> Any:
    """The heatmap's matplotlib figure, or None without two grid keys or a run with a PnL. The colours
    diverge from zero: red loses, green gains, the middle (yellow) is a PnL of 0 whatever the range, so a
    grid that only gains is all green and one that only loses all red. A cell of several runs shows their
    spread (standard deviation) under the mean. The axes follow ``order`` (the grid's own order of each key's
    labels), or sort numbers by value."""
    good = [r for r in rows if r.pnl_usdt is not None]
    if len(keys) < 2 or not good:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import CenteredNorm

    kx, ky = keys[:2]
    xs, ys = (_axis({r.values[k] for r in good}, (order or {}).get(k)) for k in (kx, ky))
    grid = [[float("nan")] * len(xs) for _ in ys]
    texts = [[""] * len(xs) for _ in ys]
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            cell = [r.pnl_usdt for r in good if r.values[kx] == x and r.values[ky] == y and r.pnl_usdt is not None]
            if cell:
                grid[j][i] = statistics.fmean(cell)
                texts[j][i] = f"{grid[j][i]:+.2f}" + (f"\n±{statistics.stdev(cell):.2f}" if len(cell) > 1 else "")
    widest = max((abs(v) for row in grid for v in row if v == v), default=0.0)
    norm = CenteredNorm(vcenter=0.0, halfrange=widest or 1.0)  # all zero: the middle colour, not the lowest
    fig, ax = plt.subplots(figsize=(2.4 + 1.3 * len(xs), 1.6 + 0.8 * len(ys)))
    image = ax.imshow(grid, cmap="RdYlGn", norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    for j, row in enumerate(texts):
        for i, text in enumerate(row):
            if text:
                ax.text(i, j, text, ha="center", va="center", fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("mean realized PnL (USDT)\n0 = break-even")
    ax.set_title(f"PnL by {kx} x {ky}\n{_heatmap_market(good)}", fontsize=10)
    fig.tight_layout()
    return fig


def _heatmap_market(rows: list[SweepRow]) -> str:
    """Which market a heatmap's runs were on, and over what each cell is a mean."""
    seeds = {r.seed for r in rows if r.market == SIM}
    if seeds:
        return f"simulated market, each cell a mean over {len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    recordings = {r.recording for r in rows}
    return f"replayed market, each cell a mean over {len(recordings)} recording{'s' if len(recordings) > 1 else ''}"


def _axis(labels: set[str], order: list[str] | None) -> list[str]:
    if order is not None:
        return [label for label in order if label in labels] + sorted(labels - set(order), key=_order)
    return sorted(labels, key=_order)


def _order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
