"""The report's slippage section (D85-X): predicted against realized slippage per venue, side and size
bucket, judged against the drift model; the PnL of closed trades attributed to the premium captured,
fees, slippage and latency drift; and a scatter plot of predicted against realized slippage.

Attribution of one leg, in USDT (KRW at the leg's FX rate), with ``s`` = +1 for a sale and -1 for a
purchase of ``q`` BTC:

- latency drift ``s * q * (best_price - decision_price)``: the touch moved while the order travelled;
- slippage ``s * q * (avg_price - best_price)``: the walk beyond the touch it met (never positive);
- fees: the fee, in USDT (a BTC fee at the leg's price);
- premium captured: the trade's PnL minus the three above, that is what the trade made at the prices it
  decided on (including what leftover BTC was marked at).

Fill events written before ``decision_price`` and ``predicted_slippage_bps`` existed give no section.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import attrs
import msgspec

from actors.core.slippage import MIN_CHECKED, BucketCheck, SlippageModel, check
from actors.core.vocabulary import Venue
from actors.tools.trades import FillLine

SHARE_NEEDED = 0.8  # of the judged buckets that must agree with the model


@attrs.frozen
class Attribution:
    trades: int
    pnl_usdt: float
    premium_usdt: float
    fees_usdt: float
    slippage_usdt: float
    latency_usdt: float


def attribute(legs: Sequence[FillLine]) -> Attribution | None:
    """The closed trades' PnL in its four parts; None when the legs lack decision prices."""
    by_trade: dict[int, list[FillLine]] = {}
    for leg in legs:
        if leg.trade_id is not None:
            by_trade.setdefault(leg.trade_id, []).append(leg)
    closed = [t for t in by_trade.values() if any(leg.trade_pnl_usdt is not None for leg in t)]
    if not closed or any(leg.decision_price is None for t in closed for leg in t if leg.filled_qty > 0):
        return None
    pnl = fees = slippage = latency = 0.0
    for trade in closed:
        pnl += next(leg.trade_pnl_usdt for leg in trade if leg.trade_pnl_usdt is not None) or 0.0
        for leg in trade:
            if leg.filled_qty <= 0 or leg.avg_price is None or leg.decision_price is None or leg.best_price is None:
                continue
            s = 1.0 if leg.side == "SELL" else -1.0
            latency += leg.usdt(s * leg.filled_qty * (leg.best_price - leg.decision_price), leg.quote_ccy) or 0.0
            slippage += leg.usdt(s * leg.filled_qty * (leg.avg_price - leg.best_price), leg.quote_ccy) or 0.0
            fees -= leg.usdt(leg.fee, leg.fee_ccy) or 0.0
    return Attribution(len(closed), pnl, pnl - fees - slippage - latency, fees, slippage, latency)


@attrs.frozen
class Verdict:
    judged: int  # buckets with at least MIN_CHECKED legs
    agreeing: int

    @property
    def passed(self) -> bool | None:
        return None if not self.judged else self.agreeing >= SHARE_NEEDED * self.judged

    def text(self) -> str:
        if not self.judged:
            return f"no bucket has {MIN_CHECKED} legs"
        share = self.agreeing / self.judged
        return f"{self.agreeing} of {self.judged} buckets ({share:.0%}) agree"


def verdict(checks: list[BucketCheck]) -> Verdict:
    judged = [c for c in checks if c.agrees is not None]
    return Verdict(len(judged), sum(1 for c in judged if c.agrees))


def _n(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{round(x, digits) + 0.0:.{digits}f}"


def section(
    legs: Sequence[FillLine], model: SlippageModel | None, model_name: str | None, plot: Path | None, note: str = ""
) -> list[str]:
    """The report's lines (Markdown), and the plot written to ``plot`` (when given and there are legs; ``note``
    above it: which market)."""
    mappings = [msgspec.structs.asdict(leg) for leg in legs if leg.venue is not None]
    checks = check(mappings, model)
    if not checks:
        return []
    v = verdict(checks)
    against = (
        f"the drift model {model_name}"
        if model is not None
        else "the predictions as they are (no drift model: expected drift 0)"
    )
    lines = [
        "## Slippage: predicted at the decision, realized at arrival",
        "",
        f"Each leg's slippage was predicted by walking the book it was decided on for its size, and measured on "
        f"the book it met after its latency. Buckets are judged against {against}: a bucket agrees when its mean "
        f"drift (realized minus predicted) lies within 1.96 combined standard errors of the expected one; buckets "
        f"with fewer than {MIN_CHECKED} legs are shown, not judged.",
        "",
        f"**Criterion S1** (>= {SHARE_NEEDED:.0%} of judged buckets agree): {v.text()}: "
        + {True: "PASS", False: "**FAIL**", None: "n/a"}[v.passed],
        "",
        "| venue | side | size BTC | n | predicted bps | realized bps | drift bps | ± 95 % "
        "| expected drift (95 % CI) | agrees |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        expected = "0" if model is None else "-"
        if c.expected is not None:
            lo, hi = c.expected.ci95
            expected = f"{_n(c.expected.mean)} ({_n(lo)} to {_n(hi)}, n {c.expected.n})"
        agrees = "-" if c.agrees is None else ("yes" if c.agrees else "no")
        lines.append(
            f"| {c.venue} | {c.side} | {c.size} | {c.n} | {_n(c.predicted_bps)} | {_n(c.realized_bps)} | "
            f"{_n(c.drift_bps)} | {_n(1.96 * c.drift_se_bps)} | {expected} | {agrees} |"
        )
    a = attribute(legs)
    if a is not None:
        lines += [
            "",
            f"PnL of the {a.trades} closed trades, attributed (USDT):",
            "",
            "| premium captured | fees | slippage | latency drift | PnL |",
            "|---|---|---|---|---|",
            f"| {a.premium_usdt:+.4f} | {a.fees_usdt:+.4f} | {a.slippage_usdt:+.4f} | {a.latency_usdt:+.4f} | "
            f"{a.pnl_usdt:+.4f} |",
        ]
    if plot is not None:
        _scatter(legs, plot, note)
        lines += ["", f"![slippage]({plot.name})"]
    return lines + [""]


def _scatter(legs: Sequence[FillLine], path: Path, note: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    top = 0.0
    for venue, marker in ((Venue.UPBIT, "o"), (Venue.BINANCE, "s")):
        pairs = [
            (leg.predicted_slippage_bps, leg.slippage_bps)
            for leg in legs
            if leg.venue == venue and leg.predicted_slippage_bps is not None and leg.filled_qty > 0
        ]
        if pairs:
            xs, ys = zip(*pairs)
            ax.scatter(xs, ys, marker=marker, s=14, alpha=0.6, label=f"{venue} ({len(pairs)} legs)")
            top = max(top, *xs, *ys)
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="black", lw=0.8, label="realized = predicted")
    ax.set_xlim(0, top)
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), top)
    ax.set_xlabel("predicted slippage at the decision (bps)")
    ax.set_ylabel("realized slippage at arrival (bps)")
    ax.set_title("Slippage: predicted against realized, per leg")
    if note:
        fig.suptitle(note, fontsize=8, color="dimgray", x=0.99, ha="right")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
