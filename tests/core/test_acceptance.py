"""Acceptance criteria C1-C7 and distribution labels (actors.core.acceptance), from plain values; no session."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from actors.core.acceptance import Thresholds, criteria, distribution
from actors.core.kpi import Values
from actors.records.kpi import as_kpi

ROOT = Path(__file__).resolve().parents[2]
KPI_SAMPLE = ROOT / "tests" / "actors" / "kpi_sample.json"  # also read by tests/actors/test_inputs_hostile.py


def test_criteria_fail_when_they_should():
    kpi = json.loads(KPI_SAMPLE.read_text())
    t = Thresholds()
    assert all(c.passed for c in criteria(as_kpi(kpi), t))
    fixed = copy.deepcopy(kpi)
    fixed["available_volume"]["BUY"]["std_over_mean"] = 0.0  # the earlier system's fixed fallback
    assert [c.id for c in criteria(as_kpi(fixed), t) if not c.passed] == ["C3"]
    storm = copy.deepcopy(kpi)
    storm["reconnects"] = {"upbit": 2, "binance": 0}
    assert [c.id for c in criteria(as_kpi(storm), t) if not c.passed] == ["C6"]
    storm["chaos"]["kills_by_actor"] = {"feed:upbit": 2}
    assert all(c.passed for c in criteria(as_kpi(storm), t))  # two reconnects, both from chaos kills
    short = copy.deepcopy(kpi)
    short["duration_s"], short["fatal_exceptions"] = 59.0, 1
    assert [c.id for c in criteria(as_kpi(short), t) if not c.passed] == ["C1", "C7"]


def test_distribution_labels_say_what_they_mean():
    same = distribution([0.002] * 10)
    assert (same.kind, same.label) == ("FIXED", "FIXED (all values equal)")
    nearly = distribution([0.97, 1.0, 1.03])
    assert nearly.kind == "FIXED" and nearly.label == "FIXED (nearly constant, std/mean 0.024)"
    varied = distribution([1.0, 2.0, 3.0])
    assert (varied.kind, varied.label) == ("DISPERSED", "DISPERSED (values vary, std/mean 0.41)")
    negative = distribution([-1.0, -2.0, -3.0])  # slippage can be negative: the ratio's size is what counts
    assert negative.label == "DISPERSED (values vary, std/mean 0.41)"
    around_zero = distribution([-1.0, 1.0])
    assert around_zero.kind == "DISPERSED" and around_zero.label == "DISPERSED (values vary around a mean of 0)"
    empty = distribution([])
    assert (empty.kind, empty.label, empty.mean) == ("n/a", "n/a (no values)", None)


def test_distribution_rounds_floating_point_noise_as_the_kpi_file_does():
    noise = distribution([4.1e-17, 0.0, -2e-17])
    assert (noise.min, noise.max, noise.mean, noise.median, noise.std) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert noise.label == "FIXED (all values equal)"
    assert str(noise.min) == "0.0"  # not -0.0
    values = [0.2615, 1.0, 0.8700643204166533, 0.1 + 0.2]
    kept = Values()
    for x in values:
        kept.add(x)
    d, spread = distribution(values), kept.spread()
    assert (d.count, d.mean, d.median, d.std) == (spread.count, spread.mean, spread.median, spread.std)


def test_a_replay_that_serves_its_recording_to_the_end_passes_c1():
    kpi = json.loads(KPI_SAMPLE.read_text())
    kpi.update(market="replay", requested_duration_s=400.0, duration_s=346.6)
    kpi["replay"] = {
        "sources": ["btcusdt_20240808.gz (hftbacktest)"],
        "speed": "as fast as possible",
        "recording_s": 345.7,
        "recording_ended": True,
        "recorded": ["BTCUSDT"],
        "synthesised": ["KRW-BTC", "KRW-USDT"],
    }
    c1 = criteria(as_kpi(kpi), Thresholds())[0]
    assert c1.id == "C1" and c1.passed and c1.measured == "346.6 s (the recording ended)"
    kpi["replay"]["recording_ended"] = False  # stopped early (an error, Ctrl-C): too short
    assert not criteria(as_kpi(kpi), Thresholds())[0].passed
