"""The report's plots: the premium with its baseline and the trades by direction, fill ratio per zone
against the calibration, available-volume histograms and the equity curve. ``figures`` returns them
unsaved (the tests read them); the report saves them beside itself."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib
import msgspec

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from actors.core.acceptance import SIDES  # noqa: E402
from actors.core.vocabulary import Direction, Leg  # noqa: E402
from actors.records.files import replacing  # noqa: E402
from actors.records.kpi import Kpi  # noqa: E402
from actors.records.summary import market_label  # noqa: E402
from actors.tools.session_files import Session  # noqa: E402
from actors.tools.trades import DIRECTION_WORDS, FillLine, max_drawdown, realized_curve  # noqa: E402

SIMPLE_MODEL_NOTE = (
    "simple fill model: an order fills whatever the depth allows, so the ratio is 1.0 unless depth runs out"
)


def clean(x: float) -> float:
    return round(x, 10) + 0.0  # floating-point noise (4.1e-17) reads 0; + 0.0 turns -0.0 into 0.0


def zone_order(label: str) -> tuple[tuple[float, ...], str]:
    """Sort key of a zone label ("5/5" before "10/12"): its numbers in order (a sort key only; the
    label is not read back into a zone)."""
    return tuple(float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", label)), label


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
    labels = sorted(zones, key=zone_order)
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
            label=f"max drawdown {clean(drawdown.depth_usdt):.4f} USDT",
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
    """The report's plots, by name (``report_<id>_<name>.png``), as matplotlib figures not yet saved; each says
    at its top which market its figures come from (simulated, replayed, live)."""
    note = market_label(s.kpi)
    out = {}
    for name, plot in PLOTS.items():
        fig = plot(s)
        fig.suptitle(note, fontsize=8, color="dimgray", x=0.99, ha="right")
        out[name] = fig
    return out


def save_figure(fig: Any, path: Path) -> None:
    """The figure as a PNG at ``path``, whole or not at all (``replacing``: no truncated PNG on a full disk)."""
    try:
        fig.tight_layout()
        with replacing(path) as f:
            fig.savefig(f, dpi=90, format="png")
    finally:
        plt.close(fig)


# -- the report's sections -------------------------------------------------------------------------
