"""Hostile configs through the real command line: each is one line on stderr and exit status 2 (each command
forked from a process that imported the project once, tests/forked_cli.py; two on a fresh interpreter).

Non-finite numbers, periods so short that a loop never lets the clock advance, market codes that
only look upper-case, files that are not configs (devices, FIFOs, folders, huge sparse files,
nesting deep enough to blow the parser's recursion), and command-line overrides hiding a bad file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from actors import config

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 512 << 20  # address space for the CLI under test: far less than any of the hostile files


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _cli(forked_cli, *args: str) -> subprocess.CompletedProcess:
    """``python -m actors.session ARGS`` under the memory limit, forked from a process that imported the project
    once (tests/forked_cli.py: the same status and output as a fresh interpreter)."""
    return forked_cli.run("actors.session", *args, memory_limit=MEMORY_LIMIT)


def _fresh_cli(*args: str) -> subprocess.CompletedProcess:
    """The same on a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "actors.session", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=_limit_memory,
    )


def _assert_one_line_exit_2(proc: subprocess.CompletedProcess, *expected: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("config error: "), proc.stderr[-2000:]
    for words in expected:
        assert words in proc.stderr


def _toml(tmp_path: Path, **tables: dict[str, str]) -> str:
    """A valid minimal config with ``tables`` ({"feeds.upbit": {"market": '"X"'}}, TOML literals) added."""
    doc: dict[str, dict[str, str]] = {
        "session": {"duration_s": "5", "logs_dir": json.dumps(str(tmp_path / "logs"))},
        "strategy": {"entry_bps": "10", "tp_bps": "12", "order_qty_btc": "0.05"},
    }
    for table, keys in tables.items():
        doc.setdefault(table.replace("__", "."), {}).update(keys)
    text = "".join(
        f"[{table}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None)
        for table, keys in doc.items()
    )
    path = tmp_path / "hostile.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# (table, key, TOML literal, words expected on the one line)
NON_FINITE = [
    ("session", "duration_s", "inf", "$.session.duration_s: expected a finite number, got inf"),
    ("session", "duration_s", "nan", "$.session.duration_s: expected a finite number, got nan"),
    ("strategy", "max_hold_s", "-inf", "$.strategy.max_hold_s: expected a finite number, got -inf"),
    ("sim", "premium_mean_bps", "nan", "$.sim.premium_mean_bps: expected a finite number, got nan"),
    ("strategy", "zones", "[[10, 12], [5, inf]]", "$.strategy.zones[1][1]: expected a finite number, got inf"),
    ("fx", "fixed_krw_per_usdt", "1" + "0" * 400, "$.fx.fixed_krw_per_usdt: expected a finite number, got 1000"),
    ("session", "startup_timeout_s", "nan", "$.session.startup_timeout_s: expected a finite number, got nan"),
    (
        "feeds.binance",
        "snapshot_timeout_s",
        "inf",
        "$.feeds.binance.snapshot_timeout_s: expected a finite number, got inf",
    ),
    ("risk", "max_position_btc", "nan", "$.risk.max_position_btc: expected a number > 0 or inf, got nan"),
    ("risk", "max_loss_usdt", "-inf", "$.risk.max_loss_usdt: expected a number > 0 or inf, got -inf"),
    ("risk", "max_premium_bps", "0", "$.risk.max_premium_bps: expected a number > 0 or inf, got 0"),
]

PERIODS = [
    ("session", "kpi_interval_s", "1e-300", "$.session.kpi_interval_s: expected a number >= 0.1, got 1e-300"),
    ("session", "status_interval_s", "0.05", "$.session.status_interval_s: expected a number >= 0.1, got 0.05"),
    ("feeds.upbit", "ping_interval_s", "0.5", "$.feeds.upbit.ping_interval_s: expected a number >= 1, got 0.5"),
    ("chaos", "kill_every_s", "1e-300", "$.chaos.kill_every_s: expected 0 (off) or a number >= 0.1, got 1e-300"),
    ("sim", "binance_ping_interval_s", "0.001", "$.sim.binance_ping_interval_s: expected a number >= 1, got 0.001"),
    (
        "sim",
        "fault_rate_per_min",
        "1e12",
        "$.sim.fault_rate_per_min: expected a number from 0 to 600, got 1000000000000.0",
    ),
    ("sim", "step_ms", "0", "$.sim.step_ms: expected an integer from 10 to 60000, got 0"),
    ("sim", "step_ms", "1", "$.sim.step_ms: expected an integer from 10 to 60000, got 1"),
    (
        "supervision",
        "initial_backoff_s",
        "1e-300",
        "$.supervision.initial_backoff_s: expected a number >= 0.01, got 1e-300",
    ),
    ("supervision", "max_backoff_s", "0.001", "$.supervision.max_backoff_s: expected a number >= 0.01, got 0.001"),
    ("supervision", "multiplier", "0.5", "$.supervision.multiplier: expected a number >= 1, got 0.5"),
    ("supervision", "window_s", "1e-300", "$.supervision.window_s: expected a number >= 1, got 1e-300"),
]

MARKET = "an upper-case ASCII market code such as KRW-BTC"
SYMBOL = "an upper-case ASCII symbol such as BTCUSDT"
CODES = [
    ("feeds.upbit", "market", '"KRW-ＢＴＣ"', f"$.feeds.upbit.market: expected {MARKET}, got 'KRW-ＢＴＣ'"),
    ("feeds.upbit", "market", '"KRW-BTC٣"', f"$.feeds.upbit.market: expected {MARKET}, got 'KRW-BTC٣'"),
    ("feeds.upbit", "market", '"krw-btc"', f"$.feeds.upbit.market: expected {MARKET}, got 'krw-btc'"),
    ("feeds.upbit", "market", '"KRWBTC"', f"$.feeds.upbit.market: expected {MARKET}, got 'KRWBTC'"),
    ("feeds.upbit", "fx_market", '"KRW-USDT\\n"', f"$.feeds.upbit.fx_market: expected {MARKET}, got 'KRW-USDT\\n'"),
    ("feeds.binance", "symbol", '"BTC-USDT"', f"$.feeds.binance.symbol: expected {SYMBOL}, got 'BTC-USDT'"),
    ("feeds.binance", "symbol", '"ＢＴＣUSDT"', f"$.feeds.binance.symbol: expected {SYMBOL}, got 'ＢＴＣUSDT'"),
    ("fx", "source", '"binance"', "$.fx.source: expected one of 'upbit', 'fixed', got 'binance'"),  # a Venue, or not
]

PATHS = [
    (
        "session",
        "logs_dir",
        '"logs\\u0000x"',
        "$.session.logs_dir: expected a non-empty path without NUL characters, got 'logs\\x00x'",
    ),
    (
        "replay",
        "files",
        '["a.gz", "b\\u0000.gz"]',
        "$.replay.files: expected a list of non-empty paths without NUL characters, got ['a.gz', 'b\\x00.gz']",
    ),
]
CASES = NON_FINITE + PERIODS + CODES + PATHS


@pytest.mark.parametrize("table, key, literal, expected", CASES, ids=[f"{t}.{k}={v[:12]}" for t, k, v, _ in CASES])
def test_a_hostile_value_is_one_line_and_exit_2(forked_cli, tmp_path, table, key, literal, expected):
    path = _toml(tmp_path, **{table: {key: literal}})
    _assert_one_line_exit_2(_cli(forked_cli, "--config", path), f"{path}: {expected}")


def test_a_hostile_value_and_a_huge_file_are_refused_alike_on_a_fresh_interpreter(tmp_path):
    """The cases here run forked from one process that imported the project (tests/forked_cli.py); two of them
    run as a user runs them, the second one within the memory limit only because it is refused unread."""
    table, key, literal, expected = NON_FINITE[0]
    path = _toml(tmp_path, **{table: {key: literal}})
    _assert_one_line_exit_2(_fresh_cli("--config", path), f"{path}: {expected}")
    sparse = _special(tmp_path, "sparse")
    _assert_one_line_exit_2(_fresh_cli("--config", sparse), f"config error: {sparse}: ", "too large (1024.0 MiB")


def test_a_period_that_would_freeze_the_virtual_clock_is_refused(forked_cli, tmp_path):
    path = _toml(tmp_path, session={"kpi_interval_s": "1e-300"})
    _assert_one_line_exit_2(
        _cli(forked_cli, "--config", path, "--virtual-time"), "expected a number >= 0.1, got 1e-300"
    )


def test_the_shipped_and_documented_defaults_pass_the_new_rules():
    cfg = config.load(ROOT / "config" / "demo.toml")
    assert cfg.risk.max_position_btc == float("inf") and cfg.risk.max_premium_bps == 1500
    assert cfg.session.startup_timeout_s == 60 and cfg.feeds.binance.snapshot_timeout_s == 10
    assert config.parse(config.unparse(cfg)) == cfg  # inf survives a round trip


# -- files that are not configs ----------------------------------------------------------------------


def _special(tmp_path: Path, kind: str) -> str:
    if kind == "device":
        return "/dev/zero"
    path = tmp_path / f"special-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(1 << 30)  # 1 GB of holes: no disk used
    elif kind == "latin1":
        path.write_bytes(b'[session]\nlogs_dir = "caf\xe9"\n')
    elif kind == "deep_toml":
        path.write_text("a = " + "[" * 100_000)
    elif kind == "deep_json":
        path.write_text("[" * 100_000)
    elif kind == "huge_int_json":
        zone = {"entry_bps": 10**400, "tp_bps": 1, "BUY": {"mean": 0.5}, "SELL": {"mean": 0.5}}
        path.write_text(json.dumps({"version": "1", "zones": [zone], "fallback": {}}))
    return str(path)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("device", "/dev/zero: not a regular file"),
        ("fifo", "not a regular file"),
        ("folder", "is a folder, not a file"),
        ("sparse", "too large (1024.0 MiB; at most 1.0 MiB expected here)"),
        ("latin1", "not UTF-8 text"),
        ("deep_toml", "not valid TOML ("),
    ],
)
def test_a_config_that_is_not_a_config_file_is_refused_before_reading_much(forked_cli, tmp_path, kind, expected):
    path = _special(tmp_path, kind)
    _assert_one_line_exit_2(_cli(forked_cli, "--config", path), f"config error: {path}: ", expected)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("device", "not a regular file"),
        ("fifo", "not a regular file"),
        ("folder", "is a folder, not a file"),
        ("sparse", "too large (1024.0 MiB; at most 16.0 MiB expected here)"),
        ("deep_json", "not a readable JSON file ("),
        ("huge_int_json", "malformed calibration"),
    ],
)
def test_a_calibration_that_is_not_a_calibration_file_is_refused(forked_cli, tmp_path, kind, expected):
    calibration = _special(tmp_path, kind)
    path = _toml(tmp_path, strategy={"fill_model": '"calibrated"', "calibration": json.dumps(calibration)})
    _assert_one_line_exit_2(
        _cli(forked_cli, "--config", path), f"{path}: $.strategy.calibration: {calibration!r}: ", expected
    )


# -- command-line overrides ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal, expected",
    [
        ('"sixty"', "$.session.duration_s: expected a number, got 'sixty'"),
        ("inf", "$.session.duration_s: expected a finite number, got inf"),
    ],
)
def test_an_override_does_not_hide_a_bad_value_in_the_file(forked_cli, tmp_path, literal, expected):
    path = _toml(tmp_path, session={"duration_s": literal})
    _assert_one_line_exit_2(_cli(forked_cli, "--config", path, "--duration", "5"), f"{path}: {expected}")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--duration", "1e309"], "$.session.duration_s: expected a finite number, got inf"),
        (["--duration", "nan"], "$.session.duration_s: expected a finite number, got nan"),
        (["--chaos-kill-every", "0.01"], "$.chaos.kill_every_s: expected 0 (off) or a number >= 0.1, got 0.01"),
    ],
)
def test_a_hostile_override_is_one_line_and_exit_2(forked_cli, tmp_path, args, expected):
    _assert_one_line_exit_2(_cli(forked_cli, "--config", _toml(tmp_path), *args), expected)


def test_a_key_missing_from_the_file_can_come_from_the_command_line(forked_cli, tmp_path):
    path = _toml(tmp_path, session={"logs_dir": None}, chaos={"kill_every_s": "0.01"})
    proc = _cli(forked_cli, "--config", path, "--logs-dir", str(tmp_path))
    _assert_one_line_exit_2(proc, "$.chaos.kill_every_s: expected 0 (off) or a number >= 0.1, got 0.01")
    assert "logs_dir" not in proc.stderr
    cfg = config.load(_toml(tmp_path, session={"logs_dir": None}), {"session": {"logs_dir": str(tmp_path)}})
    assert cfg.session.logs_dir == str(tmp_path)


def test_speed_without_a_replay_is_refused(forked_cli):
    proc = _cli(forked_cli, "--config", str(ROOT / "config" / "demo.toml"), "--speed", "10")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("command line error: --speed paces a replay") and "'sim'" in line
