"""A session's realism (docs/realism.md): the KPI block measured while it runs agrees with the CLI on its premium
file; which model and reference a session names; the report's first line says where its market came from and
what its PnL measures, its Realism section compares with the real windows, and every plot names its market."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import msgspec
import numpy as np
import pytest

from actors import config
from actors.core import realism
from actors.records import realism as records_realism
from actors.records.kpi import Kpi, as_kpi
from actors.records.paths import SessionPaths
from actors.records.summary import market_label, summary
from actors.tools import realism as tool
from actors.tools.report import write_report
from actors.tools.report_plots import figures
from actors.tools.session_files import load_session

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "actors" / "market_reference.json"
SAMPLE_KPI = ROOT / "tests" / "actors" / "kpi_sample.json"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def default_reference(tmp_path, monkeypatch) -> Path:
    """The test reference as the project's default model file (the shipped one may not exist yet)."""
    root = tmp_path / "project"
    path = root / records_realism.DEFAULT_MODEL
    path.parent.mkdir(parents=True)
    shutil.copy(REFERENCE, path)
    monkeypatch.setattr(records_realism, "ROOT", root)
    return path


def test_a_simulated_session_measures_its_own_market_as_the_cli_does(tmp_path, run_virtual, default_reference):
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {"logs_dir": str(tmp_path), "duration_s": 2040},
            "sim": {"step_ms": 5000, "market_model": "ou"},  # a market step every 5 s: 34 minutes in seconds
            "strategy": {"warmup_s": 3000},  # and no trade: the market is what this test is about
        },
    )
    paths = SessionPaths(tmp_path, "real1")
    result = run_virtual(cfg, paths)
    kpi = result.kpi
    block = kpi["realism"]
    assert (block["market"], block["model"]) == ("sim", {"name": "ou", "path": None, "fitted_to": None})
    assert block["reference"] == "test_reference_2024h2" and "not fitted to real data" in block["reference_note"]
    assert block["clock"] == "session" and block["stretches"] == 1 and 34 <= block["minutes"] <= 36
    measured = {k: s["measured"] for k, s in block["stats"].items() if s["measured"] is not None}
    # 34 minutes: the 1- and 5-minute changes and every correlation and moment, not the 15-minute change (45)
    assert "premium_rms_change_5m_bps" in measured and "upbit_follow_corr" in measured
    assert "premium_rms_change_15m_bps" not in measured and len(measured) == len(realism.STATISTICS) - 3
    # the CLI on the session's premium file gives the same figures (the file rounds the premium to 1e-4 bps)
    cli = tool.figures(tool.read_series(paths.premium).stretches, records_realism.load_model_reference(REFERENCE))
    assert {k: s.measured for k, s in cli.stats.items() if s.measured is not None} == pytest.approx(measured, rel=1e-4)
    # verdicts are the core's, against the reference file
    for key, stat in block["stats"].items():
        ref = json.loads(REFERENCE.read_text())["reference"]["stats"].get(key)
        if stat["measured"] is None or ref is None:
            assert stat["agrees"] is None
            continue
        assert stat["agrees"] == realism.agrees(key, stat["measured"], ref["value"])
        assert stat["in_window_range"] == (ref["p10"] <= stat["measured"] <= ref["p90"])

    inside = [s["in_window_range"] for s in block["stats"].values() if s["in_window_range"] is not None]
    assert len(inside) == len(measured)
    assert (
        "  market: simulated market (the old OU model, not fitted to real data); realism: "
        f"{sum(inside)} of {len(inside)} statistics measured inside the real 180-min windows' 10-90 % range"
    ) in summary(result.kpi, result.config).splitlines()

    text = write_report(tmp_path).read_text()
    lines = text.splitlines()
    assert lines[2].startswith("**Simulated market**: the old Ornstein-Uhlenbeck model")
    assert "not fitted to real data. Its PnL measures the strategy against that model" in lines[2]
    assert text.index("## Realism") < text.index("## Acceptance criteria")
    section = text[text.index("## Realism") : text.index("## Acceptance criteria")]
    assert section.count("\n| ") == 1 + len(measured)  # a header row, then a row per statistic measured
    assert "A single 3-hour window of the real market varies a lot" in section
    assert "This run traded 34 min, the real windows are 180 min" in section
    assert "RMS premium change over 15 min (bps) (needs a stretch of at least 45 consecutive minutes)" in section
    for name, fig in figures(load_session(paths)).items():
        assert fig._suptitle.get_text() == "simulated market (the old OU model, not fitted to real data)", name


# -- which model and reference -------------------------------------------------------------------


def test_a_session_on_the_default_model_is_compared_with_that_model_s_reference(default_reference):
    r = records_realism.session_realism("sim", "default")
    source = json.loads(REFERENCE.read_text())["reference"]["source"]
    assert r.model == records_realism.MarketModelInfo("test_reference_2024h2", records_realism.DEFAULT_MODEL, source)
    assert r.reference is not None and r.reference.path == records_realism.DEFAULT_MODEL and r.reference_note is None


def test_a_model_file_named_by_path_is_its_own_reference(tmp_path, default_reference):
    document = json.loads(REFERENCE.read_text())
    document["name"] = "mine"
    document["reference"]["stats"]["premium_change_acf1"]["value"] = -0.5
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(document))
    r = records_realism.session_realism("replay", str(mine))
    assert r.model is not None and (r.model.name, r.model.path) == ("mine", str(mine))
    assert r.reference is not None and r.reference.stats["premium_change_acf1"].value == -0.5


def test_live_and_unreadable_models_say_which_reference_or_why_none(tmp_path, default_reference):
    live = records_realism.session_realism("live", "default")
    assert live.model is None and live.reference is not None and live.reference_note.startswith("live")
    missing = records_realism.session_realism("sim", str(tmp_path / "nope.json"))
    assert missing.model is not None and missing.model.fitted_to is None
    assert missing.reference is not None and missing.reference.path == records_realism.DEFAULT_MODEL
    assert missing.reference_note == (
        f"{tmp_path / 'nope.json'}: file not found: compared with the default model file's reference"
    )
    default_reference.unlink()
    ou = records_realism.session_realism("sim", "ou")
    assert (
        ou.reference is None and "not fitted" in str(ou.reference_note) and "file not found" in str(ou.reference_note)
    )


# -- the report's words, from KPI files ----------------------------------------------------------


def _kpi(**fields: Any) -> Kpi:
    kpi = json.loads(SAMPLE_KPI.read_text())
    kpi.update(fields)
    return as_kpi(kpi)


def _block(market: str, model: dict | None, minutes: int = 200) -> dict:
    """A KPI realism block measured on ``minutes`` of a random walk."""
    rng = np.random.default_rng(4)
    binance = 60_000 * np.exp(rng.normal(0, 7e-4, minutes).cumsum())
    upbit = 1380 * binance * np.exp(rng.normal(0, 3e-4, minutes))
    stretch = realism.Stretch(30 + rng.normal(0, 6, minutes).cumsum(), binance, upbit)
    reference = records_realism.load_model_reference(REFERENCE)
    info = None if model is None else records_realism.MarketModelInfo(**model)
    return msgspec.to_builtins(records_realism.figures([stretch], reference, market=market, model=info))


FITTED = {"name": "upbit_binance_btc_2024h2", "path": "config/market/x.json", "fitted_to": "real 1-minute closes"}


def test_the_report_says_where_its_market_came_from(tmp_path):
    replay = {
        "files": ["rec.gz"],
        "sources": ["rec.gz (hftbacktest)"],
        "speed": "as fast as possible",
        "recording_s": 300.0,
        "recorded": ["BTCUSDT"],
        "synthesised": ["KRW-BTC", "KRW-USDT"],
    }
    cases = {
        "sim": (
            {"market": "sim", "realism": _block("sim", FITTED)},
            "**Simulated market**: model upbit_binance_btc_2024h2 (config/market/x.json), fitted to real 1-minute "
            "closes. Its PnL measures the strategy against that model, not against the real market.",
        ),
        "replay": (
            {"market": "replay", "replay": replay, "realism": _block("replay", FITTED)},
            "**Replayed market**: BTCUSDT recorded (rec.gz); KRW-BTC, KRW-USDT synthesised by model "
            "upbit_binance_btc_2024h2 (config/market/x.json), fitted to real 1-minute closes. Its PnL measures the "
            "strategy against that recording and, where books were synthesised, that model.",
        ),
        "live": ({"market": "live", "realism": _block("live", None)}, "**Live market**: the exchanges' own books"),
        "before": ({"market": "sim"}, "**Simulated market**: a market model the KPI file does not name"),
    }
    for name, (fields, first) in cases.items():
        kpi = _kpi(**fields)
        assert tool.market_sentence(kpi).startswith(first), (name, tool.market_sentence(kpi))
        assert bool(tool.section(kpi)) == (name in ("sim", "replay")), name
    section = "\n".join(tool.section(_kpi(**cases["replay"][0])))
    assert "measured on this session's own replayed market: 200 one-minute closes" in section
    assert "| RMS premium change over 60 min (bps) |" in section
    labels = {name: market_label(_kpi(**fields)) for name, (fields, _) in cases.items()}
    assert labels == {
        "sim": "simulated market (model upbit_binance_btc_2024h2, fitted to real data)",
        "replay": "replayed market (synthesised books: model upbit_binance_btc_2024h2, fitted to real data)",
        "live": "live market",
        "before": "simulated market (the old OU model, not fitted to real data)",
    }


def test_the_section_names_what_a_short_run_could_not_measure():
    kpi = _kpi(market="sim", duration_s=600.0, realism=_block("sim", FITTED, minutes=10))
    section = "\n".join(tool.section(kpi))
    assert "| RMS premium change over 1 min (bps) |" in section
    assert "Not measured, too short (the longest stretch here is 10 min)" in section
    for stat in realism.STATISTICS[1:]:  # only the 1-minute change (3 minutes) is measured in 10
        assert f"{stat.label} (needs " in section, stat.key
    assert "This run traded 10 min, the real windows are 180 min" in section


def test_without_a_reference_the_section_shows_the_figures_alone_and_says_why():
    rng = np.random.default_rng(6)
    stretch = realism.Stretch(rng.normal(0, 5, 60).cumsum())
    note = "no reference: config/market/upbit_binance_btc_2024h2.json: file not found"
    block = records_realism.figures([stretch], None, market="sim", reference_note=note)
    kpi = _kpi(market="sim", realism=msgspec.to_builtins(block))
    section = "\n".join(tool.section(kpi))
    assert "Real: no real reference (config/market/upbit_binance_btc_2024h2.json: file not found)." in section
    assert "| statistic | this session |\n|---|---|\n| RMS premium change over 1 min (bps) |" in section
    assert "in range" not in section
