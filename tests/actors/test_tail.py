"""Following a running session: latest/ links and python -m actors.tools.tail."""

import os
import threading

from actors.records.paths import SessionPaths, point_latest
from actors.tools.tail import follow


def test_latest_links_point_at_the_current_session(tmp_path):
    first = SessionPaths(tmp_path, "20260101_000001")
    first.log.write_text("one\n")
    point_latest(first)
    assert (tmp_path / "latest" / "session.log").read_text() == "one\n"
    second = SessionPaths(tmp_path, "20260101_000002")
    second.log.write_text("two\n")
    second.kpi.write_text("{}\n")
    point_latest(second)
    assert (tmp_path / "latest" / "session.log").read_text() == "two\n"
    assert os.readlink(tmp_path / "latest" / "kpi.json") == "../kpi_20260101_000002.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kpi_20260101_000002.json",
        "latest",
        "session_20260101_000001.log",
        "session_20260101_000002.log",
    ]


class _Screen:
    """Where follow() prints, read from the test's thread: ``wait_for`` returns once a text has been printed."""

    def __init__(self) -> None:
        self._text = ""
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            self._text += text
            self._changed.notify_all()
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        with self._changed:
            return self._text

    def wait_for(self, text: str, timeout_s: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: text in self._text, timeout=timeout_s):
                raise AssertionError(f"tail did not print {text!r} within {timeout_s:g} s; it printed {self._text!r}")


def test_tail_shows_history_follows_and_switches_to_a_newer_session(tmp_path):
    old = tmp_path / "demo" / "session_20260101_000001.log"
    old.parent.mkdir()
    old.write_text("".join(f"line {i}\n" for i in range(30)))
    screen, stop = _Screen(), threading.Event()
    worker = threading.Thread(target=follow, args=(tmp_path,), kwargs={"lines": 5, "out": screen, "stop": stop})
    worker.start()
    try:
        screen.wait_for("line 29\n")  # the history is shown: from here on it follows the end of the file
        with open(old, "a") as f:
            f.write("appended\n")
        screen.wait_for("appended\n")
        new = tmp_path / "demo" / "session_20260101_000002.log"
        new.write_text("new session\n")
        screen.wait_for("new session\n")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    text = screen.text()
    assert "line 24\n" not in text and "line 25\n" in text and "line 29\n" in text
    assert "appended\n" in text
    assert f"==> {new} <==\nnew session\n" in text
