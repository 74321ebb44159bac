"""A live session on a machine that cannot reach the exchanges: it fails fast and says why in words (the name
did not resolve, the connection was refused), suggests ``--market sim``, and shows the feed that never got
going as "not started" / "never connected", not "DOWN rc=0". Nothing here touches the internet: the refused
port is on 127.0.0.1, and ``nonexistent.invalid`` (RFC 6761: never resolves) goes to a resolver of ours."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from loguru import logger

from actors import config, wiring
from actors.records.paths import SessionPaths
from actors.records.status import status_line
from actors.records.summary import summary
from actors.session import EXIT_FAILED, run_session

ROOT = Path(__file__).resolve().parents[2]
RETRIES = {"initial_backoff_s": 0.01, "max_backoff_s": 0.02, "jitter": 0, "max_restarts": 1, "window_s": 60}


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed: connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live(tmp_path: Path, host: str) -> dict:
    return {
        "session": {"logs_dir": str(tmp_path), "market": "live", "duration_s": 5, "startup_timeout_s": 20},
        "feeds": {
            "upbit": {"url": f"ws://{host}/websocket/v1", "connect_timeout_s": 5},
            "binance": {"ws_url": f"ws://{host}", "rest_url": f"http://{host}", "connect_timeout_s": 5},
        },
        "supervision": RETRIES,
    }


class _Resolver(trio.abc.HostnameResolver):
    """Names under .invalid do not resolve (RFC 6761), answered here without asking any DNS server."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise AssertionError(f"the test resolved {name!r}: only .invalid names are expected")

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError


def _run(cfg: config.Config, paths: SessionPaths, resolver: _Resolver | None = None):
    errors: list[str] = []
    sink = logger.add(lambda message: errors.append(str(message)), level="ERROR", format="{message}")

    async def main():
        if resolver is not None:
            trio.socket.set_custom_hostname_resolver(resolver)
        with trio.fail_after(15):
            return await run_session(cfg, paths, handle_signals=False)

    try:
        result = trio.run(main)
    finally:
        logger.remove(sink)
    return result, errors


def test_a_refused_connection_is_named_and_the_session_suggests_market_sim(tmp_path):
    port = _closed_port()
    cfg = config.load(ROOT / "config" / "demo.toml", _live(tmp_path, f"127.0.0.1:{port}"))
    result, errors = _run(cfg, SessionPaths(tmp_path, "refused"))
    assert result.status == "failed" and result.exit_code == EXIT_FAILED
    (fatal,) = result.kpi["fatal_errors"]
    assert fatal.startswith("feed:upbit failed 2 times within 60 s and was not restarted again; last error: ")
    assert f"cannot connect to ws://127.0.0.1:{port}/websocket/v1: connection refused by 127.0.0.1:{port}" in fatal
    assert "The exchange could not be reached (connection refused)" in fatal and "--market sim" in fatal
    assert "max_restarts" not in fatal and "Errno" not in fatal
    # the supervisor's give-up line: causes in words, not a dict
    (gave_up,) = [line for line in errors if "gave up" in line]
    assert "(causes since the start: connect 2)" in gave_up and "{" not in gave_up
    text = summary(result.kpi, result.config)
    assert "upbit never connected (2 failed attempts: connect 2; given up)" in text
    assert "binance not started" in text or "binance never connected" in text
    assert "DOWN" not in text and "rc=0" not in text and f"    {fatal}" in text
    assert "  no trade: the session never started trading" in text


def test_a_name_that_does_not_resolve_is_named(tmp_path):
    cfg = config.load(ROOT / "config" / "demo.toml", _live(tmp_path, "nonexistent.invalid:9"))
    resolver = _Resolver()
    result, _ = _run(cfg, SessionPaths(tmp_path, "dns"), resolver)
    (fatal,) = result.kpi["fatal_errors"]
    assert "name resolution failed for nonexistent.invalid (Name or service not known)" in fatal
    assert "The exchange could not be reached (name resolution failed)" in fatal and "--market sim" in fatal
    assert "gaierror" not in fatal and "max_restarts" not in fatal
    assert resolver.asked and set(resolver.asked) == {"nonexistent.invalid"}


def test_a_name_that_does_not_resolve_at_the_first_connect_is_given_up_on_after_two_attempts(tmp_path):
    """With the default [supervision] policy a refused or dropped connection is retried for about 15 s (backoff
    0.5, 1, 2, 4, 8 s); a name that does not resolve at a feed's first connect is tried twice (0.5 s)."""
    tables = _live(tmp_path, "nonexistent.invalid:9")
    del tables["supervision"]  # the defaults
    cfg = config.load(ROOT / "config" / "demo.toml", tables)
    assert (cfg.supervision.initial_backoff_s, cfg.supervision.max_restarts) == (0.5, 5)
    resolver = _Resolver()
    started = time.monotonic()
    result, _ = _run(cfg, SessionPaths(tmp_path, "dns2"), resolver)
    assert time.monotonic() - started < 5  # 15 s and more before
    (fatal,) = result.kpi["fatal_errors"]
    assert fatal.startswith("feed:upbit failed 2 times within 60 s") and "name resolution failed" in fatal
    assert result.kpi["actors"]["feed:upbit"]["causes"] == {"connect": 2} and len(resolver.asked) == 2


def test_a_startup_deadline_after_connect_failures_also_suggests_market_sim(tmp_path):
    tables = _live(tmp_path, f"127.0.0.1:{_closed_port()}")
    tables["session"]["startup_timeout_s"] = 0.3
    tables["supervision"] = {**RETRIES, "max_restarts": 1000}  # never given up: the deadline ends it
    cfg = config.load(ROOT / "config" / "demo.toml", tables)
    result, _ = _run(cfg, SessionPaths(tmp_path, "deadline"))
    (fatal,) = result.kpi["fatal_errors"]
    assert fatal.startswith("startup: the feeds were not ready within startup_timeout_s=0.3: feed:upbit not ready (")
    assert "connection refused by 127.0.0.1:" in fatal
    assert "feed:binance not started (a feed starts once the one before it is ready)" in fatal
    assert fatal.endswith("without internet access, run on the embedded exchange with --market sim")


def test_the_status_line_says_not_started_connecting_and_never_connected(tmp_path):
    cfg = config.load(ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(tmp_path)}})
    inputs = config.read_inputs(cfg)
    info = wiring.session_info(cfg, SessionPaths(tmp_path, "x"), inputs, 100.0)
    sources = wiring.sources(info, inputs)
    upbit = sources.actors["feed:upbit"]
    upbit.starts, upbit.restarts = 3, 2
    upbit.mark_down(101.0, "connect", "cannot connect")
    upbit.mark_down(102.0, "connect", "cannot connect")
    line = status_line(info, sources.progress(110.0))
    assert line.startswith("starting  10.0s | ")
    assert "upbit:connecting msgs=0 age=- rc=2 (connect 2)" in line
    assert "binance:not started |" in line and "DOWN" not in line and "{" not in line
    upbit.gave_up = True
    sources.lifecycle.end(111.0)
    assert "upbit:never connected msgs=0 age=- rc=2 (connect 2)" in status_line(info, sources.progress(112.0))


@pytest.mark.realtime
def test_the_command_line_fails_with_exit_1_one_reason_and_no_dangling_link(tmp_path):
    port = _closed_port()
    cfg = tmp_path / "offline.toml"
    cfg.write_text(
        '[session]\nduration_s = 5\nlogs_dir = "unused"\n'
        "[strategy]\nentry_bps = 10\ntp_bps = 12\norder_qty_btc = 0.05\n"
        f'[feeds.upbit]\nurl = "ws://127.0.0.1:{port}/websocket/v1"\n'
        f'[feeds.binance]\nws_url = "ws://127.0.0.1:{port}"\nrest_url = "http://127.0.0.1:{port}"\n'
        "[supervision]\n" + "".join(f"{key} = {value}\n" for key, value in RETRIES.items())
    )
    logs = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "actors.session", "--config", str(cfg), "--market", "live", "--logs-dir", str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "max_restarts" not in proc.stdout + proc.stderr
    assert f"connection refused by 127.0.0.1:{port}" in proc.stdout and "--market sim" in proc.stdout
    (kpi,) = logs.glob("kpi_*.json")
    assert json.loads(kpi.read_text())["status"] == "failed"
    latest = logs / "latest"
    assert [link.name for link in latest.iterdir() if not link.exists()] == []
    assert (latest / "kpi.json").exists() and (latest / "session.log").exists()
    # every file written is listed, after the report
    listed = proc.stdout.split("/latest/):\n", 1)[1].split()
    assert sorted(listed) == sorted(p.name for p in logs.iterdir() if p.is_file())
