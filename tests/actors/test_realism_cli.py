"""The realism CLI (``python -m actors.tools.realism``, actors/tools/realism.py) and the market model file's
reference (actors/records/realism.py): the real data's figures from the shared market file, checked
independently; premium CSVs of every version; pooling; hostile input, each one line and exit status 2."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actors.core import realism
from actors.records import realism as records_realism
from actors.records.status import PREMIUM_COLUMNS
from actors.tools import realism as tool

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "actors" / "market_reference.json"
MARKET = Path("market") / "upbit_binance_btc_1m_2024-08-24_2025-02-23.csv.gz"


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors.tools.realism", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def _main(*args: str) -> str:
    """The CLI in this process (a subprocess costs a third of a second): its stdout; exit status 0 asserted."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = tool.main(list(args))
    assert status == 0, err.getvalue()
    return out.getvalue()


def _figures(*files: Path, reference: Path = REFERENCE) -> dict:
    return json.loads(_main("--json", "--reference", str(reference), *map(str, files)))


def _walk(n: int, seed: int, *, step_bps: float = 5.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n minutes of a premium random walk and two venues' prices (Upbit a minute behind Binance, plus noise)."""
    rng = np.random.default_rng(seed)
    premium = 30 + rng.normal(0, step_bps, n).cumsum()
    binance = 60_000 * np.exp(rng.standard_t(4, n).cumsum() * 5e-4)
    upbit = 1380 * np.roll(binance, 1) * np.exp(rng.normal(0, 3e-4, n)) * (1 + premium / 1e4)
    upbit[0] = upbit[1]
    return premium, binance, upbit


def premium_csv(
    path: Path, minutes: int, seed: int = 1, *, width: int = len(PREMIUM_COLUMNS), every_s: float = 10.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A premium CSV of ``width`` columns: a row every ``every_s`` seconds whose values change once a minute;
    returns the minutes' values (the closes the file holds)."""
    premium, binance, upbit = _walk(minutes, seed)
    rows = [",".join(PREMIUM_COLUMNS[:width])]
    for i in range(int(minutes * 60 / every_s)):
        t = 0.5 + i * every_s
        m = int(t // 60)
        cells = [f"{t:.3f}", f"{premium[m]:.4f}", "0.0000", f"2026-01-01T00:{m % 60:02d}:00+00:00", "0.000000"]
        cells += [f"{binance[m]:.12g}", f"{upbit[m]:.12g}", "1380"]
        rows.append(",".join(cells[:width]))
    path.write_text("\n".join(rows) + "\n")
    return premium, binance, upbit


# -- the real data -------------------------------------------------------------------------------------


def test_on_the_shared_market_file_it_prints_the_real_figures(fixtures):
    """Two of the figures recomputed here from the raw columns, block by block, without the project's reader:
    an independent check of how the CLI reads the file (columns, blocks never spanned)."""
    path = fixtures / MARKET
    out = _figures(path)["realism"]
    blocks: dict[str, list[list[str]]] = {}
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            blocks.setdefault(row["block_id"], []).append([row["premium_usdt_bps"], row["binance_usdt_close"]])
    changes = np.concatenate([np.diff(np.array(b, dtype=float)[:, 0]) for b in blocks.values()])
    returns = np.concatenate([np.diff(np.log(np.array(b, dtype=float)[:, 1])) * 1e4 for b in blocks.values()])
    assert out["minutes"] == sum(len(b) for b in blocks.values())
    assert out["stats"]["premium_rms_change_1m_bps"]["measured"] == pytest.approx(math.sqrt(np.mean(changes**2)), 1e-5)
    assert out["stats"]["binance_return_std_bps"]["measured"] == pytest.approx(returns.std(), 1e-5)
    # the figures the market README states, to the digits it states them (10.25 is stated 10.3)
    for key, stated, digits in (
        ("premium_rms_change_5m_bps", 10.3, 1),
        ("premium_level_acf1", 0.95, 2),
        ("upbit_return_std_bps", 7.17, 2),
        ("upbit_binance_corr", 0.65, 2),
    ):
        assert out["stats"][key]["measured"] == pytest.approx(stated, abs=0.6 * 10**-digits), key


def test_the_test_reference_is_the_shared_data_s_own(fixtures):
    """tests/actors/market_reference.json (the reference the session tests compare with) is what measure and
    window_spread give on the shared market file, whole and in windows of 180 min."""
    series = tool.read_series(fixtures / MARKET)
    model = records_realism.load_model_reference(REFERENCE)
    assert model.window_min == 180
    measured = realism.measure(series.stretches)
    assert set(model.stats) == set(measured)
    for key, ref in model.stats.items():
        assert ref.value == pytest.approx(measured[key], rel=1e-5), key
        spread = realism.window_spread(series.stretches, key, 180)
        assert spread is not None and (ref.p10, ref.p50, ref.p90) == pytest.approx(spread, rel=1e-5), key
    # the CLI on the real data agrees with the real reference: every statistic within its tolerance
    out = _figures(fixtures / MARKET)["realism"]
    assert all(s["agrees"] for s in out["stats"].values() if s["measured"] is not None)


# -- premium CSVs ----------------------------------------------------------------------------------


def test_a_premium_csv_gives_the_statistics_of_its_minute_closes(tmp_path):
    path = tmp_path / "premium_a.csv"
    premium, binance, upbit = premium_csv(path, 200)
    out = _figures(path)
    expected = realism.measure([realism.Stretch(premium, binance, upbit)])
    stats = out["realism"]["stats"]
    assert set(k for k, s in stats.items() if s["measured"] is not None) == set(expected)
    for key, value in expected.items():
        assert stats[key]["measured"] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert out["files"] == [{"path": str(path), "kind": "premium", "clock": "session", "rows": 1200, "stretches": 1}]
    # the 180-minute change needs 540 minutes: named, with what it needs
    assert stats["premium_rms_change_180m_bps"]["needs"] == "a stretch of at least 540 consecutive minutes"
    ref = json.loads(REFERENCE.read_text())["reference"]["stats"]["premium_rms_change_1m_bps"]
    assert stats["premium_rms_change_1m_bps"]["p90"] == ref["p90"]


def test_older_premium_files_give_the_premium_statistics_only(tmp_path):
    for width in (4, 5):
        path = tmp_path / f"premium_w{width}.csv"
        premium, _, _ = premium_csv(path, 60, width=width)
        stats = _figures(path)["realism"]["stats"]
        measured = {k for k, s in stats.items() if s["measured"] is not None}
        assert measured == set(realism.measure([realism.Stretch(premium)])), width
        assert not any(k.startswith(("binance", "upbit")) for k in measured)
        assert "Binance's closes" in stats["binance_return_std_bps"]["needs"]


def test_sessions_are_pooled_as_separate_stretches(tmp_path):
    a, b = tmp_path / "premium_a.csv", tmp_path / "premium_b.csv"
    pa, ba, ua = premium_csv(a, 50, seed=1)
    pb, bb, ub = premium_csv(b, 50, seed=2)
    out = _figures(a, b)["realism"]
    assert (out["minutes"], out["stretches"], out["longest_min"]) == (100, 2, 50)
    expected = realism.measure([realism.Stretch(pa, ba, ua), realism.Stretch(pb, bb, ub)])
    joined = realism.measure([realism.Stretch(np.r_[pa, pb], np.r_[ba, bb], np.r_[ua, ub])])
    key = "premium_rms_change_5m_bps"
    assert out["stats"][key]["measured"] == pytest.approx(expected[key], rel=1e-6)
    assert expected[key] != pytest.approx(joined[key], rel=1e-3)  # spanning the two would differ


def test_a_gap_in_the_samples_ends_a_stretch_and_a_torn_last_row_is_skipped(tmp_path):
    path = tmp_path / "premium_gap.csv"
    premium_csv(path, 40)
    rows = path.read_text().splitlines()
    del rows[1 + 20 * 6 : 1 + 22 * 6]  # minutes 20 and 21 have no sample
    path.write_text("\n".join(rows) + "\n" + "2399.000,31.2")  # and a row torn mid-write
    out = _figures(path)
    assert out["realism"]["stretches"] == 2 and out["realism"]["minutes"] == 38
    assert out["files"][0]["rows"] == 40 * 6 - 12


def test_a_replay_s_premium_file_is_measured_on_the_recording_s_clock(tmp_path):
    """A replay's KPI file beside the premium file: the minutes are ts_utc's, as the session's KPI measured."""
    path = tmp_path / "premium_rep.csv"
    rows = [",".join(PREMIUM_COLUMNS)]
    for i in range(600):  # session clock 0.1 s apart, the recording's 6 s apart (a replay at 60x)
        rows.append(f"{i / 10:.3f},{float(i)},0,2024-08-08T00:{i * 6 // 60:02d}:{i * 6 % 60:02d}+00:00,0,1,1,1")
    path.write_text("\n".join(rows) + "\n")
    on_session_clock = tool.read_series(path)
    assert on_session_clock.clock == "session" and sum(len(s) for s in on_session_clock.stretches) == 0  # 1 min
    (tmp_path / "kpi_rep.json").write_text((ROOT / "tests" / "actors" / "kpi_sample.json").read_text())
    kpi = json.loads((tmp_path / "kpi_rep.json").read_text())
    kpi["market"] = "replay"
    (tmp_path / "kpi_rep.json").write_text(json.dumps(kpi))
    out = _figures(path)
    assert out["files"][0]["clock"] == "recording" and out["realism"]["minutes"] == 60
    # the premium rises 10 bps a minute of recording: every 1-minute change is 10 bps
    assert out["realism"]["stats"]["premium_rms_change_1m_bps"]["measured"] == pytest.approx(10.0)


def test_the_table_says_what_each_figure_is(tmp_path):
    path = tmp_path / "premium_t.csv"
    premium_csv(path, 100)
    proc = _run("--reference", str(REFERENCE), str(path))  # as a command
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "premium CSV (session clock), 600 rows, 100 one-minute closes in 1 stretch" in text
    assert "real Upbit KRW-BTC / Binance BTCUSDT 1-minute closes" in text and "180 min" in text
    assert "RMS premium change over 15 min (bps)" in text and "in range" in text
    assert "A single 3-hour window of the real market varies a lot" in text
    assert "RMS premium change over 60 min (bps) (needs a stretch of at least 180 consecutive minutes)" in text


def test_without_a_reference_it_prints_the_figures_alone(tmp_path, monkeypatch, capsys):
    path = tmp_path / "premium_n.csv"
    premium_csv(path, 40)
    monkeypatch.setattr(records_realism, "ROOT", tmp_path)  # no default model file there
    assert tool.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "no real reference" in out and "file not found; give one with --reference MODEL_JSON" in out
    assert "RMS premium change over 1 min (bps)" in out and "in range" not in out


# -- references -----------------------------------------------------------------------------------


def test_load_reference_gives_the_source_and_a_reference_per_statistic():
    source, refs = records_realism.load_reference(REFERENCE)
    document = json.loads(REFERENCE.read_text())["reference"]
    assert source == document["source"]
    assert set(refs) == set(document["stats"]) and set(refs) <= set(realism.BY_KEY)
    ref = refs["premium_change_acf1"]
    assert (ref.value, ref.p10, ref.p50, ref.p90) == tuple(
        document["stats"]["premium_change_acf1"][k] for k in ("value", "p10", "p50", "p90")
    )


BAD_REFERENCES = {
    "not json": ("{", "not JSON"),
    "no reference": ('{"name": "x"}', "reference"),
    "a string value": (
        '{"reference": {"source": "s", "stats": {"premium_change_acf1": {"value": "high"}}}}',
        "premium_change_acf1",
    ),
    "unknown statistic": (
        '{"reference": {"source": "s", "stats": {"premium_rms_change_2m_bps": {"value": 1}}}}',
        "not a statistic this version knows",
    ),
    "percentiles out of order": (
        '{"reference": {"source": "s", "stats": {"premium_change_acf1": {"value": 1, "p10": 2, "p90": 1}}}}',
        "p10 <= p50 <= p90",
    ),
    "infinite": ('{"reference": {"source": "s", "stats": {"upbit_return_std_bps": {"value": 1e999}}}}', "range"),
    "window of 0 minutes": ('{"reference": {"source": "s", "window_min": 0, "stats": {}}}', "window_min"),
    "deeply nested": ("[" * 100_000, "not"),
}


@pytest.mark.parametrize("case", list(BAD_REFERENCES))
def test_a_bad_reference_file_is_one_line_naming_it(tmp_path, case, capsys):
    text, words = BAD_REFERENCES[case]
    bad = tmp_path / "model.json"
    bad.write_text(text)
    with pytest.raises(records_realism.MarketModelError) as error:
        records_realism.load_model_reference(bad)
    assert str(error.value).startswith(str(bad)) and words in str(error.value)
    premium = tmp_path / "premium_x.csv"
    premium_csv(premium, 40)
    assert tool.main(["--reference", str(bad), str(premium)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"realism: {bad}") and err.count("\n") == 1, err


# -- hostile input --------------------------------------------------------------------------------


def _hostile(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words its error must hold)."""
    cases: dict[str, tuple[Path, str]] = {}

    def write(name: str, data: bytes, words: str) -> None:
        path = tmp_path / name
        path.write_bytes(data)
        cases[name] = (path, words)

    folder = tmp_path / "a_folder"
    folder.mkdir()
    cases["folder"] = (folder, "is a folder")
    cases["missing"] = (tmp_path / "nothing_here.csv", "file not found")
    write("empty.csv", b"", "empty")
    write("header_only.csv", (",".join(PREMIUM_COLUMNS) + "\n").encode(), "no rows after the header")
    write("huge_line.csv", b"t_s," + b"9" * (8 * 1024 * 1024) + b"\n1,2\n", "longer than 4 KiB")
    write("random.bin", np.random.default_rng(3).bytes(20_000), "")
    write("other.csv", b"timestamp,open,high,low,close,volume\n1,2,3,4,5,6\n", "wrong columns")
    header = ",".join(PREMIUM_COLUMNS)
    good = "1.0,30.0,30.0,2026-01-01T00:00:01+00:00,0.0,60000,84000000,1380"
    write(
        "nan_price.csv",
        f"{header}\n{good}\n2.0,30,30,2026-01-01T00:00:02+00:00,0,nan,84000000,1380\n3\n".encode(),
        "line 3: binance_mid 'nan' is not a positive finite number",
    )
    write("negative_price.csv", f"{header}\n{good}\n2.0,30,30,x,0,60000,-5,1380\n".encode(), "line 3: upbit_mid '-5'")
    write("nan_premium.csv", f"{header}\n2.0,NaN,30,x,0,60000,84000000,1380\n{good}\n".encode(), "premium_bps 'NaN'")
    write("backwards.csv", f"{header}\n{good}\n0.5,30,30,x,0,60000,84000000,1380\n".encode(), "goes backwards")
    write("ragged.csv", f"{header}\n{good}\n1.5,30,30\n{good}\n".encode(), "line 3: 3 cells where the header has 8")
    rows = "".join(f"{60 * i},85000000,60000,1330,1380,1,2,0\n" for i in range(2))
    write("too_short.csv", (",".join(tool.MARKET_COLUMNS) + "\n" + rows).encode(), "too short for any statistic")
    many = "".join(f"{60 * i},85000000,60000,1330,1380,1,2,0\n" for i in range(4000))
    body = gzip.compress((",".join(tool.MARKET_COLUMNS) + "\n" + many).encode())
    corrupt = bytearray(body)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\xff" * 64
    write("corrupt.csv.gz", bytes(corrupt), "corrupt gzip data")
    return cases


def test_hostile_input_is_one_line_and_exit_status_2(tmp_path, capsys):
    cases = _hostile(tmp_path)
    for name, (path, words) in cases.items():
        assert tool.main(["--reference", str(REFERENCE), str(path)]) == 2, name
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"realism: {path}") and err.count("\n") == 1, (name, err)
        assert words in err, (name, err)
    # as a command: the same line, no traceback
    path, words = cases["corrupt.csv.gz"]
    proc = _run(str(path))
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"realism: {path}") and words in proc.stderr


def test_a_device_is_refused_before_any_read():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    proc = _run("/dev/zero")
    assert proc.returncode == 2 and "not a regular file" in proc.stderr and proc.stderr.count("\n") == 1


def test_the_script_is_installed():
    script = Path(sys.executable).parent / "arb-realism"
    if not script.exists():
        pytest.skip(f"{script} not installed (pip install -e . installs it)")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--reference MODEL_JSON" in proc.stdout
