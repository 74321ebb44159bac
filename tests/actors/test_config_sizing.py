"""Bad sizing, splitting, exit and lot settings are config errors naming the field, the expected and the given
value."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import config
from actors.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "strategy, words",
    [
        ({"sizing": "biggest"}, "$.strategy.sizing: expected one of 'fixed', 'depth', got 'biggest'"),
        (
            {"l2_source": "kraken"},
            "$.strategy.l2_source: expected one of 'multi', 'upbit', 'binance', 'mock', got 'kraken'",
        ),
        ({"max_depth_share": 0}, "$.strategy.max_depth_share: expected a number from 0.01 to 1, got 0"),
        ({"max_depth_share": 1.5}, "$.strategy.max_depth_share"),
        ({"slices": 0}, "$.strategy.slices: expected an integer from 1 to 100, got 0"),
        ({"slice_interval_ms": -1}, "$.strategy.slice_interval_ms"),
        ({"max_order_qty_btc": 0}, "$.strategy.max_order_qty_btc"),
        (
            {"min_order_qty_btc": 3, "max_order_qty_btc": 2},
            "$.strategy.min_order_qty_btc: expected at most max_order_qty_btc (2), got 3",
        ),
        ({"slippage_calibration": "/nonexistent/drift.json"}, "$.strategy.slippage_calibration"),
    ],
)
def test_bad_sizing_settings_name_the_field(strategy, words):
    with pytest.raises(ConfigError) as err:
        config.load(ROOT / "config" / "d85_x.toml", {"strategy": strategy})
    assert words in str(err.value)


def test_bad_depth_profile_names_the_field():
    with pytest.raises(ConfigError, match=r"\$\.sim\.binance_occupancy"):
        config.load(ROOT / "config" / "d85_x.toml", {"sim": {"binance_occupancy": 2}})


@pytest.mark.parametrize(
    "tables, words",
    [
        ({"strategy": {"exit_retries": -1}}, "$.strategy.exit_retries: expected an integer from 0 to 100, got -1"),
        ({"strategy": {"exit_retries": 1.5}}, "$.strategy.exit_retries: expected an integer"),
        ({"lots": {"binance_min_usdt": -5}}, "$.lots.binance_min_usdt: expected a number >= 0, got -5"),
        ({"lots": {"upbit_btc": 0}}, "$.lots.upbit_btc: expected a number > 0, got 0"),
        ({"lots": {"kraken_btc": 0.1}}, "$.lots"),
    ],
)
def test_bad_exit_and_lot_settings_name_the_field(tables, words):
    with pytest.raises(ConfigError) as err:
        config.load(ROOT / "config" / "d85_x.toml", tables)
    assert words in str(err.value)


def test_lots_default_to_the_venues_rules_and_reach_the_trader(monkeypatch):
    from actors.wiring import trader

    monkeypatch.chdir(ROOT)  # the drift model's path in the config is relative to the project
    cfg = config.load(ROOT / "config" / "d85_x.toml", {"lots": {"binance_min_usdt": 10}})
    lots = trader(cfg, "s", 0.0, config.read_inputs(cfg)).execution.lots
    assert (lots.upbit_btc, lots.upbit_min_krw, lots.binance_btc, lots.binance_min_usdt) == (1e-8, 5000, 1e-5, 10)
    assert cfg.strategy.exit_retries == 3
