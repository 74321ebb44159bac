"""tests/hostile.py: every mode does on the wire what it says, seen by an independent client on 127.0.0.1.

Every ``with HostileExchange(...)`` also checks on exit that no handler failed and that the thread stopped.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from hostile import (
    AHEAD_BY,
    FLOOD_LEVELS,
    HUGE_LENGTH,
    NESTED_DEPTH,
    UNSORTED_ABOVE_ASK_KRW,
    Endpoints,
    HostileExchange,
    live_config,
    merged,
    to_toml,
)

from actors import config
from actors.core.venues import upbit
from actors.net.ws import WsClosed, WsLimits, open_ws
from actors.sim.settings import FaultConfig, SimConfig

pytestmark = pytest.mark.realtime  # a real exchange thread and clients on 127.0.0.1, on the real clock

ROOT = Path(__file__).resolve().parents[2]
DEPTH = "/api/v3/depth?symbol=BTCUSDT&limit=5"
STREAM = "/stream?streams=btcusdt@depth@100ms"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    return parts.hostname, parts.port


def _connect(url: str, timeout_s: float = 2.0) -> socket.socket:
    sock = socket.create_connection(_address(url), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def _upgrade_request(path: str) -> bytes:
    return (
        f"GET {path or '/'} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _get_request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head (status line and headers) and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _header(head: bytes, name: str) -> str:
    for line in head.decode().split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} in {head!r}")


def _units(frame: bytes) -> tuple[str, list[dict]]:
    book = json.loads(frame)
    return book["code"], book["orderbook_units"]


async def _receive_books(url: str, codes: tuple[str, ...], count: int) -> list[bytes | str]:
    async with open_ws(url, connect_timeout_s=2) as conn:
        await conn.send(upbit.subscribe_request("hostile-test", codes))
        return [await conn.receive() for _ in range(count)]


async def _wait_for(predicate, what: str) -> None:
    with trio.move_on_after(3):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"no {what} within 3 s")


# -- lifecycle and config --------------------------------------------------------------------------


async def test_starts_fast_serves_the_simulator_and_stops_cleanly():
    t0 = time.monotonic()
    exchange = HostileExchange(seed=3)
    with exchange as endpoints:
        assert time.monotonic() - t0 < 2.0
        assert endpoints == exchange.upstream  # "sim" everywhere: the simulator's own endpoints
        with trio.fail_after(5):
            frames = await _receive_books(endpoints.upbit_url, ("KRW-BTC",), 1)
            async with httpx.AsyncClient(base_url=endpoints.binance_rest_url, timeout=2) as http:
                snapshot = (await http.get(DEPTH)).json()
        t1 = time.monotonic()
    assert time.monotonic() - t1 < 2.0
    assert _units(frames[0])[0] == "KRW-BTC" and len(snapshot["bids"]) == 5
    assert exchange.counters == {}


def test_bad_modes_are_refused():
    with pytest.raises(ValueError, match="upbit: expected one of"):
        HostileExchange(upbit="loud")
    with pytest.raises(ValueError, match="binance_rest"):
        HostileExchange(binance_rest="stall")
    with pytest.raises(ValueError, match="Upbit order books"):
        HostileExchange(binance_ws="unsorted_upbit")
    with pytest.raises(ValueError, match="Binance depth diffs"):
        HostileExchange(upbit="flood")


def test_live_config_is_a_loadable_live_session_with_the_overrides(tmp_path):
    endpoints = Endpoints("ws://127.0.0.1:1/websocket/v1", "ws://127.0.0.1:2", "http://127.0.0.1:3")
    path = live_config(
        tmp_path,
        endpoints,
        session={"duration_s": 7, "startup_timeout_s": 4},
        feeds={"binance": {"snapshot_timeout_s": 2}},
        risk={"max_premium_bps": 800},
    )
    raw = tomllib.loads(path.read_text())
    assert raw["session"]["startup_timeout_s"] == 4 and raw["risk"] == {"max_premium_bps": 800}
    assert raw["feeds"]["binance"]["snapshot_timeout_s"] == 2 and "sim" not in raw
    cfg = config.load(live_config(tmp_path, endpoints, session={"duration_s": 7}))
    assert cfg.session.market == "live" and cfg.session.duration_s == 7
    assert cfg.session.logs_dir == str(tmp_path / "logs") and cfg.strategy.entry_bps == 10  # from demo.toml
    assert (cfg.feeds.upbit.url, cfg.feeds.binance.ws_url, cfg.feeds.binance.rest_url) == (
        endpoints.upbit_url,
        endpoints.binance_ws_url,
        endpoints.binance_rest_url,
    )


def test_to_toml_round_trips_the_value_types():
    data = {
        "top": 1,
        "a": {
            "s": 'q"uote\\ tab\t del\x7f 한',
            "f": 0.1,
            "big": 1e300,
            "inf": math.inf,
            "ninf": -math.inf,
            "t": True,
            "zones": [[10, 12], [5, 5.5]],
            "names": ("x", "y"),
            "faults": [{"at_s": 1, "kind": "close"}],
            "b": {"c": {"d": -3}},
        },
        "empty": {},
        "odd key": {"x.y": 2},
    }
    parsed = tomllib.loads(to_toml(data))
    assert math.isnan(tomllib.loads(to_toml({"n": math.nan}))["n"])
    assert parsed == {**data, "a": {**data["a"], "names": ["x", "y"]}}
    assert merged(data, {"a": {"b": None, "f": 2}, "top": None}) == {
        "a": {k: (2 if k == "f" else v) for k, v in data["a"].items() if k != "b"},
        "empty": {},
        "odd key": {"x.y": 2},
    }
    with pytest.raises(TypeError):
        to_toml({"x": object()})


# -- WebSocket modes -------------------------------------------------------------------------------


def test_silent_endpoints_take_the_request_and_never_answer():
    exchange = HostileExchange(upbit="silent_handshake", binance_ws="silent_handshake", binance_rest="silent")
    with exchange as endpoints:
        upgrade = _upgrade_request(urlsplit(endpoints.upbit_url).path)
        with (
            _connect(endpoints.upbit_url) as a,
            _connect(endpoints.binance_ws_url) as b,
            _connect(endpoints.binance_rest_url) as c,
        ):
            a.sendall(upgrade)
            b.sendall(_upgrade_request("/stream?streams=btcusdt@depth@100ms"))
            c.sendall(_get_request(DEPTH))
            a.settimeout(1.0)
            with pytest.raises(TimeoutError):
                a.recv(1)  # 1 s of silence; b and c had as long
            for sock in (b, c):
                sock.settimeout(0.05)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
        counters = exchange.counters
    assert counters["upbit.connections"] == counters["binance_ws.connections"] == 1
    assert counters["upbit.bytes_discarded"] == len(upgrade)
    assert counters["binance_rest.requests"] == 1


async def test_stall_completes_the_handshake_then_sends_nothing_and_answers_no_ping():
    exchange = HostileExchange(upbit="stall")
    with exchange as endpoints:
        with trio.fail_after(5):
            async with open_ws(endpoints.upbit_url, connect_timeout_s=2) as conn:  # a valid 101 handshake
                await conn.send(upbit.subscribe_request("hostile-test", ("KRW-BTC",)))
                got: list = []
                async with trio.open_nursery() as nursery:

                    async def receive() -> None:
                        with trio.move_on_after(1.0):
                            got.append(await conn.receive())

                    async def ping() -> None:
                        with trio.move_on_after(1.0):
                            await conn.ping(b"anyone?")
                            got.append("pong")

                    nursery.start_soon(receive)
                    nursery.start_soon(ping)
                assert got == []
        counters = exchange.counters
    assert counters["upbit.handshakes"] == 1 and counters["upbit.bytes_discarded"] > 0


async def test_nested_json_injects_a_deep_frame_after_every_fifth_and_keeps_frame_types():
    exchange = HostileExchange(upbit="nested_json", binance_ws="nested_json")
    results: dict[str, list] = {}
    with exchange as endpoints:

        async def binance_frames() -> None:
            async with open_ws(endpoints.binance_ws_url + STREAM, connect_timeout_s=2) as conn:
                results["binance"] = [await conn.receive() for _ in range(12)]

        async def upbit_frames() -> None:
            results["upbit"] = await _receive_books(endpoints.upbit_url, ("KRW-BTC", "KRW-USDT"), 12)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(binance_frames)
                nursery.start_soon(upbit_frames)
            await _wait_for(lambda: exchange.counters.get("upbit.closed_by_client") == 1, "the proxy's close")
        counters = exchange.counters
    for venue, kind, junk in (("upbit", bytes, b"[" * NESTED_DEPTH), ("binance", str, "[" * NESTED_DEPTH)):
        frames = results[venue]
        assert all(isinstance(f, kind) for f in frames)
        assert [i for i, f in enumerate(frames) if f == junk] == [5, 11]
        assert all(json.loads(f) for i, f in enumerate(frames) if i not in (5, 11))
    assert counters["upbit.frames_injected"] >= 2 and counters["binance_ws.frames_injected"] >= 2
    assert counters["upbit.frames_forwarded"] >= 10 and counters["binance_ws.connections"] == 1


async def test_unsorted_upbit_puts_the_last_bid_above_the_best_ask():
    exchange = HostileExchange(upbit="unsorted_upbit")
    with exchange as endpoints:
        with trio.fail_after(5):
            frames = await _receive_books(endpoints.upbit_url, ("KRW-BTC.15",), 3)
    for frame in frames:
        assert isinstance(frame, bytes)
        code, units = _units(frame)
        assert code == "KRW-BTC" and len(units) == 15
        best = units[0]
        assert 0 < best["bid_price"] < best["ask_price"]  # the top still looks fine
        assert units[-1]["bid_price"] == best["ask_price"] + UNSORTED_ABOVE_ASK_KRW  # but the units are not
        assert [u["bid_price"] for u in units[:-1]] == sorted((u["bid_price"] for u in units[:-1]), reverse=True)
    assert exchange.counters["upbit.frames_rewritten"] >= 3


async def test_upbit_half_price_halves_krw_btc_and_leaves_the_fx_book():
    exchange = HostileExchange(upbit="upbit_half_price")
    with exchange as endpoints:
        with trio.fail_after(5):
            codes = ("KRW-BTC", "KRW-USDT")
            hostile = await _receive_books(endpoints.upbit_url, codes, 2)
            honest = await _receive_books(exchange.upstream.upbit_url, codes, 2)

    def mids(frames) -> dict[str, float]:
        return {code: (units[0]["bid_price"] + units[0]["ask_price"]) / 2 for code, units in map(_units, frames)}

    hostile_mid, honest_mid = mids(hostile), mids(honest)
    assert hostile_mid["KRW-BTC"] / honest_mid["KRW-BTC"] == pytest.approx(0.5, rel=0.002)
    assert hostile_mid["KRW-USDT"] == pytest.approx(honest_mid["KRW-USDT"], rel=0.002)


async def test_proxy_passes_the_simulators_close_and_drop_on_to_the_client():
    faults = (FaultConfig(1.0, "binance", "close"), FaultConfig(1.0, "upbit", "drop"))
    exchange = HostileExchange(upbit="proxy", binance_ws="proxy", sim=SimConfig(faults=faults))
    ends: dict[str, WsClosed] = {}
    with exchange as endpoints:

        async def follow(venue: str, url: str, subscribe: str | None) -> None:
            async with open_ws(url, connect_timeout_s=2) as conn:
                if subscribe:
                    await conn.send(subscribe)
                with pytest.raises(WsClosed) as info:
                    while True:
                        await conn.receive()
                ends[venue] = info.value

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow, "binance", endpoints.binance_ws_url + STREAM, None)
                nursery.start_soon(
                    follow, "upbit", endpoints.upbit_url, upbit.subscribe_request("hostile-test", ("KRW-BTC",))
                )
        counters = exchange.counters
    assert ends["binance"].code == 1000 and ends["upbit"].restart_cause == "dropped"
    assert counters["binance_ws.closed_by_upstream"] == counters["upbit.closed_by_upstream"] == 1
    assert counters["binance_ws.frames_forwarded"] >= 5


async def test_flood_sends_each_diff_with_its_ids_and_a_quarter_to_a_quarter_million_levels_a_side():
    exchange = HostileExchange(binance_ws="flood")
    with exchange as endpoints:
        # a deadline against a hang, not a speed check: 3.6 s alone, 11 s on a 2-core machine running two suites
        with trio.fail_after(30):
            limits = WsLimits(16 * 2**20, 64 * 2**20)  # the hostile frames are up to 13 MB
            async with open_ws(endpoints.binance_ws_url + STREAM, connect_timeout_s=2, limits=limits) as conn:
                frames = [json.loads(await conn.receive()) for _ in range(3)]
    ids = [(f["data"]["U"], f["data"]["u"]) for f in frames]
    assert all(u >= first for first, u in ids) and [u + 1 for _, u in ids[:-1]] == [first for first, _ in ids[1:]]
    assert [len(f["data"]["b"]) for f in frames] == list(FLOOD_LEVELS)
    assert all(len(f["data"]["a"]) == len(f["data"]["b"]) for f in frames)
    best_bid = max(float(p) for p, _ in frames[2]["data"]["b"])
    assert best_bid < min(float(p) for p, _ in frames[2]["data"]["a"])  # never crossed
    assert exchange.counters["binance_ws.flood_bytes"] > 25 * 10**6


# -- REST modes ------------------------------------------------------------------------------------


def test_fail_answers_every_request_at_once_with_http_500():
    exchange = HostileExchange(binance_rest="fail")
    with exchange as endpoints:
        with httpx.Client(base_url=endpoints.binance_rest_url, timeout=2) as http:
            answers = [http.get(DEPTH) for _ in range(2)]  # the same connection, kept alive
    assert [a.status_code for a in answers] == [500, 500] and answers[0].json()["code"] == -1
    assert exchange.counters["binance_rest.requests"] == 2


def test_trickle_sends_the_real_length_then_one_byte_a_second():
    exchange = HostileExchange(binance_rest="trickle")
    with exchange as endpoints:
        real = httpx.get(exchange.upstream.binance_rest_url + DEPTH, timeout=2).content
        with _connect(endpoints.binance_rest_url, timeout_s=3) as sock:
            sock.sendall(_get_request(DEPTH))
            head, early = _read_head(sock)
            t0 = time.monotonic()
            first = early or sock.recv(1)
            t1 = time.monotonic()
            second = sock.recv(1)
            t2 = time.monotonic()
    assert head.startswith(b"HTTP/1.1 200 ") and early == b""
    assert abs(int(_header(head, "Content-Length")) - len(real)) < 40  # a real snapshot's size
    assert first + second == b'{"'
    assert 0.6 < t1 - t0 < 1.5 and 0.6 < t2 - t1 < 1.5
    assert exchange.counters["binance_rest.body_bytes_sent"] == 2


def test_huge_declares_two_gib_streams_as_fast_as_read_and_waits_for_a_slow_reader():
    exchange = HostileExchange(binance_rest="huge")
    with exchange as endpoints:
        with _connect(endpoints.binance_rest_url) as sock:
            sock.sendall(_get_request(DEPTH))
            head, body = _read_head(sock)
            assert (
                head.startswith(b"HTTP/1.1 200 ")
                and _header(head, "Content-Length") == str(HUGE_LENGTH) == "2147483648"
            )
            while len(body) < 32:
                body += sock.recv(32)
            received = len(body)
            deadline = time.monotonic() + 2.0
            while received < 8 * 2**20 and time.monotonic() < deadline:
                received += len(sock.recv(1 << 20))
            assert received >= 8 * 2**20  # several MiB within 2 s, and still coming

            # stop reading: the server fills the socket buffers, then waits instead of buffering more
            def sent() -> int:
                return exchange.counters["binance_rest.body_bytes_sent"]

            before, after, deadline = -1, sent(), time.monotonic() + 3.0
            while after != before and time.monotonic() < deadline:
                time.sleep(0.25)
                before, after = after, sent()
            assert after == before < received + 64 * 2**20
    assert body.startswith(b'{"lastUpdateId":1,"bids":[')


def test_ahead_moves_the_snapshot_a_billion_updates_ahead():
    exchange = HostileExchange(binance_rest="ahead")
    with exchange as endpoints:
        honest = httpx.get(exchange.upstream.binance_rest_url + DEPTH, timeout=2).json()
        response = httpx.get(endpoints.binance_rest_url + DEPTH, timeout=2)
    # the IP's weight this minute: the honest request's 5 and this one's (5 alone if a minute turned between)
    assert response.status_code == 200 and response.headers["X-MBX-USED-WEIGHT-1M"] in ("10", "5")
    ahead = response.json()
    assert AHEAD_BY <= ahead["lastUpdateId"] - honest["lastUpdateId"] < AHEAD_BY + 1000
    assert len(ahead["bids"]) == len(ahead["asks"]) == 5
    assert exchange.counters["binance_rest.snapshots_rewritten"] == 1


# -- robustness ------------------------------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN: the client vanishing as abruptly as it can."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize(
    "modes",
    [
        {"upbit": "nested_json", "binance_ws": "stall", "binance_rest": "trickle"},
        {"upbit": "unsorted_upbit", "binance_ws": "silent_handshake", "binance_rest": "huge"},
        {"upbit": "upbit_half_price", "binance_ws": "nested_json", "binance_rest": "ahead"},
        {"upbit": "proxy", "binance_ws": "proxy", "binance_rest": "silent"},
    ],
)
def test_clients_vanishing_at_any_moment_leave_no_error(modes):
    exchange = HostileExchange(**modes)  # __exit__ raises on any handler error
    with exchange as endpoints:

        async def vanish_mid_stream() -> None:
            with trio.fail_after(3):
                async with open_ws(endpoints.upbit_url, connect_timeout_s=2) as conn:
                    await conn.send(upbit.subscribe_request("hostile-test", ("KRW-BTC", "KRW-USDT")))
                    await conn.receive()
                    await conn.abort()
            await _wait_for(lambda: exchange.counters.get("upbit.closed_by_client") == 1, "the drop")

        trio.run(vanish_mid_stream)

        requests = {
            endpoints.upbit_url: _upgrade_request("/websocket/v1"),
            endpoints.binance_ws_url: _upgrade_request(STREAM),
            endpoints.binance_rest_url: _get_request(DEPTH),
        }
        for url, request in requests.items():
            full = len(request)
            for cut, wait_s in ((0, 0), (full // 2, 0), (full, 0), (full, 0.05)):  # 0.05: being answered
                sock = _connect(url)
                sock.sendall(request[:cut])
                time.sleep(wait_s)
                _reset(sock)
        time.sleep(0.2)
    assert not exchange.errors and exchange.counters["upbit.connections"] >= 2


# -- a whole session -------------------------------------------------------------------------------


def test_a_live_session_runs_through_the_proxies(tmp_path):
    exchange = HostileExchange(upbit="proxy", binance_ws="proxy", binance_rest="proxy")
    with exchange as endpoints:
        path = live_config(tmp_path, endpoints, session={"duration_s": 1})
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "actors.session", "--config", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    logs = "".join(p.read_text()[-3000:] for p in (tmp_path / "logs").glob("session_*.log"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    (kpi_path,) = (tmp_path / "logs").glob("kpi_*.json")
    kpi = json.loads(kpi_path.read_text())
    assert kpi["feeds"]["upbit"]["messages"] > 0 and kpi["feeds"]["binance"]["messages"] > 0
    counters = exchange.counters
    assert counters["binance_rest.requests"] >= 1 and counters["upbit.frames_forwarded"] > 0
