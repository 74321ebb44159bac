"""Acceptance criteria C1-C7 and distribution labels (actors.core.acceptance), from plain values; no session."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from actors.core.acceptance import Thresholds, criteria, distribution
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


def test_distribution_labels():
    assert distribution([0.002] * 10).label == "FIXED"
    assert distribution([1.0, 2.0, 3.0]).label == "DISPERSED"
    assert distribution([]).label == "n/a"


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
