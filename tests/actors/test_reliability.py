"""A hostile machine: a full disk, signals in every phase, sessions sharing a folder, a startup that never
ends. docs/reliability.md lists the guarantees these tests hold the session to."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from markets import on_ou
from session_process import SessionProcess

from actors import config
from actors.net.memory import memory_network
from actors.records import files
from actors.records.paths import SessionIdTaken, SessionPaths, claim_session
from actors.session import EXIT_FAILED, run_session

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def demo(tmp_path: Path, **tables) -> config.Config:
    raw = config.unparse(config.load(ROOT / "config" / "demo.toml", on_ou()))  # trades within seconds
    raw["session"]["logs_dir"] = str(tmp_path)
    config.merge_tables(raw, tables)
    return config.parse(raw)


# -- disk full -------------------------------------------------------------------------------------


class FullDisk:
    """``files.open_data`` on a disk that has ``free`` bytes left for the files whose names contain one of
    ``names``: the write that crosses it is cut short, then every write fails with ENOSPC (truncation frees
    space, as on a real file system)."""

    def __init__(self, free: int, names: tuple[str, ...]) -> None:
        self.free, self.names, self.refused = free, names, 0
        self._open = files.open_data

    def open(self, path: Path, mode: str, buffering: int = -1):
        f = self._open(path, mode, buffering)
        return _Limited(f, self, raw=buffering == 0) if any(n in path.name for n in self.names) else f


class _Limited:
    def __init__(self, f, disk: FullDisk, raw: bool) -> None:
        self._f, self._disk, self._raw = f, disk, raw

    def write(self, data) -> int:
        data = bytes(data)
        if self._disk.free <= 0:
            self._disk.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        part = data[: self._disk.free]
        self._f.write(part)
        self._disk.free -= len(part)
        if len(part) < len(data) and not self._raw:
            raise OSError(errno.ENOSPC, "No space left on device")  # a buffered file cannot say "partly"
        return len(part)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _run_virtual(cfg, paths):
    async def main():
        memory_network()
        return await run_session(cfg, paths, handle_signals=False)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_full_disk_stops_new_trades_at_once_and_every_line_on_disk_stays_valid(tmp_path, monkeypatch):
    disk = FullDisk(free=6_000, names=("fill_events",))  # room for a few fill events, then full
    monkeypatch.setattr(files, "open_data", disk.open)
    cfg = demo(tmp_path, session={"duration_s": 300})
    paths = SessionPaths(tmp_path, "full1")
    result = _run_virtual(cfg, paths)
    kpi = json.loads(paths.kpi.read_text())  # the KPI file is on another (working) part of the disk here
    assert result.status == "failed" and result.exit_code == EXIT_FAILED and kpi["status"] == "failed"
    assert kpi["disk_error"].startswith(f"cannot write {paths.fill_events}: No space left on device")
    assert any(e.startswith("disk: ") for e in kpi["fatal_errors"])
    assert kpi["risk_stopped"].startswith("disk: ")  # no new trade after the failure
    assert kpi["duration_s"] < 300  # the session stopped on it
    lines = paths.fill_events.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the cut line was truncated away: the file ends with a whole line
    events = [json.loads(line) for line in lines[:-1]]  # every line on disk parses
    assert len(events) == kpi["fill_events_written"] >= 1
    assert kpi["fill_events"] > kpi["fill_events_written"]  # produced, and how many of them are on disk
    assert disk.refused >= 1


def test_a_disk_full_for_every_file_still_ends_with_exit_1_and_no_exception(tmp_path, monkeypatch):
    disk = FullDisk(free=3_000, names=("fill_events", "kpi", "premium"))
    monkeypatch.setattr(files, "open_data", disk.open)
    cfg = demo(tmp_path, session={"duration_s": 300, "kpi_interval_s": 1})
    paths = SessionPaths(tmp_path, "full2")
    result = _run_virtual(cfg, paths)  # closing and the final KPI attempt never raise
    assert result.status == "failed" and result.exit_code == EXIT_FAILED
    assert result.kpi["disk_error"] is not None and result.kpi["fill_events_written"] <= result.kpi["fill_events"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary KPI file left
    for line in paths.fill_events.read_text().splitlines():
        json.loads(line)
    if paths.kpi.exists():  # an earlier snapshot that fitted: whole, and says it is not final
        assert json.loads(paths.kpi.read_text())["final"] is False


# -- session ids -----------------------------------------------------------------------------------


def test_session_ids_cannot_collide_and_a_reused_id_is_refused(tmp_path):
    first = claim_session(tmp_path, None, "20260101_120000")
    second = claim_session(tmp_path, None, "20260101_120000")  # the same second
    assert (first.session_id, second.session_id) == ("20260101_120000", "20260101_120000_2")
    assert first.fill_events.exists() and second.fill_events.exists()
    with pytest.raises(SessionIdTaken, match="fill_events_20260101_120000.jsonl"):
        claim_session(tmp_path, "20260101_120000", "x")
    (tmp_path / "kpi_mine.json").write_text("{}")
    with pytest.raises(SessionIdTaken, match="kpi_mine.json"):
        claim_session(tmp_path, "mine", "x")
    assert claim_session(tmp_path, "fresh", "x").session_id == "fresh"


def test_two_sessions_started_together_in_one_folder_write_separate_files(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "actors.session",
        "--config",
        "config/demo.toml",
        "--virtual-time",
        "--duration",
        "120",
        "--logs-dir",
        str(tmp_path),
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    kpis = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("kpi_*.json"))]
    assert len(kpis) == 2 and kpis[0]["session_id"] != kpis[1]["session_id"]
    for kpi in kpis:
        events = [
            json.loads(line) for line in (tmp_path / f"fill_events_{kpi['session_id']}.jsonl").read_text().splitlines()
        ]
        assert len(events) == kpi["fill_events"] and {e["session_id"] for e in events} <= {kpi["session_id"]}
        ids = [e["trade_id"] for e in events]
        assert ids == sorted(ids)  # one session's trades, not two interleaved


def test_a_reused_session_id_is_refused_with_exit_2(tmp_path):
    (tmp_path / "fill_events_run1.jsonl").write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "actors.session",
            "--config",
            "config/demo.toml",
            "--virtual-time",
            "--logs-dir",
            str(tmp_path),
            "--session-id",
            "run1",
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "session id 'run1' already has files" in proc.stderr
    assert (tmp_path / "fill_events_run1.jsonl").read_text() == ""  # untouched


def test_an_unwritable_logs_dir_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the logs folder should be")
    proc = subprocess.run(
        [sys.executable, "-m", "actors.session", "--config", "config/demo.toml", "--logs-dir", str(blocker / "logs")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "$.session.logs_dir: cannot write session files in" in proc.stderr and "Not a directory" in proc.stderr


# -- startup ---------------------------------------------------------------------------------------


async def test_a_market_code_that_never_arrives_is_named_and_the_startup_deadline_ends_the_session(
    autojump_clock, tmp_path
):
    """KRW-XYZ is well formed but not listed: the exchange sends nothing for it while KRW-USDT flows."""
    memory_network()
    cfg = demo(
        tmp_path,
        session={"startup_timeout_s": 40, "duration_s": 60},
        feeds={"upbit": {"market": "KRW-XYZ", "stale_after_s": 10}},
    )
    paths = SessionPaths(tmp_path, "start1")
    t0 = trio.current_time()
    result = await run_session(cfg, paths, handle_signals=False)
    assert trio.current_time() - t0 == pytest.approx(40, abs=1)
    kpi = result.kpi
    assert result.status == "failed" and kpi["startup_s"] is None and kpi["fill_events"] == 0
    (fatal,) = kpi["fatal_errors"]
    assert fatal.startswith("startup: the feeds were not ready within startup_timeout_s=40: feed:upbit not ready")
    assert "no order book for KRW-XYZ within 10 s of subscribing" in fatal
    assert kpi["actors"]["feed:upbit"]["causes"]["stale"] >= 2


# -- signals ---------------------------------------------------------------------------------------


def _unreachable_config(tmp_path: Path) -> Path:
    """A live session whose exchanges refuse every connection: it stays in startup."""
    text = (ROOT / "config" / "demo.toml").read_text()
    path = tmp_path / "unreachable.toml"
    path.write_text(
        text + '\n[feeds.upbit]\nurl = "ws://127.0.0.1:9/websocket/v1"\n'
        '[feeds.binance]\nws_url = "ws://127.0.0.1:9"\nrest_url = "http://127.0.0.1:9"\n'
    )
    return path


@pytest.mark.realtime
def test_a_signal_during_startup_ends_the_session_as_interrupted(tmp_path):
    logs = tmp_path / "logs"
    with SessionProcess(
        "--config", str(_unreachable_config(tmp_path)), "--market", "live", "--logs-dir", str(logs)
    ) as proc:
        proc.wait_for_stderr("cannot connect", timeout_s=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout_s=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "SIGTERM received" in err
    (kpi_file,) = logs.glob("kpi_*.json")
    kpi = json.loads(kpi_file.read_text())
    assert kpi["final"] and kpi["status"] == "interrupted" and kpi["fatal_exceptions"] == 0
    assert kpi["startup_s"] is None
    assert "interrupted" in out and list(logs.glob("report_*.md"))


@pytest.mark.realtime
def test_a_second_signal_exits_at_once_with_130_and_the_files_stay_valid(tmp_path):
    logs = tmp_path / "logs"
    with SessionProcess(
        "--config", "config/demo.toml", "--logs-dir", str(logs), "--duration", "120", "--session-id", "twice"
    ) as proc:
        proc.wait_for_stderr("both feeds ready", timeout_s=30)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout_s=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "received again: exited at once" in err
    for line in (logs / "fill_events_twice.jsonl").read_text().splitlines():
        json.loads(line)
    if (logs / "kpi_twice.json").exists():
        json.loads((logs / "kpi_twice.json").read_text())


def test_a_second_signal_outside_the_session_run_exits_with_130():
    """After the Trio run (the report is being written) the process-level handlers answer."""
    script = (
        "import os, signal, time\n"
        "from actors.interrupts import Interrupts\n"
        "Interrupts().install()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(0.2)\n"
        "print('still running after the first', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(10)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 130 and proc.stdout == "still running after the first\n"
    assert "SIGINT received: stopping" in proc.stderr and "SIGTERM received again: exited at once" in proc.stderr
    assert "Traceback" not in proc.stderr
