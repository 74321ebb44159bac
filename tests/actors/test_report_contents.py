"""What the session report says and draws, from synthetic session files (a KPI document, fill events and a
premium series written here): the header, criteria with their thresholds, totals, the trade table, zones
in numeric order, the simple model's note, labelled plots and their "no data" notes, rounding, the
newest session by start time, ``--out`` and the help. The report of a real session: test_report.py."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import msgspec
import pytest

from actors.core.acceptance import side_distributions
from actors.records.kpi import as_kpi
from actors.records.paths import SessionPaths
from actors.tools import report
from actors.tools.trades import FillLine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_KPI = ROOT / "tests" / "actors" / "kpi_sample.json"
FX = 1400.0
ZONES = ("20/15", "5/5", "15/10", "10/12")  # as a KPI dict may hold them: not in numeric order


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fill(trade_id: int, leg: str, venue: str, side: str, qty: float, t_s: float, **kw: Any) -> dict:
    """A fill-event line with the fields the report reads (docs/file-formats.md)."""
    krw = venue == "upbit"
    price = 84_000_000.0 if krw else 60_000.0
    line = {
        "t_s": t_s,
        "ts_utc": f"2026-01-01T10:{int(t_s) // 60 % 60:02d}:{int(t_s) % 60:02d}+00:00",
        "trade_id": trade_id,
        "leg": leg,
        "venue": venue,
        "side": side,
        "order_qty": qty,
        "filled_qty": qty,
        "fill_ratio": 1.0,
        "available_volume": 1.0 + (trade_id % 7) / 10,
        "avg_price": price,
        "best_price": price,
        "slippage_bps": 0.0,
        "fee": qty * price * 0.0005 if krw else qty * price * 0.001,
        "fee_ccy": "KRW" if krw else "USDT",
        "quote_ccy": "KRW" if krw else "USDT",
        "zone": "10/12",
        "decided_t_s": t_s - 0.05,
        "fx_krw_per_usdt": FX,
        "premium_bps": 30.0,
        "exec_premium_bps": 25.0 if leg == "entry" else 8.0,
        "exit_reason": "take_profit" if leg == "exit" else None,
        "trade_pnl_usdt": None,
        "trade_pnl_krw": None,
    }
    line.update(kw)
    return line


def trade(trade_id: int, t_s: float, pnl: float | None, *, sell_upbit: bool = True, **kw: Any) -> list[dict]:
    """Entry legs at ``t_s``, exit legs 5 s later finishing with ``pnl`` (None: still open at the end)."""
    upbit, binance = ("SELL", "BUY") if sell_upbit else ("BUY", "SELL")
    zone = ZONES[trade_id % len(ZONES)]
    legs = [
        fill(trade_id, "entry", "upbit", upbit, 0.002, t_s, zone=zone, **kw),
        fill(trade_id, "entry", "binance", binance, 0.002, t_s + 0.01, zone=zone, **kw),
    ]
    if pnl is not None:
        legs += [
            fill(trade_id, "exit", "upbit", binance, 0.002, t_s + 5, zone=zone, **kw),
            fill(
                trade_id,
                "exit",
                "binance",
                upbit,
                0.002,
                t_s + 5.01,
                zone=zone,
                trade_pnl_usdt=pnl,
                trade_pnl_krw=pnl * FX,
                **kw,
            ),
        ]
    return legs


PNL_PATTERN = (0.1, -0.1, 0.2, -0.2)


def pnls(n: int) -> list[float | None]:
    """n trades' PnL: +0.1, -0.1, +0.2, -0.2, +0.1, ... USDT, the last one still open."""
    return [PNL_PATTERN[(i - 1) % len(PNL_PATTERN)] for i in range(1, n)] + [None]


def kpi_document(events: list[dict], **fields: Any) -> dict:
    """The sample KPI document, with the given fields, per-side spreads that agree with ``events`` and zones in
    ``ZONES`` order."""
    kpi = json.loads(SAMPLE_KPI.read_text())
    lines = [msgspec.convert(e, FillLine) for e in events]
    spreads: dict[str, dict] = {"fill_ratio": {}, "slippage_bps": {}}
    for side, measures in side_distributions(lines).items():
        for measure, d in measures.measures():
            if measure in spreads:
                spreads[measure][str(side)] = {"count": d.count, "mean": d.mean, "median": d.median, "std": d.std}
    ratio = {"n": 4, "mean": 0.9, "predicted": 0.9, "predicted_ci95": [0.8, 1.0], "within_ci95": True}
    kpi.update(
        started_utc="2026-01-01T10:00:00.000+00:00",
        fill_model="calibrated",
        calibration={
            "version": "d84_1",
            "path": "config/calibration/d84_1.json",
            "mode": "deterministic",
            "zones": ["5/5", "10/12", "15/10", "20/15"],
        },
        fill_ratio_by_zone={zone: {"BUY": ratio, "SELL": ratio} for zone in ZONES},
        fees_paid={"upbit:KRW": 1234.5, "binance:USDT": 1.5},
        initial_balances={"upbit": {"KRW": 50_000_000.0, "BTC": 0.5}, "binance": {"USDT": 35_000.0, "BTC": 0.5}},
        balances={"upbit": {"KRW": 50_001_234.5, "BTC": 0.5}, "binance": {"USDT": 34_999.25, "BTC": 0.5}},
        acceptance_thresholds={"min_fill_events": 50, "min_volume_std_over_mean": 0.1, "max_extra_reconnects": 0},
        refusals={"below_entry": 120, "warmup": 30},
        **spreads,
    )
    kpi.update(fields)
    return as_kpi(kpi).document()  # checked against the KPI type


def equity_at(t: float) -> float:
    """Up to +1.0 at 30 s, down to +0.4 at 50 s, up to +1.5 at 100 s: a 0.6 USDT drawdown."""
    if t <= 30:
        return t / 30
    if t <= 50:
        return 1.0 - 0.6 * (t - 30) / 20
    return 0.4 + 1.1 * (t - 50) / 50


def write_session(
    folder: Path,
    sid: str = "20260101_100000",
    *,
    n_trades: int = 3,
    equity: bool = True,
    events: list[dict] | None = None,
    **kpi_fields: Any,
) -> SessionPaths:
    folder.mkdir(parents=True, exist_ok=True)
    paths = SessionPaths(folder, sid)
    if events is None:
        events = [e for i, pnl in enumerate(pnls(n_trades), 1) for e in trade(i, 10.0 * i, pnl, sell_upbit=i % 2 == 1)]
    paths.fill_events.write_text("".join(json.dumps(e) + "\n" for e in events))
    paths.kpi.write_text(json.dumps(kpi_document(events, session_id=sid, **kpi_fields)))
    rows = ["t_s,premium_bps,baseline_bps,ts_utc" + (",equity_usdt" if equity else "")]
    for t in range(101):
        row = f"{t}.000,{20 + 10 * math.sin(t / 5):.4f},20.0000,2026-01-01T10:00:{t % 60:02d}+00:00"
        rows.append(row + (f",{equity_at(t):.6f}" if equity else ""))
    paths.premium.write_text("\n".join(rows) + "\n")
    return paths


def sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.M)


def table_rows(text: str, section: str) -> list[list[str]]:
    """The cells of the table rows (not header or rule) in a section."""
    body = text.split(f"## {section}\n")[1].split("\n## ")[0]
    lines = body.splitlines()
    rows = [
        line.strip("|").split("|")
        for line, after in zip(lines, lines[1:] + [""])
        if line.startswith("| ") and not after.startswith("|---")  # a header is followed by its rule
    ]
    return [[c.strip() for c in row] for row in rows]


def figures(paths: SessionPaths) -> dict[str, Any]:
    return report.figures(report.load_session(paths))


# -- the text --------------------------------------------------------------------------------------


def test_report_reads_top_down_for_a_trader(tmp_path):
    paths = write_session(tmp_path, n_trades=5)
    text = report.write_report(tmp_path).read_text()
    assert sections(text) == [
        "Acceptance criteria",
        "Totals",
        "Inventory and reconciliation",
        "Trades",
        "Fills per side",
        "Fill ratio per zone",
        "Feeds",
        "Plots",
    ]
    header = text.split("## ")[0]
    assert "started 2026-01-01 10:00:00 UTC" in header
    assert "Calibrated fill model: calibration d84_1 (deterministic), zones 5/5, 10/12, 15/10, 20/15" in header
    assert (
        "Thresholds from `[acceptance]` in the config: min_fill_events 50, min_volume_std_over_mean 0.1, "
        "max_extra_reconnects 0." in text
    )
    assert "| C2 | fill events | >= 1 | 14 | PASS |" in text  # the threshold next to the measured value
    totals = text.split("## Totals")[1].split("## Trades")[0]
    # PnL of trades 1-4: +0.1, -0.1, +0.2, -0.2 (trade 5 still open)
    assert "- Closed trades: 4 (1 open at the end); win rate 50% (2 of 4 made money)." in totals
    assert "average 0.0000, best +0.2000 (trade 3), worst -0.2000 (trade 4) USDT" in totals
    assert (
        "- Max drawdown: 0.6000 USDT on the equity curve (realized + open trades marked to mid, once a second): "
        "from +1.0000 at 30.0 s to +0.4000 at 50.0 s." in totals
    )
    # 18 legs of 0.002 BTC: 9 on Upbit at 84,000,000 KRW (/1400 = 60,000 USDT), 9 on Binance at 60,000 USDT
    assert "- Turnover: 2,160.00 USDT filled (binance 1,080.00, upbit 1,080.00)." in totals
    assert "- Decisions not taken: below_entry 120, warmup 30." in totals
    assert table_rows(text, "Totals")[:4] == [
        ["binance", "USDT", "1.5000", "1.0800"],  # the KPI's amount; in USDT from the legs
        ["upbit", "KRW", "1,234.50", "0.5400"],
        ["**all**", "", "", "**1.6200**"],
        ["upbit", "KRW", "50,000,000.00", "50,001,234.50", "+1,234.50"],
    ]
    assert ["binance", "USDT", "35,000.0000", "34,999.2500", "-0.7500"] in table_rows(text, "Totals")
    assert ["binance", "BTC", "0.50000000", "0.50000000", "0.00000000"] in table_rows(text, "Totals")
    assert paths.trades.exists()


def test_every_trade_is_in_the_table_up_to_20(tmp_path):
    paths = write_session(tmp_path, n_trades=4)
    text = report.write_report(tmp_path).read_text()
    rows = table_rows(text, "Trades")
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0] == [
        "1",
        "10.0 s (10:00:10)",
        "15.0 s (10:00:15)",
        "buy Binance / sell Upbit",
        "5/5",
        "0.002000",
        "25.0",
        "8.0",
        f"{(0.002 * 84_000_000 * 0.0005 * 2 / FX + 0.002 * 60_000 * 0.001 * 2):.4f}",
        "0.00",
        "take_profit",
        "+0.1000",
        "+140",
    ]
    assert rows[1][3] == "buy Upbit / sell Binance"
    assert rows[3][2] == "-" and rows[3][10] == "open at end" and rows[3][11:] == ["-", "-"]
    assert f"Every trade (also in [{paths.trades.name}]({paths.trades.name}))" in text


def test_beyond_20_trades_the_first_10_and_the_worst_5(tmp_path):
    paths = write_session(tmp_path, n_trades=25)
    text = report.write_report(tmp_path).read_text()
    assert f"25 trades: the first 10 here, every one in [{paths.trades.name}]({paths.trades.name})." in text
    rows = table_rows(text, "Trades")
    assert [r[0] for r in rows[:10]] == [str(i) for i in range(1, 11)]
    worst = rows[10:]
    assert [r[11] for r in worst] == ["-0.2000"] * 5
    assert [r[0] for r in worst] == ["4", "8", "12", "16", "20"]  # six trades lost 0.2: the first five
    assert len(paths.trades.read_text().splitlines()) == 26  # every trade, and the header


def test_zones_in_numeric_order_in_the_table_and_the_plot(tmp_path):
    paths = write_session(tmp_path)
    text = report.write_report(tmp_path).read_text()
    zones = [r[0] for r in table_rows(text, "Fill ratio per zone")]
    assert zones == ["5/5", "5/5", "10/12", "10/12", "15/10", "15/10", "20/15", "20/15"]
    ax = figures(paths)["fill_ratio"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5/5", "10/12", "15/10", "20/15"]


def test_the_simple_fill_model_says_why_its_ratio_is_1(tmp_path):
    ratio = {"n": 4, "mean": 1.0}
    paths = write_session(
        tmp_path, fill_model="simple", calibration=None, fill_ratio_by_zone={"5/5": {"BUY": ratio, "SELL": ratio}}
    )
    text = report.write_report(tmp_path).read_text()
    assert "Simple fill model (no calibration)" in text.split("## ")[0]
    note = "simple fill model: an order fills whatever the depth allows, so the ratio is 1.0 unless depth runs out"
    assert note[0].upper() + note[1:] + "." in text.split("## Fill ratio per zone")[1]
    assert note in figures(paths)["fill_ratio"].axes[0].get_title()
    calibrated = write_session(tmp_path / "calibrated")
    assert "simple fill model" not in figures(calibrated)["fill_ratio"].axes[0].get_title()


def test_floating_point_noise_reads_0(tmp_path):
    events = trade(1, 10.0, 4.1e-17, slippage_bps=4.1e-17) + trade(2, 30.0, 0.5, slippage_bps=-2e-17)
    write_session(tmp_path, events=events, pnl_usdt=-1e-17, unrealized_pnl_usdt=3e-18)
    text = report.write_report(tmp_path).read_text()
    assert not re.search(r"\de-1\d", text), text
    assert "-0.0000" not in text and "PnL 0.0000 USDT" in text
    slippage = [r for r in table_rows(text, "Fills per side") if r[1] == "slippage_bps"]
    assert slippage and all(r[3:8] == ["0"] * 5 and r[9] == "FIXED (all values equal)" for r in slippage)


def test_the_kpi_median_is_shown_and_a_disagreement_named(tmp_path):
    paths = write_session(tmp_path)
    text = report.write_report(tmp_path).read_text()
    rows = {(r[0], r[1]): r for r in table_rows(text, "Fills per side")}
    assert rows[("BUY", "fill_ratio")][8] == rows[("BUY", "fill_ratio")][6] == "1"
    assert rows[("BUY", "available_volume")][8] == "-"  # the KPI has no median of it
    assert "disagrees" not in text
    kpi = json.loads(paths.kpi.read_text())
    kpi["fill_ratio"]["SELL"]["median"] = 0.5
    paths.kpi.write_text(json.dumps(kpi))
    text = report.write_report(tmp_path).read_text()
    assert "The KPI file disagrees with the fill events on SELL fill_ratio (KPI: 5 legs, median 0.5)." in text


# -- the plots -------------------------------------------------------------------------------------


def test_plots_label_what_they_show(tmp_path):
    paths = write_session(tmp_path, n_trades=4)
    figs = figures(paths)
    assert list(figs) == ["premium", "fill_ratio", "available_volume", "equity"]
    premium = figs["premium"].axes[0]
    assert premium.get_legend_handles_labels()[1] == [
        "premium (mid)",
        "baseline",
        "entry: buy Binance / sell Upbit",
        "entry: buy Upbit / sell Binance",
        "exit",
    ]
    markers = {c.get_label(): len(c.get_offsets()) for c in premium.collections}
    assert markers == {"entry: buy Binance / sell Upbit": 2, "entry: buy Upbit / sell Binance": 2, "exit": 3}
    for ax in figs["available_volume"].axes:
        assert ax.get_xlabel() == "available volume at the limit price (BTC)" and ax.get_ylabel() == "legs (count)"
        ticks = ax.get_yticks()
        assert len(ticks) > 1 and all(float(t).is_integer() for t in ticks)
    equity = figs["equity"].axes[0]
    assert equity.get_title() == "Equity after fees: realized + open trades marked to mid"
    labels = equity.get_legend_handles_labels()[1]
    assert labels == ["equity (realized + marked)", "realized", "max drawdown 0.6000 USDT"]
    (line,) = [x for x in equity.get_lines() if x.get_label() == "equity (realized + marked)"]
    assert len(line.get_xdata()) == 102  # (0, 0), then every row of the premium file


def test_equity_falls_back_to_the_realized_pnl_without_the_column(tmp_path):
    paths = write_session(tmp_path, n_trades=6, equity=False)  # realized +0.1, 0, +0.2, 0, +0.1
    text = report.write_report(tmp_path).read_text()
    assert (
        f"- Max drawdown: 0.2000 USDT on realized PnL ({paths.premium.name} has no equity_usdt column): "
        "from +0.2000 at 35.0 s to 0.0000 at 45.0 s." in text
    )
    ax = figures(paths)["equity"].axes[0]
    assert ax.get_title() == "Realized PnL after fees"
    assert "realized" in ax.get_legend_handles_labels()[1]
    assert "equity (realized + marked)" not in ax.get_legend_handles_labels()[1]
    assert f"![{paths.plot('equity').name}]({paths.plot('equity').name})" in text


def test_plots_without_data_say_so(tmp_path):
    paths = write_session(tmp_path, events=[], equity=False)
    paths.premium.unlink()
    figs = figures(paths)

    def notes(fig: Any) -> list[str]:
        return [t.get_text() for ax in fig.axes for t in ax.texts]

    assert notes(figs["premium"]) == ["no premium samples and no trades in this session"]
    assert notes(figs["available_volume"]) == [
        "no BUY fill events in this session",
        "no SELL fill events in this session",
    ]
    assert notes(figs["equity"]) == ["no equity samples and no finished trades in this session"]
    no_zones = write_session(tmp_path / "no_zones", events=[], fill_ratio_by_zone={})
    assert notes(figures(no_zones)["fill_ratio"]) == ["no fill events in this session"]
    text = report.write_report(tmp_path).read_text()
    assert "No trades." in text and "- Closed trades: 0 (0 open at the end)." in text


# -- which session, where ---------------------------------------------------------------------------


def test_the_newest_session_is_the_one_that_started_last(tmp_path):
    write_session(tmp_path, "20260101_100000", started_utc="2026-01-01T10:00:00.000+00:00")
    write_session(tmp_path, "rec1", started_utc="2026-01-01T09:00:00.000+00:00")  # sorts last, started first
    write_session(tmp_path, "20260101_110000", started_utc="2026-01-01T11:00:00.000+00:00")
    write_session(tmp_path, "20260101_090000", started_utc="2026-01-01T12:00:00.000+00:00")  # the newest
    assert report.find_session(tmp_path, None).session_id == "20260101_090000"
    assert report.write_report(tmp_path).name == "report_20260101_090000.md"
    assert "| 20260101_090000 |" in report.compare([tmp_path])
    assert report.find_session(tmp_path, "rec1").session_id == "rec1"


def test_kpi_files_without_a_start_time_count_by_their_modification_time(tmp_path):
    old = write_session(tmp_path, "b_old")
    new = write_session(tmp_path, "a_new")
    for paths, mtime in ((old, 1_000_000_000), (new, 1_000_000_100)):
        kpi = json.loads(paths.kpi.read_text())
        del kpi["started_utc"]
        paths.kpi.write_text(json.dumps(kpi))
        os.utime(paths.kpi, (mtime, mtime))
    assert report.find_session(tmp_path, None).session_id == "a_new"
    os.utime(old.kpi, (1_000_000_200, 1_000_000_200))
    assert report.find_session(tmp_path, None).session_id == "b_old"


def test_out_writes_the_report_elsewhere_with_its_plots_beside_it(tmp_path):
    paths = write_session(tmp_path / "logs")
    out = tmp_path / "elsewhere" / "today.md"
    out.parent.mkdir()
    assert report.main([str(tmp_path / "logs"), "--out", str(out)]) == 0
    text = out.read_text()
    for name in ("premium", "fill_ratio", "available_volume", "equity"):
        png = out.parent / f"today_{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and f"]({png.name})" in text
    assert f"[{paths.trades.name}](../logs/{paths.trades.name})" in text and paths.trades.exists()
    assert not paths.report.exists()


def test_help_shows_defaults_and_no_markup(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        report.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    options = [o for o in re.split(r"\n  (?=-)", text.split("options:")[1])[1:] if not o.startswith("-h")]
    assert [o.split()[0] for o in options] == ["--session", "--compare", "--out"]
    assert all("default" in " ".join(o.split()) for o in options), options


def test_compare_calls_out_a_different_kind_not_a_different_ratio(tmp_path):
    def session(folder: str, volumes: list[float]) -> Path:
        events = [e for i in range(1, 4) for e in trade(i, 10.0 * i, 0.1)]
        for e, v in zip(events, volumes * len(events)):
            e["available_volume"] = v
        write_session(tmp_path / folder, events=events)
        return tmp_path / folder

    base = session("base", [1.0, 2.0])  # DISPERSED, std/mean 0.33
    wider = session("wider", [1.0, 2.2])  # DISPERSED, std/mean 0.38: the same kind
    fixed = session("fixed", [1.0, 1.01])  # FIXED
    notes = report.compare([base, wider, fixed]).split("## Differences against the first session")[1]
    kinds = [n for n in notes.splitlines() if " but " in n]
    assert kinds == [
        f"- {side} available_volume: FIXED (nearly constant, std/mean 0.005) with multi (20260101_100000) "
        "but DISPERSED (values vary, std/mean 0.33) with multi (20260101_100000)"
        for side in ("BUY", "SELL")
    ]


def balances_after(kpi_initial: dict, events: list[dict]) -> dict:
    """Initial balances plus every line's flows minus its fee, per venue and asset."""
    after = {venue: dict(assets) for venue, assets in kpi_initial.items()}
    for e in events:
        sign = 1 if e["side"] == "BUY" else -1
        after[e["venue"]]["BTC"] += sign * e["filled_qty"]
        after[e["venue"]][e["quote_ccy"]] -= sign * e["filled_qty"] * e["avg_price"]
        after[e["venue"]][e["fee_ccy"]] -= e["fee"]
    return after


def test_the_ledger_section_recomputes_the_balances_and_names_a_trade_booked_before_it_was_flat(tmp_path):
    """An exit leg cut short (0.0013 of 0.002 BTC bought back on Upbit) on a trade booked anyway, as the old
    trader did: the balances still reconcile with the fills, but the trade is named as not flat; a balance the
    fills do not explain is named too."""
    events = trade(1, 10.0, None) + [
        fill(1, "exit", "upbit", "BUY", 0.002, 15.0, filled_qty=0.0013, fill_ratio=0.65),
        fill(1, "exit", "binance", "SELL", 0.002, 15.01, trade_pnl_usdt=0.1, trade_pnl_krw=140.0),
    ]
    initial = {"upbit": {"KRW": 50_000_000.0, "BTC": 0.5}, "binance": {"USDT": 35_000.0, "BTC": 0.5}}
    write_session(tmp_path, events=events, initial_balances=initial, balances=balances_after(initial, events))
    text = report.write_report(tmp_path).read_text()
    ledger = text.split("## Inventory and reconciliation")[1].split("\n## ")[0]
    assert "**Balances reconcile**" in ledger
    assert "**Not flat**: 1 of 1 finished trades left more than dust on a venue" in ledger
    assert "trade 1 upbit -0.00070000 BTC" in ledger
    rows = {(r[0], r[1]): r for r in table_rows(text, "Inventory and reconciliation") if len(r) == 9}
    assert rows[("upbit", "BTC")][3] == "-0.00070000"  # the fills' flows: sold 0.002, bought back 0.0013
    lost = balances_after(initial, events)
    lost["upbit"]["BTC"] += 0.0007  # the balances say flat, the fills do not
    write_session(tmp_path / "lost", events=events, initial_balances=initial, balances=lost)
    text = report.write_report(tmp_path / "lost").read_text()
    assert "**Balances do not reconcile**: upbit BTC off by 0.0007" in text


def test_the_ledger_section_shows_inventory_over_time_and_a_plot(tmp_path):
    events = trade(1, 10.0, 0.1)
    initial = {"upbit": {"KRW": 50_000_000.0, "BTC": 0.5}, "binance": {"USDT": 35_000.0, "BTC": 0.5}}
    after = balances_after(initial, events)
    point = {
        "t_s": 12.0,
        "change": {"upbit": {"KRW": 168_000.0, "BTC": -0.002}, "binance": {"USDT": -120.12, "BTC": 0.002}},
        "value_usdt": -0.2,
        "net_btc": 0.0,
    }
    end = {
        **point,
        "t_s": 20.0,
        "change": {v: {a: x - initial[v][a] for a, x in assets.items()} for v, assets in after.items()},
    }
    inventory = {"interval_s": 10.0, "samples": [point], "end": end, "open_btc": {"upbit": 0.0, "binance": 0.0}}
    write_session(tmp_path, events=events, initial_balances=initial, balances=after, inventory=inventory)
    text = report.write_report(tmp_path).read_text()
    assert "**Every finished trade is flat**: 1 trade, each leaving nothing" in text
    rows = [r for r in table_rows(text, "Inventory and reconciliation") if len(r) == 7]
    assert [r[0] for r in rows] == ["12.0", "20.0"] and rows[0][2] == "-0.00200000" and rows[0][6] == "-0.2000"
    assert (tmp_path / "report_20260101_100000_inventory.png").exists()
    assert "![inventory](report_20260101_100000_inventory.png)" in text
