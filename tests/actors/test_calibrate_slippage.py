"""python -m actors.calibrate --slippage: the drift model from fill events, refused input, and the executor
loading what it wrote."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from actors import config
from actors.config import ConfigError
from actors.core.vocabulary import Side
from actors.tools.calibrate import main

ROOT = Path(__file__).resolve().parents[2]


def _legs(path: Path, n: int = 60, drift: float = 0.4, predicted: bool = True) -> Path:
    rng = random.Random(5)
    lines = []
    for i in range(n):
        p = rng.uniform(0.0, 1.0)
        leg = {
            "leg": "entry",
            "venue": "upbit" if i % 2 else "binance",
            "side": "BUY",
            "order_qty": 0.3,
            "filled_qty": 0.3,
            "slippage_bps": p + drift + rng.gauss(0, 0.1),
        }
        if predicted:
            leg["predicted_slippage_bps"] = p
        lines.append(json.dumps(leg))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_slippage_model_is_built_and_loaded_by_the_executor(tmp_path, capsys):
    out = tmp_path / "drift.json"
    assert main([str(_legs(tmp_path / "fill_events_a.jsonl")), "--slippage", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "binance BUY 0.25-0.5 BTC: drift +0.4" in printed and "wrote" in printed
    model = config.read_slippage_calibration(str(out))
    assert model.version == "drift" and model.expected_bps("upbit", Side.BUY, 0.3) == pytest.approx(0.4, abs=0.05)
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        {"strategy": {"slippage_calibration": str(out)}, "session": {"logs_dir": str(tmp_path)}},
    )
    from actors.wiring import trader

    assert trader(cfg, "sid", 0.0, config.read_inputs(cfg)).drift == model


def test_slippage_input_without_predictions_or_malformed_is_refused(tmp_path, capsys):
    old = _legs(tmp_path / "old.jsonl", predicted=False)
    assert main([str(old), "--slippage", "--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err
    assert "no leg that filled carries predicted_slippage_bps" in err and not (tmp_path / "d.json").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"venue": "upbit", "side": "SIDEWAYS", "order_qty": 1, "filled_qty": 1, "slippage_bps": 0}\n')
    assert main([str(bad), "--slippage", "--out", str(tmp_path / "d.json")]) == 2
    assert "bad.jsonl:1: not a fill event" in capsys.readouterr().err


def test_a_config_naming_a_bad_drift_model_is_a_config_error(tmp_path):
    wrong = tmp_path / "cal.json"
    wrong.write_text(json.dumps({"version": "x", "kind": "fill_ratio"}))
    with pytest.raises(ConfigError, match=r"\$\.strategy\.slippage_calibration: .*not a slippage drift model"):
        config.load(ROOT / "config" / "demo.toml", {"strategy": {"slippage_calibration": str(wrong)}})


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d["buckets"][0].update(venue="kraken"), "'kraken' is not a valid Venue"),
        (lambda d: d["buckets"][0].update(bucket=99), "bucket: expected 0 to 7, got 99"),
        (lambda d: d["pooled"][0].update(n=0), "n: expected >= 1, got 0"),
        (lambda d: d.update(bucket_edges_btc=[1, 2]), "bucket_edges_btc: expected"),
    ],
)
def test_a_drift_model_that_lies_is_refused_naming_what(tmp_path, capsys, change, words):
    out = tmp_path / "drift.json"
    assert main([str(_legs(tmp_path / "fill_events_a.jsonl")), "--slippage", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    change(document)
    out.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="not a slippage drift model") as err:
        config.read_slippage_calibration(str(out))
    assert words in str(err.value)


def test_python_m_actors_calibrate_is_the_same_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "actors.calibrate", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0 and "--slippage" in proc.stdout
