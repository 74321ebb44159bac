"""``python -m actors.sim``: the embedded exchange as a program of its own (docs/simulator.md).

The realtime tests run it as a user would, in a subprocess: its first stdout line is the endpoints' JSON,
independent clients (trio-websocket, httpx) get books from it, Ctrl-C and SIGTERM end it with status 0 and
no traceback, bad input exits 2 with one line. The others check the command line and the status lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from actors.core.venues.upbit import subscribe_request
from actors.sim.exchange import HubStatistics, VenueStatistics
from actors.sim.process import STOP_S, ExchangeProcess
from actors.tools.exchange import build_parser, overrides_from, status_line, totals_line

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
DEMO = ROOT / "config" / "demo.toml"
RECEIVE_S = 5.0
MAX_MESSAGE = 16 * 1024 * 1024  # a 5000-level REST-like frame is over trio-websocket's 1 MiB default


def run_briefly(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors.sim", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=30
    )


async def upbit_books(url: str, codes: tuple[str, ...], *, wanted: int) -> dict[str, int]:
    """Subscribe to ``codes``' order books; frames received per code once every code has ``wanted``."""
    seen = dict.fromkeys(codes, 0)
    with trio.fail_after(RECEIVE_S):
        async with open_websocket_url(url, max_message_size=MAX_MESSAGE) as ws:
            await ws.send_message(subscribe_request("test-sim-cli", codes))
            while min(seen.values()) < wanted:
                frame = json.loads(await ws.get_message())
                assert frame["type"] == "orderbook"
                units = frame["orderbook_units"]
                assert len(units) == 30 and 0 < units[0]["bid_price"] < units[0]["ask_price"]
                seen[frame["code"]] += 1
    return seen


async def rest_depth(base_url: str, limit: int) -> tuple[httpx.Response, dict]:
    async with httpx.AsyncClient(base_url=base_url, timeout=RECEIVE_S) as http:
        with trio.fail_after(RECEIVE_S):
            response = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": limit})
    return response, response.json()


def assert_stopped_cleanly(exchange: ExchangeProcess, signum: signal.Signals = signal.SIGINT) -> str:
    returncode, rest_of_stdout, err = exchange.stop(signum)
    assert returncode == 0, err
    assert rest_of_stdout == ""  # stdout is the one JSON line
    assert "Traceback" not in err
    assert f"{signum.name} received: stopping" in err
    return err


# -- the program, as a user runs it ----------------------------------------------------------------


@pytest.mark.realtime
async def test_serves_books_to_independent_clients_and_stops_on_ctrl_c():
    with ExchangeProcess("--config", str(DEMO)) as exchange:
        endpoints = exchange.endpoints()
        assert endpoints.keys() == {"upbit_url", "binance_ws_url", "binance_rest_url", "upbit_rest_url"}
        assert endpoints["upbit_url"].startswith("ws://127.0.0.1:") and endpoints["upbit_url"].endswith("/websocket/v1")
        assert endpoints["binance_ws_url"].startswith("ws://127.0.0.1:")
        assert endpoints["binance_rest_url"].startswith("http://127.0.0.1:")

        seen = await upbit_books(endpoints["upbit_url"], ("KRW-BTC", "KRW-USDT"), wanted=2)
        assert seen["KRW-BTC"] >= 2 and seen["KRW-USDT"] >= 2

        response, depth = await rest_depth(endpoints["binance_rest_url"], 100)
        assert response.status_code == 200
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "5"
        assert len(depth["bids"]) == len(depth["asks"]) == 100
        assert float(depth["bids"][0][0]) < float(depth["asks"][0][0])
        assert isinstance(depth["lastUpdateId"], int)

        err = assert_stopped_cleanly(exchange)
    totals = [line for line in err.splitlines() if "totals after" in line]
    assert len(totals) == 1 and "upbit 1 opened" in totals[0] and "binance 0 opened" in totals[0], err


@pytest.mark.realtime
async def test_replays_a_recording_to_clients_of_both_venues(fixtures: Path):
    recording = fixtures / "recorded" / "hftbacktest" / "btcusdt_20240808.gz"
    with ExchangeProcess("--config", str(DEMO), "--replay", str(recording), "--speed", "2") as exchange:
        endpoints = exchange.endpoints()
        diffs = []

        async def binance_diffs() -> None:
            url = endpoints["binance_ws_url"] + "/stream?streams=btcusdt@depth@100ms"
            with trio.fail_after(RECEIVE_S):
                async with open_websocket_url(url, max_message_size=MAX_MESSAGE) as ws:
                    while len(diffs) < 3:
                        diffs.append(json.loads(await ws.get_message())["data"])

        async with trio.open_nursery() as nursery:  # the replay starts once each venue has a client
            nursery.start_soon(binance_diffs)
            seen = await upbit_books(endpoints["upbit_url"], ("KRW-BTC",), wanted=2)
        assert seen["KRW-BTC"] >= 2
        assert [d["e"] for d in diffs] == ["depthUpdate"] * 3
        assert all(later["U"] == earlier["u"] + 1 for earlier, later in zip(diffs, diffs[1:]))
        assert diffs[0]["E"] < 1_723_200_000_000  # the recording's own times (2024-08-08), not ours

        response, depth = await rest_depth(endpoints["binance_rest_url"], 100)
        assert response.status_code == 200 and depth["bids"] and depth["asks"]

        err = assert_stopped_cleanly(exchange, signal.SIGTERM)
    assert "serving a replay of" in err


@pytest.mark.realtime
def test_a_bad_config_exits_2_with_one_line_naming_the_field(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(DEMO.read_text() + "step_ms = 5\n")  # the demo's last table is [sim]
    run = run_briefly("--config", str(path))
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith("config error: ") and "$.sim.step_ms" in line


@pytest.mark.realtime
def test_a_port_in_use_and_a_bad_recording_exit_2_with_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_briefly("--config", str(DEMO), "--binance-rest-port", str(port))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines()[-1] == "cannot serve on 127.0.0.1: Address already in use"
    assert "Traceback" not in run.stderr

    not_a_recording = tmp_path / "notes.txt"
    not_a_recording.write_text("hello\n")
    run = run_briefly("--config", str(DEMO), "--replay", str(not_a_recording))
    assert run.returncode == 2 and run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"replay error: {not_a_recording}: ")


# -- the command line and the status lines ---------------------------------------------------------


def test_every_option_says_its_default():
    parser = build_parser()
    options = [a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")]
    assert options
    for action in options:
        assert action.help and "default" in action.help, action.option_strings


def test_the_command_line_becomes_config_overrides():
    args = build_parser().parse_args(["--config", "c.toml", "--replay", "a.gz", "b.gz", "--speed", "3", "--seed", "9"])
    assert overrides_from(args) == {
        "session": {"seed": 9, "market": "replay"},
        "replay": {"via": "exchange", "as_fast_as_possible": False, "files": ["a.gz", "b.gz"], "speed": 3.0},
    }


def test_status_and_totals_lines():
    def stats(upbit_frames: int, binance_frames: int, faults: dict[str, int]) -> HubStatistics:
        return HubStatistics(
            {"upbit": VenueStatistics(1, 2, upbit_frames), "binance": VenueStatistics(1, 1, binance_frames)}, faults
        )

    before, now = stats(100, 50, {}), stats(300, 150, {"upbit:close": 1, "binance:gap": 2})
    assert status_line(before, now, 10.0) == (
        "status: upbit 1 connected (2 opened), 20.0 frames/s; binance 1 connected (1 opened), 10.0 frames/s; "
        "faults injected 3 (binance:gap 2, upbit:close 1)"
    )
    assert totals_line(now, 61.25) == (
        "totals after 61.2 s: upbit 2 opened, 300 frames; binance 1 opened, 150 frames; "
        "faults injected 3 (binance:gap 2, upbit:close 1)"
    )


@pytest.mark.realtime
def test_make_exchange_prints_the_endpoints_json_as_its_first_line():
    """README and docs/simulator.md: `make exchange`'s first stdout line is the JSON (make echoed its command
    first). ``-o .venv/.installed``: the test never reinstalls the project."""
    make = shutil.which("make")
    if make is None or not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs make and the project's .venv (make test makes it)")
    # as from a shell: under `make test` its variables would make this a recursive make ("Entering directory"),
    # and its command-line ARGS (exported to every recipe) would become the exchange's arguments
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "ARGS", "CONFIG")}
    with subprocess.Popen(
        [make, "-o", ".venv/.installed", "exchange"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C reaches make and the exchange together
    ) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=20), "make exchange printed nothing within 20 s"
            first = proc.stdout.readline()
            assert first, f"make exchange ended without a line: {proc.stderr.read() if proc.stderr else ''}"
            keys = {"upbit_url", "binance_ws_url", "binance_rest_url", "upbit_rest_url"}
            assert set(json.loads(first)) == keys, first
        finally:
            with contextlib.suppress(ProcessLookupError):  # make may have ended already (a failed recipe)
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
