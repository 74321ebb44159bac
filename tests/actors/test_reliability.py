"""A hostile machine: a full disk, signals in every phase, sessions sharing a folder, a startup that never
ends. docs/reliability.md lists the guarantees these tests hold the session to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from fulldisk import FullDisk
from markets import on_ou, ou_config
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
    """Two fresh interpreters racing for a session id in one folder. On the OU market, so that each session trades
    (60 s: 8 fill events each; the demo's fitted market made none in 120 s, and the check that no trades of two
    sessions interleave read nothing)."""
    (tmp_path / "config").mkdir()
    cmd = [
        sys.executable,
        "-m",
        "actors.session",
        "--config",
        str(ou_config(tmp_path / "config")),
        "--virtual-time",
        "--duration",
        "60",
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
        assert len(events) == kpi["fill_events"] > 0 and {e["session_id"] for e in events} == {kpi["session_id"]}
        ids = [e["trade_id"] for e in events]
        assert ids == sorted(ids)  # one session's trades, not two interleaved


def test_a_reused_session_id_is_refused_with_exit_2(forked_cli, tmp_path):
    (tmp_path / "fill_events_run1.jsonl").write_text("")
    args = ("--config", "config/demo.toml", "--virtual-time", "--logs-dir", str(tmp_path), "--session-id", "run1")
    proc = forked_cli.run("actors.session", *args)  # tests/forked_cli.py: as a fresh interpreter
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "session id 'run1' already has files" in proc.stderr
    assert (tmp_path / "fill_events_run1.jsonl").read_text() == ""  # untouched


def test_an_unwritable_logs_dir_is_one_line_and_exit_2(forked_cli, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the logs folder should be")
    proc = forked_cli.run("actors.session", "--config", "config/demo.toml", "--logs-dir", str(blocker / "logs"))
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


def test_a_second_signal_while_a_file_is_being_replaced_leaves_no_temporary_file(tmp_path):
    """The second signal arrives while a KPI snapshot is half written: the process exits at once (130), the
    temporary file is removed, and the KPI file on disk is the previous one, whole."""
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from actors.interrupts import Interrupts\n"
        "from actors.records import files\n"
        "Interrupts().install()\n"
        "kpi = Path(sys.argv[1]) / 'kpi_x.json'\n"
        "files.write_json_atomic(kpi, {'final': False, 'n': 1})\n"
        "def half_written(f, data):\n"
        "    f.write(data[:10])\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(10)\n"
        "files._write_all = half_written\n"
        "files.write_json_atomic(kpi, {'final': False, 'n': 2})\n"
        "print('not reached')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 130 and "not reached" not in proc.stdout, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kpi_x.json"]  # no .kpi_x.json.*.tmp
    assert json.loads((tmp_path / "kpi_x.json").read_text()) == {"final": False, "n": 1}


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


# A whole session from the command line (``actors.cli.main``, virtual time) whose files land on a disk with
# ``free`` bytes left for the files named: what it prints, and what it leaves behind.
_FULL_DISK_SESSION = """
import sys
from fulldisk import FullDisk
from actors.records import files
disk = FullDisk(free=int(sys.argv[1]), names=tuple(sys.argv[2].split(",")))
files.open_data = disk.open
from actors.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _session_on_a_full_disk(
    tmp_path: Path, free: int, names: tuple[str, ...], duration_s: int = 60
) -> subprocess.CompletedProcess:
    # KPI snapshots as often as allowed: in virtual time they also wait for half their interval of real time,
    # and a run of a second or two would otherwise write none, or one, by chance
    cfg = tmp_path / "config" / "full.toml"
    cfg.parent.mkdir()
    demo = (ROOT / "config" / "demo.toml").read_text()
    cfg.write_text(demo.replace("kpi_interval_s = 5", "kpi_interval_s = 0.1"))
    assert "kpi_interval_s = 0.1" in cfg.read_text()
    args = ["--config", str(cfg), "--virtual-time", "--duration", str(duration_s), "--session-id", "full"]
    return subprocess.run(
        [sys.executable, "-c", _FULL_DISK_SESSION, str(free), ",".join(names), *args, "--logs-dir", str(tmp_path)],
        cwd=ROOT,
        env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _left_whole(logs: Path) -> None:
    """No temporary file, no file cut short, no link in latest/ to a file that is not there."""
    assert not [p.name for p in logs.iterdir() if p.name.endswith(".tmp")]
    for png in logs.glob("*.png"):
        assert png.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{png.name} is cut short"
    for csv_file in logs.glob("trades_*.csv"):
        assert csv_file.read_text().startswith("trade_id,")
    for link in (logs / "latest").iterdir():
        assert link.exists(), f"latest/{link.name} links a file that was not written"


def test_a_report_that_does_not_fit_on_the_disk_leaves_no_file_cut_short_and_says_so(tmp_path):
    proc = _session_on_a_full_disk(tmp_path, 20_000, ("report_", "trades_"))  # the trades fit, a plot does not
    assert proc.returncode == 0, proc.stderr  # the session itself completed: its data files are whole
    _left_whole(tmp_path)
    assert not (tmp_path / "report_full.md").exists() and not (tmp_path / "latest" / "report.md").exists()
    assert "  report not written: DataWriteError: cannot write" in proc.stderr
    assert "No space left on device" in proc.stderr
    assert "not written: report_full.md" in proc.stderr and "python -m actors.tools.report" in proc.stderr
    assert "kpi_full.json: the final KPI file (status completed)" in proc.stderr


def test_a_final_kpi_file_that_cannot_be_written_is_named_with_what_is_on_disk_instead(tmp_path):
    proc = _session_on_a_full_disk(tmp_path, 25_000, ("kpi_",))  # room for one snapshot (about 15 KB), then full
    assert proc.returncode == 1, proc.stderr
    _left_whole(tmp_path)
    on_disk = json.loads((tmp_path / "kpi_full.json").read_text())
    assert on_disk["final"] is False and on_disk["status"] == "running"  # the last snapshot that fitted
    assert "on disk in " in proc.stderr and "after the disk error:" in proc.stderr
    assert 'kpi_full.json: an earlier snapshot ("final": false, status running' in proc.stderr
    assert "NOT the final figures: those are the summary above" in proc.stderr
    assert "not written: the final KPI file (cannot write" in proc.stderr
    assert "session full failed" in proc.stdout  # the summary: the final figures, with the failure
    assert "**Not final:** this KPI file is a snapshot" in (tmp_path / "report_full.md").read_text()
