"""What the session prints when it ends (``actors.records.summary``): words a trader reads, not Python values."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from actors import config
from actors.records.paths import SessionPaths
from actors.records.summary import files_written, summary
from actors.session import SessionResult

ROOT = Path(__file__).resolve().parents[2]
KPI_SAMPLE = Path(__file__).resolve().parent / "kpi_sample.json"


def _result(tmp_path: Path, cfg: config.Config | None = None, **changes) -> SessionResult:
    kpi = copy.deepcopy(json.loads(KPI_SAMPLE.read_text()))
    for key, value in changes.items():
        kpi[key] = value
    return SessionResult(kpi["status"], 0, SessionPaths(tmp_path, kpi["session_id"]), kpi, cfg)


def _summary(result: SessionResult) -> str:
    return summary(result.kpi, result.config)


def _demo(tmp_path: Path, **tables) -> config.Config:
    return config.load(ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(tmp_path)}, **tables})


def test_reconnect_causes_are_words_most_frequent_first(tmp_path):
    result = _result(tmp_path)
    result.kpi["feeds"]["upbit"].update(reconnects=3, reconnect_causes={"snapshot": 1, "stale": 2})
    text = _summary(result)
    (feeds,) = [line for line in text.splitlines() if line.startswith("  feeds: ")]
    assert "upbit msgs" in feeds and "reconnects 3 (stale 2, snapshot 1)" in feeds
    assert feeds.endswith("reconnects 0") and "{" not in text  # a feed without reconnects: no causes


def test_counts_agree_with_their_noun(tmp_path):
    assert "(1 closed trade)" in _summary(_result(tmp_path, closed_trades=1))
    assert "(2 closed trades)" in _summary(_result(tmp_path, closed_trades=2))


def test_every_file_written_is_listed_and_no_other(tmp_path):
    paths = SessionPaths(tmp_path, "20261121_152335")
    for written in (paths.fill_events, paths.kpi, paths.log, paths.premium):
        written.write_text("x\n")
    SessionPaths(tmp_path, "20261121_999999").kpi.write_text("another session\n")

    def listed() -> list[str]:
        head, *names = files_written(paths).splitlines()
        assert head == f"files in {tmp_path}/ (links in {tmp_path}/latest/):"
        return " ".join(names).split()

    assert listed() == [p.name for p in (paths.fill_events, paths.kpi, paths.log, paths.premium)]
    # the report writes its markdown, its plots and the trades after the summary: listed once they exist
    for written in (paths.report, paths.trades, paths.plot("premium"), paths.plot("equity")):
        written.write_text("x\n")
    assert listed() == [
        p.name
        for p in (
            paths.fill_events,
            paths.kpi,
            paths.log,
            paths.premium,
            paths.report,
            paths.trades,
            paths.plot("equity"),
            paths.plot("premium"),
        )
    ]
    assert all(len(line) <= 102 for line in files_written(paths).splitlines()[1:])  # a few names a line


def test_a_run_with_trades_names_the_views_it_did_not_trade_and_a_risk_stop(tmp_path):
    text = _summary(
        _result(
            tmp_path,
            refusals={"warmup": 300, "below_entry": 1681, "stale": 2},
            risk_stopped="max_loss: PnL -201.00 USDT reached -200; no new entries",
        )
    )
    assert "  views not traded: premium inside the entry threshold 1,681, warm-up 300, stale book 2" in text
    assert "  risk stop: max_loss: PnL -201.00 USDT reached -200; no new entries" in text
    assert "no trade" not in text


def test_no_trade_says_why_most_frequent_first_naming_the_settings(tmp_path):
    cfg = _demo(tmp_path, risk={"max_position_btc": 0.01})
    refusals = {"warmup": 50, "max_position": 7, "below_entry": 1681, "premium_band": 3, "something_new": 1}
    lines = _summary(_result(tmp_path, cfg, entry_trades=0, refusals=refusals)).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  no trade: "))
    assert lines[start : start + 5] == [
        "  no trade: the premium never moved beyond the entry threshold (10 bps from its baseline) (1,681 views)",
        "            warm-up: no entry in the first 5 s (strategy.warmup_s = 5 s) (50 views)",
        "            an entry would have exceeded the position limit (risk.max_position_btc = 0.01 BTC) (7 views)",
        "            the premium was implausible, beyond its sanity band (risk.max_premium_bps = 1500 bps) (3 views)",
        "            something new (1 view)",
    ]


def test_size_below_minimum_is_said_in_words_with_the_setting_it_names(tmp_path):
    cfg = _demo(tmp_path, strategy={"sizing": "depth", "min_order_qty_btc": 0.002})
    text = _summary(_result(tmp_path, cfg, entry_trades=0, refusals={"size_below_min": 9}))
    assert (
        "  no trade: depth sizing found no size from the minimum order up that clears the entry threshold "
        "(strategy.min_order_qty_btc = 0.002 BTC) (9 views)" in text
    )
    text = _summary(_result(tmp_path, refusals={"size_below_min": 1200, "below_entry": 9}))
    assert "  views not traded: size below minimum 1,200, premium inside the entry threshold 9" in text


def test_no_trade_without_the_config_still_says_why_in_words(tmp_path):
    text = _summary(_result(tmp_path, entry_trades=0, refusals={"thin_books": 12, "risk_stopped": 4}))
    assert "  no trade: the order size was not executable on the visible depth (12 views)" in text
    assert "            new entries were stopped (the risk stop below) (4 views)" in text
    text = _summary(_result(tmp_path, entry_trades=0, refusals={}, startup_s=None))
    assert "  no trade: the session never started trading (the feeds were not both ready)" in text


def test_feeds_that_never_got_going_are_named_so_and_fatal_errors_are_printed(tmp_path):
    result = _result(tmp_path, fatal_exceptions=1, fatal_errors=["feed:upbit failed 6 times: the reason"])
    result.kpi["feeds"]["upbit"].update(connects=0, messages=0)
    result.kpi["actors"]["feed:upbit"].update(starts=6, restarts=5, causes={"connect": 6}, gave_up=True)
    result.kpi["actors"]["feed:binance"].update(starts=0)
    text = _summary(result)
    assert "  feeds: upbit never connected (6 failed attempts: connect 6; given up), binance not started" in text
    assert "  fatal exceptions 1:\n    feed:upbit failed 6 times: the reason" in text
    assert "DOWN" not in text and "rc=" not in text


def test_a_virtual_session_whose_warmup_outlasts_it_says_so(tmp_path, run_virtual):
    cfg = _demo(tmp_path, session={"logs_dir": str(tmp_path), "duration_s": 20}, strategy={"warmup_s": 600})
    result = run_virtual(cfg, SessionPaths(tmp_path, "warm"))
    assert result.kpi["entry_trades"] == 0 and set(result.kpi["refusals"]) == {"warmup"}
    views = result.kpi["refusals"]["warmup"]
    assert views > 100
    text = _summary(result)
    assert f"  no trade: warm-up (strategy.warmup_s = 600 s) outlasted the run ({views:,} views)\n" in text


def test_a_virtual_session_whose_premium_never_reaches_the_threshold_says_so(tmp_path, run_virtual):
    cfg = _demo(
        tmp_path,
        session={"logs_dir": str(tmp_path), "duration_s": 20},
        strategy={"zones": [], "entry_bps": 5000, "warmup_s": 2},
    )
    result = run_virtual(cfg, SessionPaths(tmp_path, "quiet"))
    refusals = result.kpi["refusals"]
    assert result.kpi["entry_trades"] == 0 and refusals["below_entry"] > refusals["warmup"] > 0
    lines = _summary(result).splitlines()
    start = lines.index(
        "  no trade: the premium never moved beyond the entry threshold (5000 bps from its baseline) "
        f"({refusals['below_entry']:,} views)"
    )
    assert lines[start + 1] == (
        f"            warm-up: no entry in the first 2 s (strategy.warmup_s = 2 s) ({refusals['warmup']:,} views)"
    )


def test_depth_sizing_and_split_entries_get_an_orders_line(tmp_path):
    orders = {
        "sizing": "depth",
        "parents": 4,
        "children": 10,
        "parents_stopped_early": 1,
        "planned_qty_btc": 2.0,
        "filled_qty_btc": 1.5,
        "filled_share": 0.75,
    }
    slippage = {"BUY": {"count": 3, "mean": 0.25, "median": 0.2, "std": 0.1}, "SELL": {"count": 0}}
    text = _summary(_result(tmp_path, orders=orders, slippage_bps=slippage))
    assert (
        "  orders: depth sizing, mean 0.5 BTC planned, 75% of it filled, 10 child orders (1 trade stopped early), "
        "slippage BUY 0.250, SELL - bps mean"
    ) in text
    fixed = {**orders, "sizing": "fixed", "children": 4}
    assert "orders:" not in _summary(_result(tmp_path, orders=fixed))  # the plain case says nothing more


def test_the_ledger_line_says_whether_the_balances_add_up_and_what_is_held(tmp_path):
    row = {"venue": "upbit", "asset": "BTC", "before": 0.5, "flows": -0.1, "fees": 0.0, "after": 0.4, "tolerance": 1e-9}
    ok = {"fills": 12, "ok": True, "rows": [{**row, "residual": 2e-17}]}
    inventory = {"open_btc": {"upbit": -0.1, "binance": 0.1}, "dust_btc": {"upbit": 3e-5}, "unexplained_btc": {}}
    exits = {"exit_retries": 3, "resent_legs": 4, "unwind_legs": 1, "trades_worked": 2}
    text = _summary(_result(tmp_path, reconciliation=ok, inventory=inventory, exits=exits))
    assert (
        "  ledger: balances = before + 12 fills (residuals within float rounding); open trades hold upbit "
        "-0.10000000, binance +0.10000000 BTC; dust upbit +0.00003000 BTC; 2 exits worked (4 legs re-sent, "
        "1 unwind hedge)"
    ) in text
    off = {"fills": 12, "ok": False, "rows": [{**row, "residual": -0.3}]}
    lost = {"open_btc": {}, "unexplained_btc": {"upbit": -0.3}}
    text = _summary(_result(tmp_path, reconciliation=off, inventory=lost))
    assert (
        "  ledger: balances DO NOT reconcile with the 12 fills: upbit BTC -0.3; BTC NOT EXPLAINED upbit -0.30000000"
        in text
    )
    assert "ledger:" not in _summary(_result(tmp_path))  # no fill: nothing to say
