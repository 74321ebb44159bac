"""A hostile exchange for tests: the embedded simulator behind endpoints that misbehave like real servers.

``HostileExchange`` runs ``actors.sim.serve.serve_sim`` in a thread of its own (its own ``trio.run``) and puts
a hostile endpoint in front of, or in place of, any of its three endpoints, all on 127.0.0.1. It is a plain
context manager, so a plain pytest test can point a whole session subprocess at it::

    with HostileExchange(binance_rest="trickle") as endpoints:
        path = live_config(tmp_path, endpoints, feeds={"binance": {"snapshot_timeout_s": 2}})
        subprocess.run([sys.executable, "-m", "actors.session", "--config", str(path)], cwd=ROOT, timeout=60)

Modes (``"sim"`` everywhere is the simulator's own endpoint; ``"proxy"`` a transparent proxy to it):

- WebSocket endpoints (``upbit``, ``binance_ws``): ``silent_handshake`` accepts TCP and never answers the
  upgrade; ``stall`` completes the handshake, then sends nothing and answers no ping; ``nested_json`` proxies and
  injects a frame of 100,000 ``[`` after every 5th real frame; ``unsorted_upbit`` proxies and sets the LAST unit's
  bid of every Upbit order book (every code, when it has two units or more) 39,000 KRW above its best ask;
  ``upbit_half_price`` proxies and halves every KRW-BTC price. The last two are Upbit-only. ``flood`` (Binance only)
  proxies and replaces every depth diff by one with the same ``U``, ``u`` and ``E`` but ``FLOOD_LEVELS`` levels a side
  (cycling through about 4, 8 and 13 MB a frame; bids below 10,000, asks above 1,000,000: never crossed).
- REST endpoint (``binance_rest``): ``trickle`` answers a real snapshot with its Content-Length, then one body
  byte a second; ``huge`` declares 2 GiB and streams 64 KiB chunks as fast as the client reads; ``silent`` reads
  the request and never answers; ``ahead`` adds 10**9 to the snapshot's ``lastUpdateId``; ``fail`` answers every
  request at once with HTTP 500.

A proxy opens the simulator's URL with the client's path and query, forwards client messages unchanged and
server messages through its mode, binary stays binary and text stays text; when one side ends, the other is
ended (a close code is passed on to the client, an abrupt drop stays a drop). Every write waits for the peer to
read (no unbounded buffer) and a client may vanish at any moment: that ends its handler quietly. Anything else a
handler raises is a bug of this module: it is kept in ``errors`` and raised by ``__exit__``.

``counters`` says what the hostile side did, keyed ``"<endpoint>.<what>"`` (``upbit.connections``,
``upbit.frames_injected``, ``binance_rest.body_bytes_sent``, ...); it can be read at any time, also after exit.

Import it as ``from hostile import ...``: pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import hashlib
import json
import math
import queue
import re
import threading
import tomllib
import typing
from functools import partial
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

import attrs
import h11
import httpx
import trio
from trio_websocket import ConnectionClosed  # WsRequest.accept and reject raise the library's own

from actors.net.ws import WsClosed, WsConn, WsConnectError, WsRequest, open_ws, serve_ws
from actors.sim.serve import serve_sim
from actors.sim.settings import SimConfig

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # never any other address

WsMode = Literal[
    "sim", "proxy", "silent_handshake", "stall", "nested_json", "unsorted_upbit", "upbit_half_price", "flood"
]
RestMode = Literal["sim", "proxy", "trickle", "huge", "silent", "ahead", "fail"]
WS_MODES: tuple[str, ...] = typing.get_args(WsMode)
REST_MODES: tuple[str, ...] = typing.get_args(RestMode)
UPBIT_ONLY_MODES = ("unsorted_upbit", "upbit_half_price")
BINANCE_ONLY_MODES = ("flood",)

NESTED_EVERY = 5  # nested_json: one injected frame after every 5th real frame
NESTED_DEPTH = 100_000  # ... of this many "["
UNSORTED_ABOVE_ASK_KRW = 39_000  # unsorted_upbit: the last unit's bid, above the best ask
TRICKLE_INTERVAL_S = 1.0  # trickle: one body byte this often
HUGE_LENGTH = 2**31  # huge: the declared Content-Length (2147483648)
CHUNK = 64 * 1024  # huge: bytes per write; every read of a discarding handler
AHEAD_BY = 10**9  # ahead: added to the snapshot's lastUpdateId
FLOOD_LEVELS = (85_000, 170_000, 262_144)  # flood: levels a side of successive diffs (about 4, 8 and 13 MB)
UPSTREAM_TIMEOUT_S = 5.0  # a proxy's connect to, or request of, the simulator
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
# a valid JSON prefix at every byte: whitespace between tokens is allowed anywhere
_HUGE_FIRST = b'{"lastUpdateId":1,"bids":['.ljust(CHUNK)
_HUGE_NEXT = b" " * CHUNK
# a client vanishing (reset, closed, or a half-sent request) ends its handler quietly
_GONE = (WsClosed, ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError)

Message = bytes | str
Transform = Callable[[Message], list[Message]]


@attrs.frozen
class Endpoints:
    upbit_url: str  # ws://127.0.0.1:<port>/websocket/v1
    binance_ws_url: str  # ws://127.0.0.1:<port> (the feed adds /stream?streams=...)
    binance_rest_url: str  # http://127.0.0.1:<port>


class HostileExchangeError(RuntimeError):
    """The hostile exchange could not start or stop, or one of its handlers failed (a bug in tests/hostile.py)."""


class HostileExchange:
    """Context manager: a thread runs the simulator and the hostile endpoints; ``__enter__`` returns the
    Endpoints to connect to, ``__exit__`` cancels the thread's run and joins it (raising if it does not stop)."""

    def __init__(
        self,
        *,
        upbit: WsMode = "sim",
        binance_ws: WsMode = "sim",
        binance_rest: RestMode = "sim",
        sim: SimConfig | None = None,
        seed: int = 1,
        binance_symbol: str = "BTCUSDT",
    ) -> None:
        for name, mode, allowed in (
            ("upbit", upbit, WS_MODES),
            ("binance_ws", binance_ws, WS_MODES),
            ("binance_rest", binance_rest, REST_MODES),
        ):
            if mode not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {mode!r}")
        if binance_ws in UPBIT_ONLY_MODES:
            raise ValueError(f"binance_ws: {binance_ws!r} rewrites Upbit order books; use it for upbit")
        if upbit in BINANCE_ONLY_MODES:
            raise ValueError(f"upbit: {upbit!r} rewrites Binance depth diffs; use it for binance_ws")
        self.modes = {"upbit": upbit, "binance_ws": binance_ws, "binance_rest": binance_rest}
        self.errors: list[str] = []  # unexpected handler failures (bugs here), raised by __exit__
        self.upstream: Endpoints | None = None  # the simulator's own endpoints, once started
        self._sim_cfg = sim if sim is not None else SimConfig()
        self._seed = seed
        self._symbol = binance_symbol
        self._counters: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._started: queue.Queue[Endpoints | BaseException] = queue.Queue(maxsize=1)
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._failure: BaseException | None = None

    @property
    def counters(self) -> dict[str, int]:
        """A copy of what the hostile side did so far."""
        return dict(self._counters)

    def __enter__(self) -> Endpoints:
        if self._thread is not None:
            raise HostileExchangeError("a HostileExchange runs once; make a new one")
        self._thread = threading.Thread(target=self._run, name="hostile-exchange", daemon=True)
        self._thread.start()
        try:
            outcome = self._started.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self._stop()
            raise HostileExchangeError(f"the hostile exchange did not start within {START_TIMEOUT_S:g} s") from None
        if isinstance(outcome, BaseException):
            self._stop()
            raise HostileExchangeError(f"the hostile exchange could not start: {outcome!r}") from outcome
        return outcome

    def __exit__(self, exc_type, exc, tb) -> None:
        stopped = self._stop()
        _flood_levels.cache_clear()  # tens of MB of flood text: not kept in the test process
        if exc_type is not None:
            return  # the test's own exception says more
        if not stopped:
            raise HostileExchangeError(f"the hostile exchange did not stop within {STOP_TIMEOUT_S:g} s")
        if self._failure is not None:
            raise HostileExchangeError(f"the hostile exchange failed: {self._failure!r}") from self._failure
        if self.errors:
            raise HostileExchangeError("hostile handlers failed (a bug in tests/hostile.py): " + "; ".join(self.errors))

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the test's thread, never to threading's excepthook
            self._failure = exc
            with contextlib.suppress(queue.Full):
                self._started.put_nowait(exc)

    def _stop(self) -> bool:
        """Cancel the run and join the thread; False if it is still running after STOP_TIMEOUT_S."""
        token, scope = self._token, self._scope
        if token is not None and scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)  # from any thread, also one inside another trio.run
        self._thread.join(STOP_TIMEOUT_S)
        return not self._thread.is_alive()

    async def _main(self) -> None:
        async with httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT_S) as http, trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            self._token = trio.lowlevel.current_trio_token()
            sim = await nursery.start(
                partial(serve_sim, self._sim_cfg, self._seed, host=HOST, binance_symbol=self._symbol)
            )
            self.upstream = Endpoints(sim.upbit_url, sim.binance_ws_url, sim.binance_rest_url)
            endpoints = Endpoints(
                await self._start_ws(nursery, "upbit", sim.upbit_url),
                await self._start_ws(nursery, "binance_ws", sim.binance_ws_url),
                await self._start_rest(nursery, http, sim.binance_rest_url),
            )
            self._started.put_nowait(endpoints)

    def _count(self, name: str, what: str, n: int = 1) -> None:
        key = f"{name}.{what}"
        self._counters[key] = self._counters.get(key, 0) + n

    async def _guard(self, name: str, handler, *args) -> None:
        """Run one connection's handler: a client going away ends it quietly, anything else is recorded."""
        try:
            await handler(name, *args)
        except* _GONE:
            pass
        except* Exception as group:
            self._count(name, "handler_errors")
            self.errors.extend(f"{name}: {exc!r}" for exc in group.exceptions)

    # -- WebSocket endpoints -----------------------------------------------------------------------

    async def _start_ws(self, nursery: trio.Nursery, name: str, upstream_url: str) -> str:
        mode = self.modes[name]
        if mode == "sim":
            return upstream_url
        parts = urlsplit(upstream_url)
        if mode in ("silent_handshake", "stall"):
            handler = self._silent_handshake if mode == "silent_handshake" else self._stall
            listeners = await nursery.start(partial(trio.serve_tcp, partial(self._guard, name, handler), 0, host=HOST))
            port = listeners[0].socket.getsockname()[1]
        else:
            base = f"{parts.scheme}://{parts.netloc}"
            port = await nursery.start(serve_ws, partial(self._guard, name, self._proxy, base, mode), HOST, 0)
        return f"ws://{HOST}:{port}{parts.path}"

    async def _silent_handshake(self, name: str, stream: trio.SocketStream) -> None:
        self._count(name, "connections")
        await self._discard(name, stream)

    async def _stall(self, name: str, stream: trio.SocketStream) -> None:
        """Complete the opening handshake by hand, then read and discard: no frame, no pong, ever."""
        self._count(name, "connections")
        conn = h11.Connection(h11.SERVER)
        request = await _next_event(conn, stream)
        if not isinstance(request, h11.Request):
            return
        headers = dict(request.headers)
        key = headers.get(b"sec-websocket-key")
        if key is None or headers.get(b"upgrade", b"").lower() != b"websocket":
            await stream.send_all(conn.send(h11.Response(status_code=400, headers=[("Content-Length", "0")])))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            return
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self._count(name, "handshakes")
        await self._discard(name, stream)

    async def _discard(self, name: str, stream: trio.SocketStream) -> None:
        while data := await stream.receive_some(CHUNK):
            self._count(name, "bytes_discarded", len(data))

    async def _proxy(self, name: str, base: str, mode: str, request: WsRequest) -> None:
        self._count(name, "connections")
        transform = _transform(mode, partial(self._count, name))
        ended: list[str] = []

        def end(side: str) -> None:
            """Count which side ended the connection first (before the other side is told)."""
            if not ended:
                ended.append(side)
                self._count(name, f"closed_by_{side}")

        async with contextlib.AsyncExitStack() as stack:
            try:
                upstream = await stack.enter_async_context(
                    open_ws(base + request.path, connect_timeout_s=UPSTREAM_TIMEOUT_S)
                )
            except WsConnectError:
                self._count(name, "upstream_errors")
                await request.reject(502)
                return
            client = await request.accept()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, name, client, upstream, _unchanged, "client", end, nursery.cancel_scope)
                nursery.start_soon(self._pump, name, upstream, client, transform, "upstream", end, nursery.cancel_scope)

    async def _pump(
        self,
        name: str,
        source: WsConn,
        sink: WsConn,
        transform: Transform,
        side: str,
        end: Callable[[str], None],
        done: trio.CancelScope,
    ) -> None:
        """Forward ``source`` -> ``sink`` until either ends, then end the other direction too (the upstream's
        close code is passed on to the client; the upstream is closed by ``open_ws`` on the way out)."""
        try:
            while True:
                try:
                    message = await source.receive()
                except WsClosed as closed:
                    end(side)
                    if side == "upstream":
                        with trio.move_on_after(UPSTREAM_TIMEOUT_S):  # a client that never answers the close
                            await _pass_close(sink, closed)
                    return
                if side == "upstream":
                    self._count(name, "frames_forwarded")
                for out in transform(message):
                    await sink.send(out)
        except _GONE:
            end("upstream" if side == "client" else "client")
        finally:
            done.cancel()

    # -- REST endpoint -----------------------------------------------------------------------------

    async def _start_rest(self, nursery: trio.Nursery, http: httpx.AsyncClient, upstream_url: str) -> str:
        if self.modes["binance_rest"] == "sim":
            return upstream_url
        handler = partial(self._guard, "binance_rest", self._serve_rest, http, upstream_url)
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=HOST))
        return f"http://{HOST}:{listeners[0].socket.getsockname()[1]}"

    async def _serve_rest(
        self, name: str, http: httpx.AsyncClient, upstream_url: str, stream: trio.SocketStream
    ) -> None:
        self._count(name, "connections")
        conn = h11.Connection(h11.SERVER)
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.Request):
                self._count(name, "requests")
                if self.modes[name] == "silent":
                    await self._discard(name, stream)  # until the client goes away
                    return
                await self._answer(name, http, upstream_url + event.target.decode("latin-1"), conn, stream)
            elif event is h11.PAUSED and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()  # keep-alive: the next request on this connection
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return

    async def _answer(
        self, name: str, http: httpx.AsyncClient, url: str, conn: h11.Connection, stream: trio.SocketStream
    ) -> None:
        mode = self.modes[name]
        if mode == "huge":
            await self._send_huge(name, conn, stream)
            return
        if mode == "fail":
            body = json.dumps({"code": -1, "msg": "hostile: internal error"}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            await stream.send_all(conn.send(h11.Response(status_code=500, headers=headers)))
            await stream.send_all(conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            return
        status, headers, body = await self._fetch(name, http, url)
        if mode == "ahead" and status == 200:
            body = _ahead(body)
            self._count(name, "snapshots_rewritten")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]
        await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
        pieces = [body[i : i + 1] for i in range(len(body))] if mode == "trickle" else [body]
        for piece in pieces:
            if mode == "trickle":
                await trio.sleep(TRICKLE_INTERVAL_S)
            await stream.send_all(conn.send(h11.Data(data=piece)))
            self._count(name, "body_bytes_sent", len(piece))
        await stream.send_all(conn.send(h11.EndOfMessage()))

    async def _fetch(self, name: str, http: httpx.AsyncClient, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """The simulator's answer to the same request: (status, headers to pass on, body)."""
        try:
            response = await http.get(url)
        except httpx.HTTPError as exc:
            self._count(name, "upstream_errors")
            return 502, [], json.dumps({"code": -1, "msg": f"hostile proxy: {exc!r}"}).encode()
        weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
        return response.status_code, [("X-MBX-USED-WEIGHT-1M", weight)] if weight else [], response.content

    async def _send_huge(self, name: str, conn: h11.Connection, stream: trio.SocketStream) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(HUGE_LENGTH))]
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
        remaining, chunk = HUGE_LENGTH, _HUGE_FIRST
        while remaining:
            piece = chunk[:remaining]
            await stream.send_all(conn.send(h11.Data(data=piece)))  # waits while the client does not read
            remaining -= len(piece)
            self._count(name, "body_bytes_sent", len(piece))
            chunk = _HUGE_NEXT
        await stream.send_all(conn.send(h11.EndOfMessage()))


async def _next_event(conn: h11.Connection, stream: trio.SocketStream):
    """The next h11 event, reading as needed (a closed socket becomes h11.ConnectionClosed)."""
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await stream.receive_some(CHUNK))
    return event


async def _pass_close(client: WsConn, closed: WsClosed) -> None:
    """End the client's side as the simulator ended ours: the same close code, or an abrupt drop."""
    if closed.code in (None, 1006):
        await client.abort()
    elif closed.code in (1005, 1015):  # reserved: never sent in a close frame
        await client.close(1000)
    else:
        await client.close(closed.code, closed.reason)


# -- server -> client transforms (one per proxied connection) ----------------------------------------


def _unchanged(message: Message) -> list[Message]:
    return [message]


def _transform(mode: str, count: Callable[[str], None]) -> Transform:
    if mode == "proxy":
        return _unchanged
    if mode == "nested_json":
        seen = 0

        def nested(message: Message) -> list[Message]:
            nonlocal seen
            seen += 1
            if seen % NESTED_EVERY:
                return [message]
            count("frames_injected")
            junk = "[" * NESTED_DEPTH
            return [message, junk.encode() if isinstance(message, bytes) else junk]

        return nested
    if mode == "flood":
        sent = 0

        def flood(message: Message) -> list[Message]:
            nonlocal sent
            big = _flooded(message, FLOOD_LEVELS[sent % len(FLOOD_LEVELS)])
            if big is None:
                return [message]
            sent += 1
            count("frames_flooded")
            count("flood_bytes", len(big))
            return [big.encode() if isinstance(message, bytes) else big]

        return flood
    edit = {"unsorted_upbit": _unsort, "upbit_half_price": _halve}[mode]

    def rewrite(message: Message) -> list[Message]:
        changed = _edit_upbit_books(message, edit)
        if changed is None:
            return [message]
        count("frames_rewritten")
        return [changed]

    return rewrite


# Upbit's DEFAULT and SIMPLE spellings: (units, code, bid price, ask price)
_UPBIT_KEYS = (("orderbook_units", "code", "bid_price", "ask_price"), ("obu", "cd", "bp", "ap"))
UpbitEdit = Callable[[Any, list[dict], str, str], bool]  # (code, units, bid key, ask key) -> changed?


def _edit_upbit_books(message: Message, edit: UpbitEdit) -> Message | None:
    """The frame with each Upbit order book (plain or in a LIST wrapper) passed through ``edit``, in the
    frame's own type; None when nothing changed (not JSON, not an order book, or left alone)."""
    try:
        data = json.loads(message)
    except ValueError:
        return None
    changed = False
    for book in data if isinstance(data, list) else [data]:
        if not isinstance(book, dict):
            continue
        for units_key, code_key, bid_key, ask_key in _UPBIT_KEYS:
            units = book.get(units_key)
            if isinstance(units, list) and units and all(isinstance(u, dict) for u in units):
                changed = edit(book.get(code_key), units, bid_key, ask_key) or changed
                break
    if not changed:
        return None
    text = json.dumps(data, separators=(",", ":"))
    return text.encode() if isinstance(message, bytes) else text


def _unsort(_code: Any, units: list[dict], bid: str, ask: str) -> bool:
    """The last unit's bid 39,000 KRW above the best ask: out of order, while the best pair stays uncrossed."""
    best_ask = units[0].get(ask)
    if len(units) < 2 or not isinstance(best_ask, (int, float)) or best_ask <= 0:
        return False
    units[-1][bid] = best_ask + UNSORTED_ABOVE_ASK_KRW
    return True


def _halve(code: Any, units: list[dict], bid: str, ask: str) -> bool:
    """Every KRW-BTC price halved: the venue trades 50 % below the other (a ~5,000 bps premium)."""
    if code != "KRW-BTC":
        return False
    for unit in units:
        for key in (bid, ask):
            if isinstance(unit.get(key), (int, float)):
                unit[key] = unit[key] / 2
    return True


@functools.cache
def _flood_levels(side: str, n: int) -> str:
    """``n`` levels as JSON pairs (without the brackets): bids from 0.01 up, asks from 1,000,000 up, a cent apart."""
    base = 1 if side == "b" else 100_000_000  # in cents
    return ",".join(f'["{(base + i) / 100:.2f}","0.50000000"]' for i in range(n))


def _flooded(message: Message, levels: int) -> str | None:
    """A Binance depth diff as a flood: the same envelope, ids and times, ``levels`` levels a side; None for
    any other frame."""
    try:
        frame = json.loads(message)
    except ValueError:
        return None
    data = frame.get("data", frame) if isinstance(frame, dict) else None
    if not isinstance(data, dict) or data.get("e") != "depthUpdate":
        return None
    head = {k: v for k, v in data.items() if k not in ("b", "a")}
    body = json.dumps(head, separators=(",", ":"))[:-1]
    body += f',"b":[{_flood_levels("b", levels)}],"a":[{_flood_levels("a", levels)}]}}'
    if "data" not in frame:
        return body
    return f'{{"stream":{json.dumps(frame.get("stream"))},"data":{body}}}'


def _ahead(body: bytes) -> bytes:
    try:
        snapshot = json.loads(body)
    except ValueError:
        return body
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("lastUpdateId"), int):
        return body
    snapshot["lastUpdateId"] += AHEAD_BY
    return json.dumps(snapshot, separators=(",", ":")).encode()


# -- session configs -------------------------------------------------------------------------------


def live_config(tmp_path: Path, endpoints: Endpoints, **overrides: dict[str, Any]) -> Path:
    """Write ``tmp_path/live.toml``: config/demo.toml's tables (without ``[sim]``) with ``market = "live"``, the
    feeds pointed at ``endpoints``, logs in ``tmp_path/logs`` and short timeouts for fast tests; then
    ``overrides`` as nested tables ({"session": {"duration_s": 3}}) win, a value of None removes a key."""
    raw = tomllib.loads((ROOT / "config" / "demo.toml").read_text(encoding="utf-8"))
    raw.pop("sim", None)
    ours = {
        "session": {
            "market": "live",
            "duration_s": 3,
            "logs_dir": str(tmp_path / "logs"),
            "status_interval_s": 1,
            "kpi_interval_s": 1,
        },
        "strategy": {"warmup_s": 1},
        "feeds": {
            "upbit": {"url": endpoints.upbit_url, "connect_timeout_s": 2, "stale_after_s": 3},
            "binance": {
                "ws_url": endpoints.binance_ws_url,
                "rest_url": endpoints.binance_rest_url,
                "connect_timeout_s": 2,
                "stale_after_s": 3,
                "snapshot_limit": 100,
            },
        },
        "supervision": {"initial_backoff_s": 0.1, "max_backoff_s": 1},
    }
    path = tmp_path / "live.toml"
    path.write_text(to_toml(merged(merged(raw, ours), overrides)), encoding="utf-8")
    return path


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``extra``'s nested tables merged in; a value of None removes the key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(tables: dict[str, Any]) -> str:
    """TOML text for nested dicts of str, bool, int, float (inf and nan too), lists and tuples; dicts inside
    lists become inline tables. Enough for session configs; raises TypeError on anything else."""
    lines: list[str] = []
    _write_table(lines, (), tables)
    return "\n".join(lines) + "\n"


def _write_table(lines: list[str], path: tuple[str, ...], table: dict[str, Any]) -> None:
    values = {k: v for k, v in table.items() if not isinstance(v, dict)}
    subtables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (values or not subtables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(k) for k in path) + "]")
    lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
    for key, sub in subtables.items():
        _write_table(lines, (*path, key), sub)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (str, Path)):
        return _toml_string(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _toml_string(text: str) -> str:
    escaped = []
    for ch in text:
        if ch in '"\\':
            escaped.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            escaped.append(f"\\u{ord(ch):04x}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'
