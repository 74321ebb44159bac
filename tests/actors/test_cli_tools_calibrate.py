"""python -m actors.tools.calibrate warns when its fill events came from the calibrated fill model: a refit
gives back the numbers that went in."""

from __future__ import annotations

import json
from pathlib import Path

from actors.tools.calibrate import main


def _events(path: Path, legs: list[tuple[str, str, float, str | None]]) -> Path:
    """Fill events of zone 5/5: (leg, side, fill_ratio, fill_model) each; fill_model None leaves the field out."""
    lines = []
    for leg, side, ratio, model in legs:
        event = {"leg": leg, "side": side, "fill_ratio": ratio, "entry_bps": 5, "tp_bps": 5}
        if leg == "hedge":
            event = {"leg": "hedge", "side": side}
        if model is not None:
            event["fill_model"] = model
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(tmp_path: Path, events: Path, capsys) -> tuple[int, str, str]:
    status = main([str(events), "--out", str(tmp_path / "cal.json")])
    out, err = capsys.readouterr()
    return status, out, err


def test_deterministic_calibrated_input_is_named_an_echo(tmp_path, capsys):
    # the deterministic calibrated model: every leg of a zone and side gets the calibration's mean
    legs = [("entry", "BUY", 0.2615, "calibrated"), ("entry", "SELL", 1.0, "calibrated")] * 6
    legs += [("exit", "SELL", 0.9999999999999999, "calibrated")]  # filled_qty / order_qty: the same ratio
    legs += [("hedge", "BUY", 0.0, "simple")] * 3  # hedges are not measured, so not counted
    status, out, err = _run(tmp_path, _events(tmp_path / "fill_events_x.jsonl", legs), capsys)
    assert status == 0 and "wrote" in out  # a warning, not a refusal
    assert err.count("\n") == 1
    assert err.startswith("calibrate: warning: 13 of 13 entry/exit legs (100%) came from the calibrated fill model")
    assert "std 0" in err and "unchanged and measures nothing" in err and 'fill_model = "simple"' in err
    assert "config/calibration-run.toml" in err
    zone = json.loads((tmp_path / "cal.json").read_text())["zones"][0]
    assert zone["BUY"]["mean"] == 0.2615 and zone["BUY"]["var"] == 0.0  # what went in came back


def test_calibrated_legs_capped_by_depth_get_the_share_and_the_cause(tmp_path, capsys):
    legs = [("entry", "BUY", 0.8, "calibrated"), ("entry", "BUY", 0.5, "calibrated")]  # 0.5: depth capped it
    legs += [("exit", "SELL", 1.0, "calibrated"), ("exit", "SELL", 1.0, "simple")]
    legs += [("entry", side, 0.9, "simple") for side in ("BUY", "SELL") for _ in range(4)]
    status, _out, err = _run(tmp_path, _events(tmp_path / "fill_events_x.jsonl", legs), capsys)
    assert status == 0
    assert err.startswith("calibrate: warning: 3 of 12 entry/exit legs (25%) came from the calibrated fill model")
    assert "capped only by the book's depth" in err and "std 0" not in err


def test_measured_fill_events_give_no_warning(tmp_path, capsys):
    legs = [("entry", side, 0.5 + i / 100, "simple") for i in range(6) for side in ("BUY", "SELL")]
    legs += [("exit", "BUY", 0.7, None)]  # a file written before the field existed
    status, _out, err = _run(tmp_path, _events(tmp_path / "fill_events_x.jsonl", legs), capsys)
    assert status == 0 and err == ""


def test_an_unknown_fill_model_is_not_a_fill_event(tmp_path, capsys):
    legs = [("entry", "BUY", 0.5, "simple"), ("entry", "SELL", 0.5, "magic")]
    status, _out, err = _run(tmp_path, _events(tmp_path / "fill_events_x.jsonl", legs), capsys)
    assert status == 2 and ":2: not a fill event" in err and "$.fill_model" in err
