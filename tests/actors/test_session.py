"""Whole sessions: in virtual time over the in-memory network, and one over real loopback sockets."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import trio
from markets import on_ou
from session_process import SessionProcess

from actors import config
from actors.net.memory import memory_network
from actors.records.paths import SessionPaths
from actors.session import EXIT_FAILED, run_session
from actors.tools.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def demo(tmp_path: Path, **session) -> config.Config:
    """The demo on the OU market: the foundation criteria need trades within 60 s."""
    return config.load(ROOT / "config" / "demo.toml", on_ou({"session": {"logs_dir": str(tmp_path), **session}}))


async def test_sixty_second_session_meets_the_foundation_criteria(autojump_clock, tmp_path):
    memory_network()
    cfg = demo(tmp_path, duration_s=60)
    paths = SessionPaths(tmp_path, "20260101_000000")
    t0 = trio.current_time()
    result = await run_session(cfg, paths, handle_signals=False)
    kpi = json.loads(paths.kpi.read_text())
    assert result.status == "completed" and result.exit_code == 0
    assert kpi["final"] and kpi["duration_s"] == pytest.approx(60, abs=0.01)
    assert trio.current_time() - t0 < 62  # startup + 60 s + drain
    assert all(f["connects"] == 1 and f["messages"] > 500 for f in kpi["feeds"].values())
    assert kpi["reconnects"] == {"upbit": 0, "binance": 0}
    assert kpi["fatal_exceptions"] == 0
    assert kpi["entry_trades"] >= 2
    for side in ("BUY", "SELL"):
        assert kpi["available_volume"][side]["std_over_mean"] >= 0.1
    lines = paths.fill_events.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == kpi["fill_events"] == kpi["fill_events_written"] >= 4
    assert sum(e["trade_pnl_usdt"] for e in events if e["trade_pnl_usdt"] is not None) == pytest.approx(
        kpi["pnl_usdt"], abs=1e-6
    )
    assert all(e["available_volume"] > 0 and e["filled_qty"] <= e["available_volume"] + 1e-12 for e in events)
    assert {e["fx_source"] for e in events} == {"upbit:KRW-USDT"}
    assert kpi["actors"]["feed:upbit"]["restarts"] == 0


async def test_an_unreachable_exchange_ends_the_session_with_a_clear_error(autojump_clock, tmp_path):
    memory_network()  # nothing listens on it: every connect is refused
    cfg = demo(tmp_path, market="live", duration_s=60)
    cfg = config.parse(
        {
            **config.unparse(cfg),
            "feeds": {
                "upbit": {"url": "ws://memory:1/websocket/v1"},
                "binance": {"ws_url": "ws://memory:2", "rest_url": "http://memory:3"},
            },
        }
    )
    paths = SessionPaths(tmp_path, "20260101_000001")
    t0 = trio.current_time()
    result = await run_session(cfg, paths, handle_signals=False)
    kpi = json.loads(paths.kpi.read_text())
    assert result.status == "failed" and result.exit_code == EXIT_FAILED
    assert kpi["final"] and kpi["fatal_exceptions"] == 1
    assert "feed:upbit failed 6 times within 60 s" in kpi["fatal_errors"][0]
    assert kpi["actors"]["feed:upbit"]["causes"] == {"connect": 6}
    # backoff 0.5, 1, 2, 4, 8 s with ±20 % jitter before giving up
    assert 15.5 * 0.8 <= trio.current_time() - t0 <= 15.5 * 1.2
    assert paths.fill_events.read_text() == ""
    assert "C7 | fatal exceptions | 0 | 1 | **FAIL**" in write_report(tmp_path).read_text()  # no data, no warning


@pytest.mark.realtime
def test_session_over_real_loopback_sockets(tmp_path):
    """The one real-time run: both feeds over real WebSockets and HTTP on 127.0.0.1."""
    cfg = demo(tmp_path, duration_s=3)
    paths = SessionPaths(tmp_path, "20260101_000002")

    async def main():
        with trio.fail_after(30):
            return await run_session(cfg, paths, handle_signals=False)

    result = trio.run(main)
    kpi = result.kpi
    assert result.status == "completed" and kpi["fatal_exceptions"] == 0
    assert kpi["feeds"]["upbit"]["messages"] >= 40 and kpi["feeds"]["binance"]["resyncs"] == 1
    assert kpi["reconnects"] == {"upbit": 0, "binance": 0}
    assert kpi["premium_bps"] is not None


def _cli(forked_cli, module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module ARGS`` forked from a process that imported the project once (tests/forked_cli.py: the
    same status and output as a fresh interpreter); the signal tests below run fresh interpreters."""
    return forked_cli.run(module, *args, timeout=120)


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "file not found"),
        ("[session\nduration_s = 1", "not valid TOML"),
        (
            '[session]\nduration_s = 60\nlogs_dir = "x"\nspeed = 2\n[strategy]\nentry_bps = 1\ntp_bps = 1\n'
            "order_qty_btc = 0.1\n",
            "$.session.speed: unknown key (expected one of: duration_s",
        ),
        (
            '[session]\nduration_s = "sixty"\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\n'
            "order_qty_btc = 0.1\n",
            "$.session.duration_s: expected a number, got 'sixty'",
        ),
        (
            '[session]\nduration_s = -5\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n',
            "$.session.duration_s: expected a number > 0, got -5",
        ),
        (
            '[session]\nduration_s = 5\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n'
            '[feeds.upbit]\nurl = "http://x"\n',
            "$.feeds.upbit.url: expected a ws:// or wss:// URL, got 'http://x'",
        ),
        (
            '[session]\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n',
            "$.session.duration_s: expected a number, got nothing (the key is missing)",
        ),
        (
            '[session]\nduration_s = 5\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n'
            'fill_model = "calibrated"\n',
            "$.strategy.calibration: expected a calibration file path when fill_model = 'calibrated', got nothing",
        ),
        (
            '[session]\nduration_s = 5\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n'
            'fill_model = "calibrated"\ncalibration = "nope.json"\n',
            "$.strategy.calibration: 'nope.json': file not found",
        ),
        (
            '[session]\nduration_s = 5\nlogs_dir = "x"\n[strategy]\nentry_bps = 1\ntp_bps = 1\norder_qty_btc = 0.1\n'
            "zones = [[10, 12], [5]]\n",
            "$.strategy.zones: expected a list of [entry_bps, tp_bps] pairs of numbers > 0, got [[10, 12], [5]]",
        ),
    ],
)
def test_bad_config_exits_2_with_one_clear_line(forked_cli, tmp_path, content, expected):
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content)
    proc = _cli(forked_cli, "actors.session", "--config", str(path))
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1


def test_cli_flags_override_the_file_and_are_checked(forked_cli, tmp_path):
    proc = _cli(forked_cli, "actors.session", "--config", "config/demo.toml", "--duration", "-1")
    assert proc.returncode == 2 and "$.session.duration_s: expected a number > 0, got -1.0" in proc.stderr
    proc = _cli(forked_cli, "actors.session", "--config", "config/demo.toml", "--market", "moon")
    assert proc.returncode == 2 and "invalid choice: 'moon'" in proc.stderr and "Traceback" not in proc.stderr


def test_shipped_configs_load():
    demo_cfg = config.load(ROOT / "config" / "demo.toml")
    assert demo_cfg.session.market == "sim" and demo_cfg.session.duration_s == 60
    ref = config.load(ROOT / "config" / "d84_2.toml")
    assert ref.session.market == "live" and ref.session.duration_s == 1200
    assert ref.session.logs_dir == "logs/d84-2" and ref.feeds.upbit.market == "KRW-BTC"
    assert ref.feeds.binance.symbol == "BTCUSDT" and ref.feeds.upbit.url.startswith("wss://api.upbit.com")


def test_decode_cli(forked_cli, fixtures, tmp_path):
    proc = _cli(
        forked_cli,
        "actors.tools.decode",
        "--venue",
        "binance",
        str(fixtures / "binance" / "depth_diff_100ms_combined_BTCUSDT_hftbacktest_2024_1.json"),
    )
    assert proc.returncode == 0
    event = json.loads(proc.stdout)
    assert event["event"] == "DepthDiff" and event["first_id"] == 50093239189
    lines = tmp_path / "frames.txt"
    lines.write_text('1723161253937085768 {"u":1,"s":"X","b":"1.0","B":"2","a":"1.5","A":"3"}\nnot a frame\n')
    proc = _cli(forked_cli, "actors.tools.decode", "--venue", "binance", str(lines))
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["event"] == "BookTicker"
    assert f"{lines}:2: cannot decode: not a Binance frame" in proc.stderr


def test_core_logic_never_needs_the_package_on_pypi_named_supervision():
    import supervision

    assert Path(supervision.__file__).resolve().is_relative_to(ROOT)


@pytest.mark.realtime
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_session_cleanly_with_a_final_kpi(tmp_path, signum):
    with SessionProcess("--config", "config/demo.toml", "--logs-dir", str(tmp_path), "--duration", "120") as proc:
        proc.wait_for_stderr("both feeds ready", timeout_s=30)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout_s=30)
    assert proc.returncode == 0, err
    (kpi_file,) = tmp_path.glob("kpi_*.json")
    kpi = json.loads(kpi_file.read_text())
    assert kpi["final"] and kpi["status"] == "interrupted" and kpi["fatal_exceptions"] == 0
    assert f"{signal.Signals(signum).name} received" in err
    assert "interrupted" in out and "Traceback" not in err


def test_calibrate_cli_builds_and_keeps_zones(forked_cli, tmp_path):
    lines = []
    for i in range(6):
        for side, ratio in (("BUY", 0.5 + i / 100), ("SELL", 1.0)):
            lines.append(json.dumps({"entry_bps": 5, "tp_bps": 5, "side": side, "fill_ratio": ratio, "leg": "entry"}))
    events = tmp_path / "fill_events_x.jsonl"
    events.write_text("\n".join(lines) + '\n{"torn')
    out = tmp_path / "cal.json"
    proc = _cli(
        forked_cli,
        "actors.tools.calibrate",
        str(events),
        "--out",
        str(out),
        "--keep-from",
        str(ROOT / "config" / "calibration" / "d84_1.json"),
        "--keep",
        "10/12",
    )
    assert proc.returncode == 0, proc.stderr
    assert "torn last line skipped" in proc.stderr
    doc = json.loads(out.read_text())
    zones = {(z["entry_bps"], z["tp_bps"]): z for z in doc["zones"]}
    assert zones[(5.0, 5.0)]["BUY"]["n"] == 6 and zones[(5.0, 5.0)]["BUY"]["mean"] == pytest.approx(0.525)
    assert zones[(10.0, 12.0)]["BUY"]["mean"] == 0.2615  # kept, with its source
    assert "earlier system" in zones[(10.0, 12.0)]["BUY"]["source"]
    proc = _cli(forked_cli, "actors.tools.calibrate", str(tmp_path / "missing.jsonl"), "--out", str(out))
    assert proc.returncode == 2 and "calibrate:" in proc.stderr and "Traceback" not in proc.stderr


def test_virtual_time_needs_the_simulator(forked_cli, tmp_path):
    proc = _cli(
        forked_cli, "actors.session", "--config", "config/d84_2.toml", "--virtual-time", "--logs-dir", str(tmp_path)
    )
    assert proc.returncode == 2 and "--virtual-time needs market = 'sim'" in proc.stderr
