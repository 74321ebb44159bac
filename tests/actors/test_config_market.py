"""[market] (issue 26) and [feeds.upbit] rest_url: defaults that keep the one-pair session as it was, every bad
value named by its key with what was expected and what was given, and the checks across keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors import config
from actors.core.pairs import STABLECOINS, Pair

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "session": {"duration_s": 5, "logs_dir": "logs"},
    "strategy": {"entry_bps": 10, "tp_bps": 12, "order_qty_btc": 0.05},
}


def _parse(**tables: dict[str, Any]) -> config.Config:
    return config.parse({**BASE, **tables})


def _problem(**tables: dict[str, Any]) -> str:
    with pytest.raises(config.ConfigError) as err:
        _parse(**tables)
    return str(err.value)


def test_without_market_the_session_trades_the_one_pair_of_feeds():
    cfg = _parse()
    assert cfg.market == config.MarketConfig()
    assert cfg.market.pairs is None and not config.is_multi_pair(cfg) and not cfg.market.multi_pair
    assert config.one_pair(cfg) == Pair.of("BTC") == Pair("BTC", "KRW-BTC", "BTCUSDT")
    eth = _parse(feeds={"upbit": {"market": "KRW-ETH"}, "binance": {"symbol": "ETHUSDT"}})
    assert config.one_pair(eth) == Pair.of("ETH")
    assert cfg.market.exclude == STABLECOINS and cfg.market.aliases == () and cfg.market.max_pairs == 200
    assert (cfg.market.max_open_trades, cfg.market.max_pair_exposure_usdt, cfg.market.max_total_exposure_usdt) == (
        1,
        0,
        0,
    )
    assert cfg.market.listing_timeout_s == 10 and cfg.feeds.upbit.rest_url == "https://api.upbit.com"
    with pytest.raises(ValueError, match="not set"):
        cfg.market.wanted()


@pytest.mark.parametrize("name", ["demo.toml", "d84_2.toml", "d85_x.toml"])
def test_the_shipped_one_pair_configs_stay_one_pair(name):
    cfg = config.load(ROOT / "config" / name)
    assert not config.is_multi_pair(cfg) and config.one_pair(cfg) == Pair.of("BTC")


def test_market_keys_and_their_round_trip():
    cfg = _parse(
        market={
            "pairs": ["XRP", "BTC"],
            "exclude": ["USDT"],
            "aliases": {"BTT": "BTTC", "AAA": "AAB"},
            "max_pairs": 50,
            "max_open_trades": 3,
            "max_pair_exposure_usdt": 1000,
            "max_total_exposure_usdt": 5000.5,
            "listing_timeout_s": 3,
        },
        feeds={"upbit": {"rest_url": "http://127.0.0.1:9"}},
    )
    market = cfg.market
    assert market.pairs == ("XRP", "BTC") and market.wanted() == ("XRP", "BTC") and config.is_multi_pair(cfg)
    assert market.aliases == (("AAA", "AAB"), ("BTT", "BTTC")) and market.alias_map() == {"BTT": "BTTC", "AAA": "AAB"}
    assert (market.max_pairs, market.max_open_trades, market.max_total_exposure_usdt) == (50, 3, 5000.5)
    assert cfg.feeds.upbit.rest_url == "http://127.0.0.1:9"
    assert config.parse(config.unparse(cfg)) == cfg
    everything = _parse(market={"pairs": "all"})
    assert everything.market.wanted() == "all" and config.parse(config.unparse(everything)) == everything
    assert "pairs" not in config.unparse(_parse())["market"]  # TOML has no null: absent stays absent


PAIRS_EXPECTED = 'expected "all" or a non-empty list of distinct upper-case ASCII coins such as ["BTC", "ETH"]'
ALIASES_EXPECTED = "expected a table of upper-case ASCII coins, Upbit's name = Binance's, no two onto one"
BAD = [
    ({"pairs": "ALL"}, f"$.market.pairs: {PAIRS_EXPECTED}, got 'ALL'"),
    ({"pairs": []}, f"$.market.pairs: {PAIRS_EXPECTED}, got []"),
    ({"pairs": ["btc"]}, f"$.market.pairs: {PAIRS_EXPECTED}, got ['btc']"),
    ({"pairs": ["ＢＴＣ"]}, f"$.market.pairs: {PAIRS_EXPECTED}, got ['ＢＴＣ']"),
    ({"pairs": ["BTC", "BTC"]}, f"$.market.pairs: {PAIRS_EXPECTED}, got ['BTC', 'BTC']"),
    ({"pairs": ["BTC", 1]}, f"$.market.pairs: {PAIRS_EXPECTED}, got ['BTC', 1]"),
    ({"pairs": 3}, f"$.market.pairs: {PAIRS_EXPECTED}, got 3"),
    ({"exclude": "USDT"}, "$.market.exclude: expected a list of strings, got 'USDT'"),
    ({"exclude": ["USDT", 5]}, "$.market.exclude[1]: expected a string, got 5"),
    ({"exclude": ["usdt"]}, "$.market.exclude: expected a list of upper-case ASCII coins such as"),
    ({"aliases": {"btt": "BTTC"}}, f"$.market.aliases: {ALIASES_EXPECTED}"),
    ({"aliases": {"A": "X", "B": "X"}}, f"$.market.aliases: {ALIASES_EXPECTED}"),
    ({"aliases": ["BTT"]}, f"$.market.aliases: {ALIASES_EXPECTED}"),
    ({"aliases": {"BTT": 1}}, f"$.market.aliases: {ALIASES_EXPECTED}"),
    ({"max_pairs": 0}, "$.market.max_pairs: expected an integer from 1 to 1000, got 0"),
    ({"max_pairs": 1001}, "$.market.max_pairs: expected an integer from 1 to 1000, got 1001"),
    ({"max_pairs": 2.5}, "$.market.max_pairs: expected an integer, got 2.5"),
    ({"max_open_trades": 0}, "$.market.max_open_trades: expected an integer from 1 to 1000, got 0"),
    ({"max_open_trades": True}, "$.market.max_open_trades: expected an integer, got True"),
    ({"max_pair_exposure_usdt": -1}, "$.market.max_pair_exposure_usdt: expected a number >= 0, got -1"),
    ({"max_total_exposure_usdt": float("inf")}, "$.market.max_total_exposure_usdt: expected a finite number, got inf"),
    ({"listing_timeout_s": 0}, "$.market.listing_timeout_s: expected a number > 0, got 0"),
    ({"listing_timeout_s": float("nan")}, "$.market.listing_timeout_s: expected a finite number, got nan"),
    ({"symbols": ["BTC"]}, "$.market.symbols: unknown key (expected one of: pairs, exclude, aliases, max_pairs,"),
]


@pytest.mark.parametrize("market, line", BAD)
def test_a_bad_market_value_names_its_key_what_was_expected_and_what_was_given(market, line):
    problem = _problem(market=market)
    assert line in problem and problem.count("\n") == 0, problem


def test_a_bad_upbit_rest_url_is_named():
    assert "$.feeds.upbit.rest_url: expected an http:// or https:// URL, got 'ftp://x'" in _problem(
        feeds={"upbit": {"rest_url": "ftp://x"}}
    )


def test_a_lone_string_is_no_longer_split_into_recording_files():
    assert "$.replay.files: expected a list of strings, got 'a.jsonl'" in _problem(replay={"files": "a.jsonl"})
    assert "$.replay.files[1]: expected a string, got 3" in _problem(replay={"files": ["a.jsonl", 3]})


@pytest.mark.parametrize(
    "tables, line",
    [
        (
            {"market": {"pairs": ["BTC", "USDC"]}},
            "$.market.pairs: expected coins not in market.exclude, got ['BTC', 'USDC']: USDC excluded",
        ),
        (
            {"market": {"pairs": ["BTC", "ETH", "XRP"], "max_pairs": 2}},
            "$.market.pairs: expected at most market.max_pairs (2) coins, got 3",
        ),
        (
            {
                "market": {"pairs": "all"},
                "session": {**BASE["session"], "market": "replay"},
                "replay": {"files": ["r"]},
            },
            "$.market.pairs: expected one coin or none when session.market = 'replay' (replay serves one pair "
            "today), got 'all'",
        ),
        (
            {
                "market": {"pairs": ["BTC", "ETH"]},
                "session": {**BASE["session"], "market": "replay"},
                "replay": {"files": ["r"]},
            },
            "replay serves one pair today), got ['BTC', 'ETH']",
        ),
        (
            {"market": {"max_pair_exposure_usdt": 2000, "max_total_exposure_usdt": 1000}},
            "$.market.max_pair_exposure_usdt: expected at most max_total_exposure_usdt (1000) when both are set, "
            "got 2000",
        ),
    ],
)
def test_checks_across_keys(tables, line):
    assert line in _problem(**tables)


def test_replay_of_one_coin_and_exposure_caps_alone_are_fine():
    replay = {"session": {**BASE["session"], "market": "replay"}, "replay": {"files": ["r"]}}
    assert _parse(market={"pairs": ["ETH"]}, **replay).market.pairs == ("ETH",)
    assert _parse(market={"max_pair_exposure_usdt": 2000}).market.max_total_exposure_usdt == 0


def test_a_bad_market_value_through_the_command_line_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "market.toml"
    path.write_text(
        f'[session]\nduration_s = 5\nlogs_dir = "{tmp_path / "logs"}"\n'
        "[strategy]\nentry_bps = 10\ntp_bps = 12\norder_qty_btc = 0.05\n"
        '[market]\npairs = "every"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "actors.session", "--config", str(path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("config error: ") and f"$.market.pairs: {PAIRS_EXPECTED}, got 'every'" in proc.stderr
