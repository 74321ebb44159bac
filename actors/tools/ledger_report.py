"""The report's ledger section: whether the session's positions add up.

- Reconciliation, recomputed from the fill events (``actors.core.ledger``), independently of the trader's
  memory: per venue and asset, balances before + every fill's flows - its fees against the KPI's balances
  after, with the residual next to the one the KPI file states.
- Every finished trade flat: what its lines left on each venue is dust (below the venue's minimum order,
  KPI ``lots``), listed by trade when it is not.
- Inventory over time (KPI ``inventory``): the balances' change per venue and asset, marked to market, as a
  table and a plot; what the open trades hold at the end, the dust, and the BTC change neither explains.
- How exits were worked (re-sent exit legs, unwind hedges) and, per zone, the hedge cost the entries
  expected against the one their hedges paid: why a zone still loses when it does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import attrs

from actors.core.ledger import LedgerError, left_by_trade, not_flat, reconcile_fills
from actors.core.refusals import Refusal
from actors.core.vocabulary import HedgeReason, Leg
from actors.records.kpi import InventoryPoint, Kpi
from actors.tools.report_numbers import num
from actors.tools.report_plots import zone_order
from actors.tools.session_files import Session
from actors.tools.trades import FillLine, Trade

INVENTORY_ROWS = 8  # samples shown in the table (evenly spaced), the end row besides
_AMOUNT = {"BTC": "+.8f", "KRW": "+,.0f", "USDT": "+,.2f"}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def section(s: Session, plot: Path | None) -> list[str]:
    kpi = s.kpi
    lines = ["## Inventory and reconciliation", ""]
    if not kpi.initial_balances:
        return lines + ["The KPI file has no balances: nothing to reconcile.", ""]
    lines += _reconciliation(s) + _flat(s) + _inventory(kpi, plot) + _exits(kpi) + _hedge_costs(s)
    return lines


def _reconciliation(s: Session) -> list[str]:
    kpi = s.kpi
    try:
        r = reconcile_fills(kpi.initial_balances, kpi.balances, s.events)
    except LedgerError as exc:
        return [f"Balances not reconciled: a fill event cannot be accounted for ({exc}).", ""]
    stated = {(row.venue, row.asset): row.residual for row in kpi.reconciliation.rows}
    lines = [
        f"Balances after = balances before + every fill's flows - its fees, recomputed from the {r.fills} fill "
        "events (independently of the trader), against the KPI's balances after:",
        "",
        "| venue | asset | before | fills' flows | fees | expected after | after | residual | KPI residual |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r.rows:
        spec = _AMOUNT.get(row.asset, "+.6g")
        lines.append(
            f"| {row.venue} | {row.asset} | {num(row.before, spec[1:])} | {num(row.flows, spec)} | "
            f"{num(row.fees, spec[1:])} | {num(row.expected, spec[1:])} | {num(row.after, spec[1:])} | "
            f"{row.residual:.3g} | {_fmt_stated(stated.get((row.venue, row.asset)))} |"
        )
    lines.append("")
    if r.ok and kpi.reconciliation.ok:
        lines.append("**Balances reconcile**: every residual is float rounding, within a relative 1e-9.")
    else:
        off = [f"{row.venue} {row.asset} off by {row.residual:.6g}" for row in r.failures()]
        if not kpi.reconciliation.ok:
            off.append("the KPI file's own reconciliation failed")
        lines.append(f"**Balances do not reconcile**: {'; '.join(off)}.")
    return lines + [""]


def _fmt_stated(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _finished(trades: Sequence[Trade]) -> list[int]:
    return [t.trade_id for t in trades if t.pnl_usdt is not None]


def _flat(s: Session) -> list[str]:
    finished = _finished(s.trades)
    if not finished:
        return ["No trade finished: nothing to check for flatness.", ""]
    try:
        left = left_by_trade(s.events)
    except LedgerError as exc:
        return [f"Flatness not checked: {exc}.", ""]
    wrong = not_flat(left, finished, s.kpi.lots)
    dust: dict[str, float] = {}
    for trade_id in finished:
        for venue, held in left.get(trade_id, {}).items():
            dust[venue] = dust.get(venue, 0.0) + held.btc
    dust_words = ", ".join(f"{v} {num(x, '+.8f')}" for v, x in sorted(dust.items()) if abs(x) > 1e-12) or "none"
    if not wrong:
        return [
            f"**Every finished trade is flat**: {_count(len(finished), 'trade')}, each leaving nothing on either "
            f"venue but dust below the venue's minimum order (dust in all: {dust_words} BTC, kept in the balances "
            "and valued in the trades' PnL).",
            "",
        ]
    trades = len({w.trade_id for w in wrong})
    listed = "; ".join(f"trade {w.trade_id} {w.venue} {num(w.btc, '+.8f')} BTC" for w in wrong[:10])
    more = f" and {len(wrong) - 10} more" if len(wrong) > 10 else ""
    return [
        f"**Not flat**: {trades} of {len(finished)} finished trades left more than dust on a venue (booked while "
        f"still holding it): {listed}{more}.",
        "",
    ]


def _inventory(kpi: Kpi, plot: Path | None) -> list[str]:
    inv = kpi.inventory
    points = list(inv.samples) + ([inv.end] if inv.end is not None else [])
    lines = ["### Inventory", ""]
    if not points:
        return lines + ["No inventory samples in the KPI file (written before they existed, or no market view).", ""]
    keys = list(dict.fromkeys((v, a) for p in points for v, assets in p.change.items() for a in assets))
    step = max(1, len(inv.samples) // INVENTORY_ROWS)
    shown = list(inv.samples)[::step][:INVENTORY_ROWS] + ([inv.end] if inv.end is not None else [])
    lines += [
        f"The balances' change since the start, per venue and asset, marked to market (KRW at the FX rate, each "
        f"venue's BTC at its mid); sampled every {inv.interval_s:g} s, {len(shown)} of {len(points)} rows here, "
        "the last at the end:",
        "",
        "| t s | " + " | ".join(f"{v} {a}" for v, a in keys) + " | net BTC | marked USDT |",
        "|---|" + "---|" * (len(keys) + 2),
    ]
    for p in shown:
        cells = [num(p.change.get(v, {}).get(a, 0.0), _AMOUNT.get(a, "+.6g")) for v, a in keys]
        lines.append(
            f"| {p.t_s:.1f} | " + " | ".join(cells) + f" | {num(p.net_btc, '+.8f')} | {num(p.value_usdt, '+,.4f')} |"
        )
    lines.append("")
    held = ", ".join(f"{v} {num(x, '+.8f')}" for v, x in inv.open_btc.items()) or "nothing"
    dust = ", ".join(f"{v} {num(x, '+.8f')}" for v, x in inv.dust_btc.items()) or "none"
    unexplained = {v: x for v, x in inv.unexplained_btc.items() if abs(x) > 1e-9}
    lines.append(
        f"At the end the open trades ({kpi.open_trades}) hold {held} BTC (net, the carried imbalance: "
        f"{num(kpi.carried_imbalance_btc, '+.8f')} BTC); closed trades left dust {dust} BTC. "
        + (
            "Nothing else moved BTC: the balances' BTC change is exactly that."
            if not unexplained
            else "**BTC neither explains**: "
            + ", ".join(f"{v} {num(x, '+.8f')}" for v, x in unexplained.items())
            + " (a position the trades lost track of)."
        )
    )
    if plot is not None:
        _plot(points, keys, plot)
        lines += ["", f"![inventory]({plot.name})"]
    return lines + [""]


def _exits(kpi: Kpi) -> list[str]:
    e = kpi.exits
    if not kpi.closed_trades and not e.open_by_phase:
        return []
    text = (
        f"Exits: {e.trades_worked} of {kpi.closed_trades} closed trades needed more than their first exit legs to be "
        f"flat ({e.resent_legs} exit legs re-sent, up to {e.exit_retries} times each, then {e.unwind_legs} "
        "unwind hedges on the depth)."
    )
    working = {p: n for p, n in e.open_by_phase.items() if p in ("closing", "working", "unwinding")}
    if working:
        text += " Still exiting at the end: " + ", ".join(f"{n} {p}" for p, n in working.items()) + "."
    return [text, ""]


@attrs.frozen
class _ZoneCost:
    zone: str
    trades: int
    expected_bps: float | None  # mean expected hedge cost of its entries
    paid_bps: float | None  # mean hedge cost its imbalance hedges paid, in bps of the position held
    closed: int
    mean_pnl_usdt: float | None


def _paid_bps(trade_legs: Sequence[FillLine], size_btc: float) -> float | None:
    """What the trade's imbalance hedges cost, in bps of the position held: the spread they crossed against the
    entry legs on their venue, the hedges' fees and the surplus entry's fees; None without a hedge."""
    hedges = [e for e in trade_legs if e.leg is Leg.HEDGE and e.exit_reason == HedgeReason.IMBALANCE and e.filled_qty]
    if not hedges or size_btc <= 0:
        return None
    cost = notional = 0.0
    for h in hedges:
        entries = [e for e in trade_legs if e.leg is Leg.ENTRY and e.venue == h.venue and e.filled_qty]
        qty = sum(e.filled_qty for e in entries)
        if not qty or h.avg_price is None:
            continue
        price = sum(e.filled_qty * (e.avg_price or 0.0) for e in entries) / qty
        crossed = h.usdt(h.filled_qty * abs(h.avg_price - price), h.quote_ccy) or 0.0
        entry_fees = sum(e.fee_usdt for e in entries) * min(h.filled_qty / qty, 1.0)
        cost += crossed + h.fee_usdt + entry_fees
        notional += h.usdt(size_btc * price, h.quote_ccy) or 0.0
    return cost / notional * 1e4 if notional else None


def _hedge_costs(s: Session) -> list[str]:
    trades = [t for t in s.trades if t.hedge_cost_bps is not None]
    if not any(t.hedge_cost_bps for t in trades):
        return []
    legs: dict[int, list[FillLine]] = {}
    for e in s.events:
        if e.trade_id is not None:
            legs.setdefault(e.trade_id, []).append(e)
    rows = []
    for zone in sorted({t.zone for t in trades}, key=zone_order):
        of_zone = [t for t in trades if t.zone == zone]
        expected = [t.hedge_cost_bps for t in of_zone if t.hedge_cost_bps is not None]
        paid = [p for t in of_zone if (p := _paid_bps(legs.get(t.trade_id, []), t.size_btc)) is not None]
        closed = [t.pnl_usdt for t in of_zone if t.closed and t.pnl_usdt is not None]
        rows.append(
            _ZoneCost(
                zone,
                len(of_zone),
                sum(expected) / len(expected) if expected else None,
                sum(paid) / len(paid) if paid else None,
                len(closed),
                sum(closed) / len(closed) if closed else None,
            )
        )
    refused = s.kpi.refusals.get(Refusal.HEDGE_COST.label, 0)
    lines = [
        "### Expected hedge cost",
        "",
        'With `leg_risk = "hedge"` each entry\'s executable premium is net of the expected cost of hedging what '
        "the fill model expects its smaller leg to leave unmatched (the spread crossed and the fee twice, on the "
        f"larger leg's venue, per unit held); {refused:,} market views cleared the entry threshold only before "
        "it and were not traded. Per zone, that expectation against what the imbalance hedges paid:",
        "",
        "| zone | trades | expected bps | paid bps | closed | mean PnL USDT |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.zone} | {r.trades} | {num(r.expected_bps, '.2f')} | {num(r.paid_bps, '.2f')} | {r.closed} | "
            f"{num(r.mean_pnl_usdt, '+.4f')} |"
        )
    losing = [r for r in rows if r.mean_pnl_usdt is not None and r.mean_pnl_usdt < 0]
    for r in losing:
        if r.paid_bps is not None and r.expected_bps is not None and r.paid_bps > r.expected_bps * 1.1:
            why = (
                f"its hedges paid {r.paid_bps:.1f} bps against the {r.expected_bps:.1f} expected: the spread or the "
                "fill ratio at the hedge was worse than the books and the calibration said at the decision"
            )
        else:
            why = (
                "its hedges cost what was expected, so the loss is the exit's: max-hold exits, or take-profits "
                "whose re-sent and unwound exit legs met worse prices than the exit decision saw"
            )
        lines.append("")
        lines.append(f"Zone {r.zone} still loses ({num(r.mean_pnl_usdt, '+.4f')} USDT a closed trade): {why}.")
    return lines + [""]


def _plot(points: Sequence[InventoryPoint], keys: Sequence[tuple[str, str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t = [p.t_s for p in points]
    for venue in dict.fromkeys(v for v, a in keys if a == "BTC"):
        top.plot(t, [p.change.get(venue, {}).get("BTC", 0.0) for p in points], lw=1.0, label=f"{venue} BTC")
    top.plot(t, [p.net_btc for p in points], lw=1.4, color="black", label="net BTC")
    top.axhline(0.0, color="grey", lw=0.6)
    top.set_ylabel("BTC since the start")
    top.legend(fontsize=8)
    top.set_title("Inventory: BTC per venue and net, and its value marked to market")
    bottom.plot(t, [p.value_usdt for p in points], lw=1.2, color="tab:green", label="balances' change, marked")
    bottom.axhline(0.0, color="grey", lw=0.6)
    bottom.set_ylabel("USDT")
    bottom.set_xlabel("session time (s)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
