"""The files a session leaves: ``latest/`` links only files that exist (completed at the end, after the report;
a newer session's left alone), and the KPI file gets the same permissions as the other session files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from actors.records.files import FillWriter, write_json_atomic
from actors.records.paths import LATEST, SessionPaths, claim_session, complete_latest, point_latest


def _links(logs_dir: Path) -> dict[str, str]:
    latest = logs_dir / "latest"
    return {link.name: os.readlink(link) for link in latest.iterdir()}


def _dangling(logs_dir: Path) -> list[str]:
    return [link.name for link in (logs_dir / "latest").iterdir() if not link.exists()]


def test_latest_links_only_existing_files_and_is_completed_at_the_end(tmp_path):
    paths = claim_session(tmp_path, None, "20260101_000001")  # creates the fill-event file
    paths.log.write_text("log\n")
    point_latest(paths)
    assert _links(tmp_path) == {
        "session.log": f"../{paths.log.name}",
        "fill_events.jsonl": f"../{paths.fill_events.name}",
    }
    # the session writes its KPI and premium files, the report its markdown and the trades
    for written in (paths.kpi, paths.premium, paths.report, paths.trades):
        written.write_text("x\n")
    assert complete_latest(paths) is True
    # not recorded: no link; the trades also by their own name, as the report links them
    assert set(_links(tmp_path)) == set(LATEST) - {"recording.jsonl.gz"} | {paths.trades.name}
    assert _dangling(tmp_path) == []
    assert (tmp_path / "latest" / "trades.csv").read_text() == "x\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".latest")]  # no temporary folder left


def test_a_newer_sessions_latest_is_left_alone(tmp_path):
    older = claim_session(tmp_path, None, "20260101_000001")
    point_latest(older)
    newer = claim_session(tmp_path, None, "20260101_000002")
    point_latest(newer)
    older.kpi.write_text("{}\n")
    assert complete_latest(older) is False
    assert _links(tmp_path) == {"fill_events.jsonl": f"../{newer.fill_events.name}"}


def test_latest_is_made_at_the_end_if_it_could_not_be_at_the_start(tmp_path):
    paths = claim_session(tmp_path, None, "20260101_000001")
    paths.kpi.write_text("{}\n")
    assert complete_latest(paths) is True
    assert _links(tmp_path) == {"fill_events.jsonl": f"../{paths.fill_events.name}", "kpi.json": f"../{paths.kpi.name}"}


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o027, 0o077])
def test_the_kpi_file_has_the_permissions_of_the_fill_event_file(tmp_path, umask):
    paths = SessionPaths(tmp_path, "perm")
    old = os.umask(umask)
    try:
        FillWriter(paths.fill_events).close()
        write_json_atomic(paths.kpi, {"v": 1})
        write_json_atomic(paths.kpi, {"v": 2})  # replaced: a new file, the same mode
    finally:
        os.umask(old)
    mode = stat.S_IMODE(paths.kpi.stat().st_mode)
    assert mode == stat.S_IMODE(paths.fill_events.stat().st_mode) == 0o666 & ~umask
