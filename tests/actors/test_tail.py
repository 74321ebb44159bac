"""Following a running session: latest/ links and python -m actors.tools.tail."""

import io
import os
import threading
import time

from actors.records.paths import SessionPaths, point_latest
from actors.tools.tail import follow


def test_latest_links_point_at_the_current_session(tmp_path):
    first = SessionPaths(tmp_path, "20260101_000001")
    point_latest(first)
    first.log.write_text("one\n")
    assert (tmp_path / "latest" / "session.log").read_text() == "one\n"
    second = SessionPaths(tmp_path, "20260101_000002")
    point_latest(second)
    second.log.write_text("two\n")
    assert (tmp_path / "latest" / "session.log").read_text() == "two\n"
    assert os.readlink(tmp_path / "latest" / "kpi.json") == "../kpi_20260101_000002.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "session_20260101_000001.log",
                                                          "session_20260101_000002.log"]


def test_tail_shows_history_follows_and_switches_to_a_newer_session(tmp_path):
    old = tmp_path / "demo" / "session_20260101_000001.log"
    old.parent.mkdir()
    old.write_text("".join(f"line {i}\n" for i in range(30)))
    out = io.StringIO()
    worker = threading.Thread(target=follow, args=(tmp_path,), kwargs={"lines": 5, "out": out, "stop_after_s": 2.0})
    worker.start()
    time.sleep(0.5)
    with open(old, "a") as f:
        f.write("appended\n")
    time.sleep(0.5)
    new = tmp_path / "demo" / "session_20260101_000002.log"
    new.write_text("new session\n")
    worker.join()
    text = out.getvalue()
    assert "line 24\n" not in text and "line 25\n" in text and "line 29\n" in text
    assert "appended\n" in text
    assert f"==> {new} <==\nnew session\n" in text
