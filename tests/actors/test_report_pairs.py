"""What a trader reads about many pairs (issue 26): the KPI's pairs block and its inverse, the premium panel file
(writer, bounded reader), the report's "Pairs" section with its heatmap, and the comparison's pair rows; a
one-pair KPI file gives the report it gave before. Synthetic session files, written here."""

from __future__ import annotations

import csv
import errno
import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import msgspec
import numpy as np
import pytest

from actors.core.pairs import Pair
from actors.inputs import InputError
from actors.records import files
from actors.records.files import DiskWatch
from actors.records.pairs import (
    PANEL_HEADER,
    PairPanelWriter,
    PairRow,
    PanelSample,
    pairs_block,
    read_pairs_block,
    read_panel,
    rows_of_block,
)
from actors.records.paths import SessionPaths, point_latest
from actors.tools import report, report_pairs
from actors.tools.report_compare import compare

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_KPI = ROOT / "tests" / "actors" / "kpi_sample.json"
PNG = b"\x89PNG\r\n\x1a\n"
N_PAIRS = 150
SECONDS = 120


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _row(i: int) -> PairRow:
    """Pair ``C<i>``: PnL (i % 10 - 4) / 100 USDT, i % 4 trades, its premium's std growing with i."""
    return PairRow(
        f"C{i}",
        premium_mean_bps=20.0 + i,
        premium_std_bps=0.1 * (i + 1),
        latest_deviation_bps=None if i % 3 == 0 else (i - 75) / 10,
        latest_premium_bps=20.0 + i,
        views=1000 + i,
        entries=i % 4,
        exits=i % 4,
        fills=4 * (i % 4),
        pnl_usdt=(i % 10 - 4) / 100,
        refusals=i,
        resyncs=i % 2,
        untrusted_s=i / 10,
    )


def _premium(i: int, t_s: float) -> float:
    return 20.0 + i + 0.1 * (i + 1) * math.sin(2 * math.pi * t_s / 60 + i)  # two whole periods: std grows with i


def write_pairs_session(folder: Path, sid: str = "20260101_100000", n: int = N_PAIRS, panel: bool = True):
    """A session's KPI file (the sample, with a pairs block of ``n`` rows) and its panel, SECONDS long."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = SessionPaths(folder, sid)
    kpi = json.loads(SAMPLE_KPI.read_text())
    kpi.update(started_utc="2026-01-01T10:00:00.000+00:00", pairs=pairs_block(_row(i) for i in range(n)))
    paths.kpi.write_text(json.dumps(kpi))
    if panel:
        writer = PairPanelWriter(paths.pairs, DiskWatch())
        for t in range(SECONDS):
            samples = (PanelSample(f"C{i}", _premium(i, t), _premium(i, t) - 20.0 - i) for i in range(n))
            writer.write(float(t), f"2026-01-01T10:{t // 60:02d}:{t % 60:02d}+00:00", samples)
        assert writer.lines == n * SECONDS
    return paths


def test_the_pairs_block_round_trips_through_the_kpi_json():
    rows = (
        PairRow(Pair.of("ETH"), 31.234567, 2.5, -1.00004, views=10, entries=2, exits=1, fills=8, pnl_usdt=0.123456789),
        PairRow("XRP", refusals=3, resyncs=1, untrusted_s=0.1234567),
    )
    block = pairs_block(rows)
    assert block["count"] == 2 and list(block["table"]) == ["ETH", "XRP"]
    eth, xrp = block["table"]["ETH"], block["table"]["XRP"]
    assert (eth["premium_mean_bps"], eth["latest_deviation_bps"], eth["pnl_usdt"]) == (31.2346, -1.0, 0.12345679)
    assert xrp["premium_mean_bps"] is None and xrp["latest_deviation_bps"] is None and xrp["untrusted_s"] == 0.123457
    text = json.dumps({"session_id": "x", "pairs": block}).encode()
    assert '"premium_mean_bps": null' in text.decode()
    back = read_pairs_block(text)
    assert (
        back
        == rows_of_block(block)
        == (
            PairRow("ETH", 31.2346, 2.5, -1.0, views=10, entries=2, exits=1, fills=8, pnl_usdt=0.12345679),
            PairRow("XRP", refusals=3, resyncs=1, untrusted_s=0.123457),
        )
    )
    assert pairs_block(back) == block
    assert read_pairs_block(b'{"session_id": "x"}') == ()  # a one-pair KPI file
    with pytest.raises(msgspec.ValidationError, match="count"):
        rows_of_block({"count": 3, "table": block["table"]})
    with pytest.raises(msgspec.ValidationError, match=r"pairs\.table"):
        read_pairs_block(b'{"pairs": {"count": 1, "table": {"ETH": {"views": "many"}}}}')
    with pytest.raises(ValueError, match="ETH given twice"):
        pairs_block([PairRow("ETH"), PairRow("ETH")])
    with pytest.raises(ValueError, match="fills"):
        PairRow("ETH", fills=-1)


def test_the_panel_writer_appends_an_instant_at_a_time_and_stops_at_a_disk_error(tmp_path, monkeypatch):
    path = tmp_path / "pairs_x.csv"
    disk = DiskWatch()
    writer = PairPanelWriter(path, disk)
    at1, at2 = "2026-01-01T10:00:01+00:00", "2026-01-01T10:00:02+00:00"
    writer.write(1.0, at1, [PanelSample("ETH", 12.345678, None), PanelSample("XRP", -3.0, 0.5)])
    writer.write(2.0, at2, [PanelSample(Pair.of("ETH"), 13.0, 1.0), PanelSample("XRP", math.nan)])
    assert path.read_text() == (
        PANEL_HEADER + "1.000,2026-01-01T10:00:01+00:00,ETH,12.3457,\n"
        "1.000,2026-01-01T10:00:01+00:00,XRP,-3.0000,0.5000\n"
        "2.000,2026-01-01T10:00:02+00:00,ETH,13.0000,1.0000\n"
    )
    panel = read_panel(path)
    assert panel.pairs() == ("ETH", "XRP") and panel.rows == 3 and panel.skipped == 0
    assert list(panel.series["ETH"].premium_bps) == [12.3457, 13.0] and math.isnan(panel.series["ETH"].deviation_bps[0])

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "open_data", full)
    writer.write(3.0, "t", [PanelSample("ETH", 1.0)])
    assert disk.failed.is_set() and "pairs_x.csv" in str(disk.error) and "No space" in str(disk.error)
    monkeypatch.undo()
    writer.write(4.0, "t", [PanelSample("ETH", 1.0)])  # failed once: writes nothing more
    assert writer.lines == 3 and len(path.read_text().splitlines()) == 4


def test_a_corrupt_or_huge_panel_file_is_one_clear_error(tmp_path):
    torn = tmp_path / "torn.csv"
    torn.write_text(PANEL_HEADER + "1.000,t,ETH,1.0,\n1.000,t,XRP,nan,\n2.000,t,ETH,2.0,0.1\n2.5,t,ET")
    panel = read_panel(torn)
    assert panel.rows == 2 and panel.skipped == 2  # a NaN premium, a torn last row
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InputError, match="garbage.csv: not a pairs panel file"):
        read_panel(garbage)
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(InputError, match="huge.csv: too large"):
        read_panel(huge)
    many = tmp_path / "many.csv"
    many.write_text(PANEL_HEADER + "".join(f"1.0,t,C{i},1.0,\n" for i in range(20)))
    with pytest.raises(InputError, match="more than 10 pairs"):
        read_panel(many, max_pairs=10)
    with pytest.raises(InputError, match="is a folder"):
        read_panel(tmp_path)


def test_the_report_of_150_pairs_has_the_pairs_table_30_rows_and_a_heatmap(tmp_path):
    paths = write_pairs_session(tmp_path)
    page = report.write_report(tmp_path)
    text = page.read_text()
    section = text.split("## Pairs\n")[1]
    table = [line for line in section.splitlines() if re.match(r"\| C\d+ \|", line)]
    assert len(table) == 30 and "... and 120 more: every pair in [pair_table_20260101_100000.csv]" in section
    expected = report_pairs.ranked([_row(i) for i in range(N_PAIRS)])[:30]
    assert [line.split(" | ")[0][2:] for line in table] == [r.pair for r in expected]
    assert expected[0].pnl_usdt == 0.05 and expected[0].entries == 3  # by PnL, then trades
    assert table[0] == f"| {expected[0].pair} | +{20 + int(expected[0].pair[1:])}.0 | " + (
        f"{expected[0].premium_std_bps:.1f} | 3 | 12 | +0.0500 | {expected[0].refusals} | "
        f"{expected[0].resyncs} | {expected[0].untrusted_s:.1f} |"
    )
    assert "150 pairs; 112 traded" in section
    heatmap = paths.plot("pairs_heatmap")
    assert heatmap.read_bytes()[:8] == PNG and f"![{heatmap.name}]({heatmap.name})" in section
    assert f"{N_PAIRS * SECONDS} samples of 150 pairs" in section and "the 60 pairs whose premium moved most" in section
    with open(paths.pair_table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_PAIRS and rows[0]["pair"] == expected[0].pair and rows[-1]["pnl_usdt"] == "-0.04"
    assert rows[0]["latest_deviation_bps"] in ("", str(expected[0].latest_deviation_bps))
    point_latest(paths)  # latest/ links the pair table, the panel and the heatmap by their own names
    for target in (paths.pair_table, paths.pairs, heatmap):
        assert (tmp_path / "latest" / target.name).is_file()


def test_the_heatmap_shows_the_60_most_volatile_pairs_as_deviations_from_their_own_mean(tmp_path):
    paths = write_pairs_session(tmp_path, n=80)
    panel = read_panel(paths.pairs)
    shown, grid, (t0, t1) = report_pairs.heatmap_grid(panel)
    assert shown == [f"C{i}" for i in range(79, 19, -1)]  # the std grows with i
    assert grid.shape == (60, SECONDS) and (t0, t1) == (0.0, SECONDS - 1.0)
    assert np.isfinite(grid).all() and np.allclose(grid.mean(axis=1), 0.0, atol=1e-9)
    premium = np.array([_premium(79, t) for t in range(SECONDS)])
    assert np.allclose(grid[0], premium - premium.mean(), atol=1e-4)  # the panel holds 4 decimals


@pytest.mark.parametrize(
    "content, why",
    [
        (bytes(range(256)) * 64, "not a pairs panel file"),
        (None, "too large"),
        (b"", "holds no samples"),
    ],
)
def test_a_corrupt_or_huge_panel_file_is_one_line_of_the_report_not_a_failure(tmp_path, capsys, content, why):
    paths = write_pairs_session(tmp_path, panel=False)
    with open(paths.pairs, "wb") as f:
        if content is None:
            f.truncate(300 * 1024 * 1024)
        else:
            f.write(content)
    assert report.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "wrote" in out
    text = paths.report.read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("No premium heatmap")]
    assert why in line and "Traceback" not in text and not paths.plot("pairs_heatmap").exists()
    assert "... and 120 more" in text  # the table is still there


def test_a_one_pair_kpi_file_gives_the_report_it_gave_before(tmp_path):
    before = write_pairs_session(tmp_path / "before", n=0, panel=False)  # no pairs block at all
    kpi = json.loads(before.kpi.read_text())
    del kpi["pairs"]
    before.kpi.write_text(json.dumps(kpi))
    one = write_pairs_session(tmp_path / "one", n=1)  # a pairs block of one pair: the same report
    texts = [report.write_report(p.logs_dir).read_text().replace(str(p.logs_dir), "") for p in (before, one)]
    assert texts[0] == texts[1] and "## Pairs" not in texts[0] and "heatmap" not in texts[0]
    assert not one.pair_table.exists() and not one.plot("pairs_heatmap").exists()


def test_compare_shows_per_pair_rows_when_every_session_has_pairs(tmp_path):
    write_pairs_session(tmp_path / "a", n=40)
    write_pairs_session(tmp_path / "b", n=35, panel=False)
    text = compare([tmp_path / "a", tmp_path / "b"])
    section = text.split("## Pairs\n")[1].split("## Differences")[0]
    assert "40 pairs in all" in section and "... and 10 more pairs" in section
    rows = [line for line in section.splitlines() if re.match(r"\| C\d+ \|", line)]
    assert len(rows) == 60  # 30 pairs, a row per session
    missing = [line for line in rows if line.endswith("| - | - | - | - | - | - | - |")]
    assert all(line.split(" | ")[1] == "20260101_100000 (#2)" for line in missing)
    assert {int(line.split(" | ")[0][3:]) for line in missing} <= set(range(35, 40))
    one = write_pairs_session(tmp_path / "c", n=1, panel=False)
    assert "## Pairs" not in compare([tmp_path / "a", one.logs_dir])


def test_out_puts_the_heatmap_beside_the_report_and_a_malformed_pairs_block_is_one_line(tmp_path, capsys):
    paths = write_pairs_session(tmp_path / "logs", n=5)
    out = tmp_path / "elsewhere" / "r.md"
    out.parent.mkdir()
    assert report.main([str(paths.logs_dir), "--out", str(out)]) == 0
    text = out.read_text()
    assert (out.parent / "r_pairs_heatmap.png").read_bytes()[:8] == PNG and "](r_pairs_heatmap.png)" in text
    assert "](../logs/pair_table_20260101_100000.csv)" in text and paths.pair_table.is_file()
    kpi = json.loads(paths.kpi.read_text())
    kpi["pairs"]["table"]["C1"]["fills"] = "four"
    paths.kpi.write_text(json.dumps(kpi))
    capsys.readouterr()
    assert report.main([str(paths.logs_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: ") and "not a KPI file" in err and "$.pairs.table" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
