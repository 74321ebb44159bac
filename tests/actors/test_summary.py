"""What the session prints when it ends (``actors.cli._summary``): words a trader reads, not Python values."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from actors.cli import _summary
from actors.records.paths import SessionPaths
from actors.session import SessionResult

KPI_SAMPLE = Path(__file__).resolve().parent / "kpi_sample.json"


def _result(tmp_path: Path, **changes) -> SessionResult:
    kpi = copy.deepcopy(json.loads(KPI_SAMPLE.read_text()))
    for key, value in changes.items():
        kpi[key] = value
    return SessionResult(kpi["status"], 0, SessionPaths(tmp_path, kpi["session_id"]), kpi)


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
    result = _result(tmp_path)
    paths = result.paths
    for written in (paths.fill_events, paths.kpi, paths.log, paths.premium):
        written.write_text("x\n")
    files = _summary(result).splitlines()[-1].split()
    assert files == [p.name for p in (paths.fill_events, paths.kpi, paths.log, paths.premium)]
    paths.recording.write_bytes(b"")
    assert _summary(result).splitlines()[-1].split()[-1] == paths.recording.name
