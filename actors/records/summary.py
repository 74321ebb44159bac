"""The session's last words, beside the KPI document they read (docs/architecture.md, "The summary").

``summary``: what ``python -m actors.session`` prints when a session ends, for a trader rather than a
developer (a run without a trade says why, in sentences); ``files_written``: every file the session left;
``on_disk``: after a disk error, what is on disk and what is not, file by file; ``market_label``: which
market the figures come from (the summary, the report and its plots).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from actors.config import Config
from actors.conventions import feed_actor
from actors.core.refusals import Refusal, words_of
from actors.inputs import MIB, InputError, read_bounded
from actors.records.kpi import ActorKpi, FeedKpi, Kpi, ReplayInfo, as_kpi
from actors.records.paths import SessionPaths
from actors.records.realism import OU, MarketModelInfo
from supervision import counts_in_words, most_frequent_first

KPI_MAX_BYTES = 16 * MIB


def _count(n: int, noun: str) -> str:
    """ "1 closed trade", "2 closed trades", "1,681 views"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _reconnects(n: int, causes: dict[str, int]) -> str:
    """ "reconnects 0", or "reconnects 3 (stale 2, snapshot 1)": the causes most frequent first."""
    return f"reconnects {n} ({counts_in_words(causes)})" if causes else f"reconnects {n}"


def _feed(venue: str, feed: FeedKpi, actor: ActorKpi | None) -> str:
    """One feed in the summary: its messages and reconnects, or that it never got that far."""
    if actor is not None and actor.starts == 0:
        return f"{venue} not started"
    given_up = actor is not None and actor.gave_up
    if feed.connects == 0:
        failures = sum(actor.causes.values()) if actor is not None else 0
        if not failures:
            return f"{venue} never connected"
        causes = counts_in_words(actor.causes) if actor is not None else ""
        end = "; given up" if given_up else ""
        return f"{venue} never connected ({_count(failures, 'failed attempt')}: {causes}{end})"
    text = f"{venue} msgs {feed.messages} {_reconnects(feed.reconnects, feed.reconnect_causes)}"
    return text + ", given up" if given_up else text


_UNITS = {"_s": "s", "_btc": "BTC", "_usdt": "USDT", "_bps": "bps"}


def _setting(cfg: Config, key: str) -> str:
    """ "strategy.warmup_s = 600 s": a config key, its value and unit."""
    section, name = key.split(".")
    value = getattr(getattr(cfg, section), name)
    unit = next((u for suffix, u in _UNITS.items() if name.endswith(suffix)), "")
    return f"{key} = {value:g} {unit}".rstrip()


def _refusal(reason: str, count: int, k: Kpi, cfg: Config | None) -> str:
    """Why ``count`` views were not traded, as a sentence for a run that made no trade."""
    views = _count(count, "view")
    if reason == Refusal.WARMUP and cfg is not None:
        warmup = cfg.strategy.warmup_s
        if warmup >= k.duration_s:
            return f"warm-up ({_setting(cfg, 'strategy.warmup_s')}) outlasted the run ({views})"
        return f"warm-up: no entry in the first {warmup:g} s ({_setting(cfg, 'strategy.warmup_s')}) ({views})"
    words = words_of(reason)
    sentence, key = words.sentence, words.setting
    if reason == Refusal.BELOW_ENTRY and cfg is not None:
        zone = cfg.strategy.params().zone(k.entry_trades)  # the zone the next entry would have used
        return f"{sentence} ({zone.entry_bps:g} bps from its baseline) ({views})"
    if key is not None and cfg is not None:
        return f"{sentence} ({_setting(cfg, key)}) ({views})"
    return f"{sentence} ({views})"


def _why_no_trade(k: Kpi, cfg: Config | None) -> list[str]:
    """A run without a trade says why: the refusals in words, the most frequent first, with their counts."""
    by_count = most_frequent_first(k.refusals)
    if not by_count:
        if k.startup_s is None:
            why = "it was interrupted" if k.status == "interrupted" else "the feeds were not both ready"
            return [f"  no trade: the session never started trading ({why})"]
        return ["  no trade: no market view was complete enough to decide on"]
    return [
        f"  {'no trade: ' if n == 0 else ' ' * 10}{_refusal(reason, count, k, cfg)}"
        for n, (reason, count) in enumerate(by_count)
    ]


def _refusals_line(k: Kpi) -> list[str]:
    """A run with trades: the views not traded, in short words, the most frequent first."""
    by_count = most_frequent_first(k.refusals)
    if not by_count:
        return []
    return ["  views not traded: " + ", ".join(f"{words_of(r).short} {n:,}" for r, n in by_count)]


def summary(kpi: Kpi | Mapping[str, Any], cfg: Config | None) -> str:
    """What the session prints when it ends (the files it wrote follow, once the report is written:
    ``files_written``); ``cfg``: what it ran with (the settings that mattered are named)."""
    k = as_kpi(kpi)
    lines = [
        f"session {k.session_id} {k.status} ({k.market}), {k.duration_s:.1f} s of {k.requested_duration_s:g} s",
        f"  entry trades {k.entry_trades}, fill events {k.fill_events} "
        f"(BUY {k.fill_events_by_side.BUY}, SELL {k.fill_events_by_side.SELL}), written {k.fill_events_written}",
    ]
    lines += _why_no_trade(k, cfg) if k.entry_trades == 0 else _refusals_line(k)
    if k.risk_stopped:
        lines.append(f"  risk stop: {k.risk_stopped}")
    lines += _orders_line(k)
    lines += _market_line(k)
    lines += _ledger_line(k)
    lines += [
        f"  available_volume std/mean: BUY {_three(k.available_volume.BUY.std_over_mean)}, "
        f"SELL {_three(k.available_volume.SELL.std_over_mean)}",
        f"  PnL {k.pnl_usdt:+.4f} USDT / {k.pnl_krw:+.0f} KRW realized after fees "
        f"({_count(k.closed_trades, 'closed trade')}), open trades marked {k.unrealized_pnl_usdt:+.4f} USDT",
        "  zones: " + (", ".join(f"{z} {n} fills" for z, n in k.fill_events_by_zone.items()) or "none"),
        "  feeds: " + ", ".join(_feed(v, f, k.actors.get(feed_actor(v))) for v, f in k.feeds.items()),
        "  chaos: off"
        if not k.chaos.kill_every_s
        else f"  chaos kills: {k.chaos.kills} (one every {k.chaos.kill_every_s:g} s)",
        f"  fatal exceptions {k.fatal_exceptions}" + (":" if k.fatal_errors else ""),
    ]
    lines += [f"    {error}" for error in k.fatal_errors]
    return "\n".join(lines)


def _three(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _market_line(k: Kpi) -> list[str]:
    """Which market the figures come from and, off live, how many realism statistics sit in the real windows'
    range (docs/realism.md; the report's Realism section has the table)."""
    text = f"  market: {market_label(k)}"
    block = k.realism
    if block is None or k.market == "live" or block.reference is None or not block.window_min:
        return [text]
    judged = [s.in_window_range for s in block.stats.values() if s.in_window_range is not None]
    if not judged:
        return [f"{text}; realism: the run is too short for any statistic"]
    return [
        f"{text}; realism: {sum(judged)} of {len(judged)} statistics measured inside the real "
        f"{block.window_min}-min windows' 10-90 % range"
    ]


def _ledger_line(k: Kpi) -> list[str]:
    """Whether the balances add up (the KPI's reconciliation), what open trades hold, the dust closed trades left
    and how exits were worked; nothing before the first fill."""
    r = k.reconciliation
    if not r.fills:
        return []
    if r.ok:
        text = f"  ledger: balances = before + {_count(r.fills, 'fill')} (residuals within float rounding)"
    else:
        off = ", ".join(
            f"{row.venue} {row.asset} {row.residual:+.6g}" for row in r.rows if abs(row.residual) > row.tolerance
        )
        text = f"  ledger: balances DO NOT reconcile with the {_count(r.fills, 'fill')}: {off}"
    held = {v: x for v, x in k.inventory.open_btc.items() if x}
    if held:
        text += "; open trades hold " + ", ".join(f"{v} {x:+.8f}" for v, x in held.items()) + " BTC"
    dust = {v: x for v, x in k.inventory.dust_btc.items() if x}
    if dust:
        text += "; dust " + ", ".join(f"{v} {x:+.8f}" for v, x in dust.items()) + " BTC"
    unexplained = {v: x for v, x in k.inventory.unexplained_btc.items() if abs(x) > 1e-9}
    if unexplained:
        text += "; BTC NOT EXPLAINED " + ", ".join(f"{v} {x:+.8f}" for v, x in unexplained.items())
    e = k.exits
    if e.trades_worked:
        text += (
            f"; {_count(e.trades_worked, 'exit')} worked ({_count(e.resent_legs, 'leg')} re-sent, "
            f"{_count(e.unwind_legs, 'unwind hedge')})"
        )
    return [text]


def _orders_line(k: Kpi) -> list[str]:
    """With depth sizing or split entries: sizes, children and slippage in one line (docs/slippage.md)."""
    o = k.orders
    if not o.parents or (o.sizing == "fixed" and o.children == o.parents):
        return []
    parts = [f"  orders: {o.sizing} sizing, mean {o.planned_qty_btc / o.parents:.4g} BTC planned"]
    if o.filled_share is not None:
        parts.append(f"{o.filled_share:.0%} of it filled")
    if o.children > o.parents:
        parts.append(f"{o.children} child orders ({_count(o.parents_stopped_early, 'trade')} stopped early)")
    slip = k.slippage_bps
    if slip.BUY.mean is not None or slip.SELL.mean is not None:
        parts.append(
            "slippage BUY "
            + ("-" if slip.BUY.mean is None else f"{slip.BUY.mean:.3f}")
            + ", SELL "
            + ("-" if slip.SELL.mean is None else f"{slip.SELL.mean:.3f}")
            + " bps mean"
        )
    return [", ".join(parts)]


def files_written(paths: SessionPaths, width: int = 100) -> str:
    """Every file of the session that exists (the report, its plots and the trades too, once written), a few
    names a line."""
    lines, line = [f"files in {paths.logs_dir}/ (links in {paths.logs_dir}/latest/):"], ""
    for name in (p.name for p in paths.written()):
        if line and len(line) + 2 + len(name) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {name}"
    return "\n".join(lines + [line] if line else lines)


def market_label(kpi: Kpi) -> str:
    """A plot's note: which market its figures come from."""
    if kpi.market == "live":
        return "live market"
    block = kpi.realism
    model = _short_model(None if block is None else block.model, known=block is not None)
    if kpi.market == "replay":
        synthesised = isinstance(kpi.replay, ReplayInfo) and kpi.replay.synthesised
        return "replayed market" + (f" (synthesised books: {model})" if synthesised else "")
    return f"simulated market ({model})"


def _short_model(model: MarketModelInfo | None, *, known: bool) -> str:
    if model is None:
        return "the old OU model, not fitted to real data" if not known else "model unknown"
    if model.name == OU:
        return "the old OU model, not fitted to real data"
    return f"model {model.name}" + (", fitted to real data" if model.fitted_to else ", no reference to real data")


def _kpi_on_disk(path: Path) -> str:
    """What the KPI file on disk is, in words, when the final one could not be written."""
    try:
        kpi = json.loads(read_bounded(path, KPI_MAX_BYTES))
        final, status, traded = kpi["final"], kpi["status"], float(kpi["duration_s"])
    except (InputError, ValueError, KeyError, TypeError):
        return f"{path.name}: absent or unreadable"
    if final:
        return f"{path.name}: the final KPI file (status {status})"
    return (
        f'{path.name}: an earlier snapshot ("final": false, status {status}, {traded:.1f} s traded), NOT the '
        "final figures: those are the summary above"
    )


def on_disk(paths: SessionPaths, kpi: Kpi | Mapping[str, Any], kpi_error: str | None, report_error: str | None) -> str:
    """After a disk error (or a report that could not be written): what the session left on disk and what it
    did not, file by file, on stderr (docs/reliability.md, Disk errors)."""
    k = as_kpi(kpi)
    lines = [
        f"on disk in {paths.logs_dir}/ after the disk error:" if k.disk_error else f"on disk in {paths.logs_dir}/:"
    ]
    if k.disk_error:
        lines.append(f"  the error: {k.disk_error}")
    if paths.fill_events.exists():
        lines.append(
            f"  {paths.fill_events.name}: {k.fill_events_written} of the {k.fill_events} fill events produced, "
            "every line whole"
        )
    if kpi_error:
        lines.append("  " + _kpi_on_disk(paths.kpi))
        lines.append(f"  not written: the final KPI file ({kpi_error})")
    elif paths.kpi.exists():
        lines.append(f"  {paths.kpi.name}: the final KPI file (status {k.status})")
    for path, what in ((paths.premium, "the premium series, up to the error if it failed"), (paths.log, "the log")):
        if path.exists():
            lines.append(f"  {path.name}: {what}")
    written = [p.name for p in (paths.report, paths.trades) if p.exists()]
    missing = [p.name for p in (paths.report, paths.trades) if not p.exists()]
    if written:
        lines.append(f"  {', '.join(written)}: written whole")
    if report_error:
        lines.append(
            f"  not written: {', '.join(missing) or 'the report'} and the plots not listed above ({report_error}); "
            f"no file is left cut short, and latest/ links none of them. To write them again (once the disk has "
            f"room): python -m actors.tools.report {paths.logs_dir} --session {paths.session_id}"
        )
    return "\n".join(lines)
