"""Whole live-mode sessions against a hostile exchange (tests/hostile.py) on 127.0.0.1.

For every behaviour the session must end by itself within duration + startup deadline + grace, with
peak memory under 400 MB, no traceback, exit status 0 or 1, and the cause named in the log and in the
KPI file; bad books (unsorted, frozen, far off the other venue) are refused and counted, never filled.
Each session is a real subprocess (`python -m actors.session`), so its exit status, stderr and peak RSS
are what a user would see.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile import HostileExchange, live_config

pytestmark = pytest.mark.realtime  # every test runs whole sessions in a subprocess, on the real clock

ROOT = Path(__file__).resolve().parents[2]
DURATION_S, STARTUP_S, GRACE_S = 3.0, 6.0, 5.0
MAX_RSS_MB = 400


# The session's own peak RSS: it runs under a small interpreter that reports os.wait4's ru_maxrss of its child.
# A child started straight from a pytest worker would count the worker's pages (Linux keeps the high-water mark of
# the image before exec), so a worker grown to 500 MB by earlier tests made every session here look that big.
_PEAK_RSS = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_against(tmp_path: Path, *, duration_s: float = DURATION_S, extra: dict | None = None, **modes) -> dict:
    """One session against a hostile exchange with ``modes``; its exit status, output, KPI, log and peak RSS."""
    overrides = {
        "session": {"duration_s": duration_s, "startup_timeout_s": STARTUP_S, "shutdown_grace_s": GRACE_S},
        "feeds": {"binance": {"snapshot_timeout_s": 2}},
    }
    for table, values in (extra or {}).items():
        overrides.setdefault(table, {}).update(values)
    with HostileExchange(**modes) as endpoints:
        path = live_config(tmp_path, endpoints, **overrides)
        started = time.monotonic()
        rss_file = tmp_path / "peak_rss_kib"
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PEAK_RSS,
                str(rss_file),
                sys.executable,
                "-m",
                "actors.session",
                "--config",
                str(path),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=duration_s + STARTUP_S + GRACE_S + 30)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the session too, if the test failed first
        elapsed = time.monotonic() - started
    logs = tmp_path / "logs"
    (kpi_file,) = logs.glob("kpi_*.json")
    return {
        "rc": proc.returncode,
        "out": out,
        "err": err,
        "elapsed": elapsed,
        "kpi": json.loads(kpi_file.read_text()),
        "log": "".join(p.read_text() for p in logs.glob("session_*.log")),
        "rss_mb": int(rss_file.read_text()) / 1024,
    }


# The sessions of the tests below that only read one run's outputs run three at a time: each waits on the real
# clock for most of its ~9 s (a startup deadline, a stale stream), so one after another these 12 took ~115 s of a
# worker (load ~4) and three at a time ~35 s (load ~2). Each is still its own subprocess against its own hostile
# exchange; a test waits for its own session, and a session that failed fails only its test.
NEVER_READY = [
    ({"upbit": "silent_handshake"}, "feed:upbit .*no WebSocket handshake within 2 s"),
    ({"binance_ws": "silent_handshake"}, "feed:binance .*no WebSocket handshake within 2 s"),
    ({"upbit": "stall"}, "feed:upbit .*no order book for KRW-BTC within 3 s of subscribing"),
    ({"binance_ws": "stall"}, "feed:binance .*no market data for 3 s"),
    ({"binance_rest": "trickle"}, "feed:binance .*no complete answer within 2 s"),
    ({"binance_rest": "silent"}, "feed:binance .*no complete answer within 2 s"),
    ({"binance_rest": "huge"}, "feed:binance .*depth snapshot of 2,147,483,648 bytes announced"),
]
TOGETHER = [
    *(modes for modes, _ in NEVER_READY),
    {"binance_rest": "ahead"},
    {"upbit": "unsorted_upbit"},
    {"upbit": "nested_json"},
    {"binance_ws": "nested_json"},
    {"upbit": "upbit_half_price"},
]
SESSIONS_AT_ONCE = 3  # each must still end within its deadline + 10 s, interpreter start and report included


def _key(modes: dict) -> str:
    return ",".join(f"{venue}={mode}" for venue, mode in sorted(modes.items()))


@pytest.fixture(scope="module")
def session_against(tmp_path_factory):
    """``session_against(modes)``: the run of ``run_against(tmp, **modes)``, for every mode set of TOGETHER, all
    started at the first call, SESSIONS_AT_ONCE at a time."""
    futures: dict[str, Future] = {}
    with ThreadPoolExecutor(SESSIONS_AT_ONCE, thread_name_prefix="hostile-session") as pool:

        def run(modes: dict) -> dict:
            if not futures:
                for each in TOGETHER:
                    tmp = tmp_path_factory.mktemp("hostile")
                    futures[_key(each)] = pool.submit(run_against, tmp, **each)
            return futures[_key(modes)].result()

        yield run
        for future in futures.values():
            future.cancel()


def assert_ended_well(run: dict, *, duration_s: float = DURATION_S) -> None:
    assert run["rc"] in (0, 1), run["err"]
    assert "Traceback" not in run["err"] and "Traceback" not in run["log"]
    assert run["elapsed"] < duration_s + STARTUP_S + GRACE_S + 10  # + the interpreter's start and the report
    assert run["kpi"]["final"] is True
    assert run["rss_mb"] < MAX_RSS_MB


def fatal_error(run: dict) -> str:
    """The one fatal error of a session that could not trade: the startup deadline, or a feed given up on
    (whichever came first), named in the KPI file and in the log."""
    assert run["rc"] == 1 and run["kpi"]["status"] == "failed" and run["kpi"]["fill_events"] == 0
    (fatal,) = run["kpi"]["fatal_errors"]
    assert (
        fatal.startswith(f"startup: the feeds were not ready within startup_timeout_s={STARTUP_S:g}")
        or " times within 60 s and was not restarted again" in fatal
    )
    assert fatal in run["log"]
    return fatal


@pytest.mark.parametrize("modes, cause", NEVER_READY, ids=lambda v: "-".join(v.values()) if isinstance(v, dict) else "")
def test_an_exchange_that_never_gets_ready_ends_the_session_with_the_cause_named(session_against, modes, cause):
    run = session_against(modes)
    assert_ended_well(run)
    assert re.search(cause, fatal_error(run)), run["kpi"]["fatal_errors"]


def test_a_snapshot_ahead_of_every_diff_is_never_traded(session_against):
    """Every diff looks older than the snapshot: the book would be frozen at the snapshot. It is never
    published; each stuck book (20 diffs in a row older than it, 2 s) is counted and resynced."""
    run = session_against({"binance_rest": "ahead"})
    assert_ended_well(run)
    feed = run["kpi"]["feeds"]["binance"]
    assert feed["stuck_books"] >= 2 and feed["books"] == 0
    assert "feed:binance" in fatal_error(run)
    assert "book stopped advancing" in run["log"]


def test_units_out_of_order_are_refused_frame_by_frame_and_never_traded(session_against):
    run = session_against({"upbit": "unsorted_upbit"})
    assert_ended_well(run)
    upbit = run["kpi"]["feeds"]["upbit"]
    assert upbit["bad_frames"] > 0 and upbit["books"] == 0
    assert "bids out of order" in run["log"]
    assert "feed:upbit" in fatal_error(run)


@pytest.mark.parametrize("venue", ["upbit", "binance_ws"])
def test_nested_json_frames_are_counted_and_skipped(session_against, venue):
    run = session_against({venue: "nested_json"})
    assert_ended_well(run)
    assert run["rc"] == 0 and run["kpi"]["status"] == "completed"
    feed = run["kpi"]["feeds"]["upbit" if venue == "upbit" else "binance"]
    assert feed["bad_frames"] >= 2 and feed["books"] > 0
    assert "bad frame #1 skipped" in run["log"]


def test_a_venue_half_off_the_other_is_bad_data_refused_and_never_traded(session_against):
    """Upbit 50 % below Binance (about -5,000 bps): beyond [risk] max_premium_bps every view is refused as bad
    data (no order, and the baseline does not learn from it)."""
    run = session_against({"upbit": "upbit_half_price"})
    assert_ended_well(run)
    kpi = run["kpi"]
    assert run["rc"] == 0 and kpi["premium_bps"] < -4000
    assert kpi["fill_events"] == 0 and kpi["entry_trades"] == 0
    assert kpi["refusals"].get("premium_band", 0) > 0


# Large diffs (about 4, 8 and 13 MB each, 85,000 to 262,144 levels a side) while the REST snapshot hangs, trickles
# or fails: before the byte budgets, the buffered diffs and the message queue took a session to 0.7-1.2 GB here
# (1.7-2.9 GB with the default 10 s snapshot deadline); now a message over feeds.binance.max_message_bytes (1 MiB)
# ends the connection, cause overflow, and a session ends by itself, well under 400 MB.
FLOOD = {"feeds": {"binance": {"snapshot_timeout_s": 4}}, "supervision": {"max_restarts": 2}}  # given up sooner


@pytest.mark.parametrize("rest", ["silent", "trickle", "fail"])
def test_a_flood_of_large_diffs_while_the_snapshot_hangs_trickles_or_fails_is_an_overflow(tmp_path, rest):
    run = run_against(tmp_path, binance_ws="flood", binance_rest=rest, extra=FLOOD)
    assert_ended_well(run)
    feed = run["kpi"]["feeds"]["binance"]
    assert feed["reconnect_causes"].get("overflow", 0) >= 1 and feed["books"] == 0
    assert "a message over 1 MiB (feeds.binance.max_message_bytes) was too big" in fatal_error(run)
    assert "failed (overflow)" in run["log"]


def test_with_messages_up_to_16_mib_allowed_the_diff_buffer_overflows_instead(tmp_path):
    """The second line of defence: the flood's diffs get through, and the diffs buffered for the snapshot that
    never comes outgrow feeds.binance.diff_buffer_bytes (32 MiB, estimated decoded size): counted, logged,
    started over, and three in a row end the connection (overflow)."""
    flood = {**FLOOD, "feeds": {"binance": {"snapshot_timeout_s": 4, "max_message_bytes": 16 * 1024 * 1024}}}
    run = run_against(tmp_path, binance_ws="flood", binance_rest="silent", extra=flood)
    assert_ended_well(run)
    feed = run["kpi"]["feeds"]["binance"]
    assert feed["overflows"] >= 3 and feed["reconnect_causes"].get("overflow", 0) >= 1
    assert "budget of 32 MiB (feeds.binance.diff_buffer_bytes)" in run["log"]
    assert "discarding them and resyncing (overflow)" in run["log"]
