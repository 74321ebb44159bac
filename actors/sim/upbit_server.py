"""Upbit's public quotation WebSocket, served from the simulated market (PROTOCOLS.md §1.9).

- ``/websocket/v1`` only; every server frame is BINARY UTF-8 JSON; the server never pings.
- A subscribe frame (JSON array) replaces the connection's whole subscription; unknown or lower-case
  codes are ignored silently; ``CODE.n`` picks n units (1, 5, 15 or 30, anything else 30).
- First frame per code is a SNAPSHOT, then REALTIME frames whenever the book changed (100 ms grid).
  Thin sides are padded with zero units. Numbers are spelled as on the wire (PROTOCOLS.md §1.3):
  DEFAULT writes prices like Java (``1.16539E8``) and sizes with 8 decimals (``0.00077720``); SIMPLE
  writes prices plain (``116606000``) and sizes with at most 8 decimals, small ones as Java does
  (``7.9276E-4``).
- Errors: ``{"error":{"name":…,"message":…}}`` then a normal close (1000).
- Limits (PROTOCOLS.md §1.7; ``actors.sim.limits``): more than ``upbit_messages_per_s`` (5) data requests
  (subscribes; a text ``PING`` is not one) in a second on a connection get the error frame ``TOO_MANY_REQUEST``
  and the close (what Upbit sends is not documented nor observed: this is our choice, in its error shape);
  more than ``upbit_connects_per_s`` (5) connects in a second from one IP are refused at the handshake with
  HTTP 429 (Upbit's documented answer past a limit).
- REST (``serve_upbit_rest``, its own port): ``GET /v1/market/all`` only, the listing (``actors.sim.listings``), at
  most 10 requests a second per IP (the ``market`` group; more: HTTP 429).
- Text ``PING`` starts ``{"status":"UP"}`` every 10 s. A connection with no frame either way for
  ``upbit_idle_timeout_s`` (wire: about 60 s; the docs say 120 s) is dropped without a close frame (the
  client sees 1006). Any frame counts: the client's messages, its protocol pings and pongs (which the
  WebSocket library answers itself, ``actors.net.ws.WatchedConn``), and ours, books and ``UP`` alike
  (PROTOCOLS.md §1.6).
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Iterable
from urllib.parse import urlsplit

import attrs
import trio
from loguru import logger

from actors.core.vocabulary import Venue
from actors.net.http import client_host, serve_http
from actors.net.ws import WatchedConn, WsRequest, serve_ws
from actors.sim import listings
from actors.sim.exchange import FaultTarget, MarketHolder, SimHub
from actors.sim.limits import RateWindow
from actors.sim.model import UPBIT_BTC, UPBIT_USDT, StepResult
from actors.sim.settings import FaultConfig

UNIT_CHOICES = (1, 5, 15, 30)
FORMATS = ("DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST")
TYPES = ("ticker", "trade", "orderbook")
UP_INTERVAL_S = 10.0


# the ~120 prices near the tops repeat on their tick grid, and the Decimal path costs ~7 µs; 512 entries
# keep the soak flat (a 65,536-entry cache grew for hours)
@functools.lru_cache(maxsize=512)
def java_double(x: float) -> str:
    """Java's Double.toString spelling: plain in [1e-3, 1e7), else ``d.dddE±n``."""
    if x == 0:
        return "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(float(x))
        return text if ("." in text or "e" in text) else text + ".0"
    sign, digits, exponent = Decimal(repr(float(x))).normalize().as_tuple()
    assert isinstance(exponent, int)  # only NaN and infinity have a letter here, and prices are finite
    head = str(digits[0])
    tail = "".join(str(d) for d in digits[1:]) or "0"
    return f"{'-' if sign else ''}{head}.{tail}E{len(digits) - 1 + exponent}"


@functools.lru_cache(maxsize=512)
def plain_number(x: float) -> str:
    """A price as SIMPLE frames write it: plain digits, no exponent and no ``.0`` (``116606000``, ``1380.5``)."""
    return format(Decimal(repr(float(x))).normalize(), "f")


def simple_size(x: float) -> str:
    """A size or total as SIMPLE frames write it: at most 8 decimals (sums of sizes lose their float noise
    here: ``0.40838764000000005``), below 0.001 in Java's exponent form (``7.9276E-4``, ``5.0E-4``), else
    plain however large (``0.06288509``, ``2.2403413``, ``25752275.55420627``)."""
    rounded = round(x, 8)
    if rounded and abs(rounded) < 1e-3:
        return java_double(rounded)
    text = repr(rounded)
    return text if "e" not in text else format(Decimal(text), "f")


class SubscribeError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@attrs.frozen
class Subscription:
    units: dict[str, int]  # code -> number of units
    fmt: str = "DEFAULT"
    only_snapshot: bool = False
    only_realtime: bool = False


def parse_subscription(text: str, known: tuple[str, ...] = (UPBIT_BTC, UPBIT_USDT)) -> Subscription:
    """Validate a client request the way the server does; raise SubscribeError otherwise."""
    try:
        request = json.loads(text)
    except ValueError:
        raise SubscribeError("WRONG_FORMAT", "Requested using wrong format.") from None
    if not isinstance(request, list) or not all(isinstance(o, dict) for o in request):
        raise SubscribeError("WRONG_FORMAT", "Requested using wrong format.")
    if not any(isinstance(o.get("ticket"), str) and o["ticket"] for o in request):
        raise SubscribeError("NO_TICKET", "ticket field is missing or invalid.")
    fmt = next((o["format"] for o in request if "format" in o), "DEFAULT")
    if fmt not in FORMATS:
        raise SubscribeError("INVALID_PARAM", f"unsupported format {fmt}.")
    kinds = [o for o in request if "type" in o]
    if not kinds:
        raise SubscribeError("NO_TYPE", "type field is missing.")
    units: dict[str, int] = {}
    only_snapshot = only_realtime = False
    for obj in kinds:
        kind = obj["type"]
        if kind not in TYPES and not str(kind).startswith("candle."):
            raise SubscribeError("INVALID_PARAM", f"type {kind} is not supported.")
        codes = obj.get("codes")
        if not isinstance(codes, list) or not codes:
            raise SubscribeError("NO_CODES", "codes field not exists.")
        if kind != "orderbook":
            continue  # accepted; this simulator publishes order books only
        only_snapshot = bool(obj.get("is_only_snapshot", obj.get("isOnlySnapshot", False)))
        only_realtime = bool(obj.get("is_only_realtime", obj.get("isOnlyRealtime", False)))
        for item in codes:
            code, _, n = str(item).partition(".")
            if code in known:  # unknown and lower-case codes are silently ignored
                units[code] = int(n) if n.isdigit() and int(n) in UNIT_CHOICES else 30
    return Subscription(units, fmt, only_snapshot, only_realtime)


def orderbook_frame(hub: MarketHolder, code: str, n: int, snapshot: bool, fmt: str) -> bytes:
    book = hub.market.books[code]
    bids, asks = book.top(n)
    simple = fmt.startswith("SIMPLE")
    units = []
    for i in range(n):
        ap, asz = asks[i] if i < len(asks) else (0.0, 0.0)
        bp, bsz = bids[i] if i < len(bids) else (0.0, 0.0)
        if simple:
            units.append(
                f'{{"ap":{plain_number(ap)},"bp":{plain_number(bp)},"as":{simple_size(asz)},"bs":{simple_size(bsz)}}}'
            )
        else:
            units.append(
                f'{{"ask_price":{java_double(ap)},"bid_price":{java_double(bp)},'
                f'"ask_size":{asz:.8f},"bid_size":{bsz:.8f}}}'
            )
    total_ask = sum(s for _, s in asks[:n])
    total_bid = sum(s for _, s in bids[:n])
    stream = "SNAPSHOT" if snapshot else "REALTIME"
    ts = hub.market.time_ms
    if simple:
        body = (
            f'{{"ty":"orderbook","cd":"{code}","tms":{ts},"tas":{simple_size(total_ask)},'
            f'"tbs":{simple_size(total_bid)},"obu":[{",".join(units)}],"st":"{stream}","lv":0}}'
        )
    else:
        body = (
            f'{{"type":"orderbook","code":"{code}","timestamp":{ts},"total_ask_size":{total_ask:.8f},'
            f'"total_bid_size":{total_bid:.8f},"orderbook_units":[{",".join(units)}],'
            f'"stream_type":"{stream}","level":0}}'
        )
    if fmt.endswith("_LIST"):
        body = f"[{body}]"
    return body.encode()


def error_frame(name: str, message: str) -> bytes:
    """An Upbit error frame, as the server sends it before closing."""
    return json.dumps({"error": {"name": name, "message": message}}, ensure_ascii=False).encode()


class _Session(FaultTarget):
    """One client connection."""

    venue = Venue.UPBIT

    def __init__(self, hub: SimHub, conn: WatchedConn) -> None:
        super().__init__(hub, conn)
        self.watched = conn
        self.sub = Subscription({})
        self.sent_snapshot: set[str] = set()
        self.up_started = trio.Event()
        self._requests = RateWindow(hub.cfg.upbit_messages_per_s)

    async def send_books(self, codes: Iterable[str]) -> None:
        sub = self.sub
        for code in codes:
            n = sub.units.get(code)
            if n is None:
                continue
            first = code not in self.sent_snapshot
            if first:
                self.sent_snapshot.add(code)
                if sub.only_realtime:
                    continue
            elif sub.only_snapshot:
                continue
            await self.conn.send(orderbook_frame(self.hub, code, n, first, sub.fmt))

    async def read(self, cancel: trio.CancelScope) -> None:
        while True:
            message = await self.conn.receive()
            text = message.decode() if isinstance(message, bytes) else message
            if text == "PING":
                self.up_started.set()
                continue
            try:
                if not self._requests.allow(trio.current_time()):
                    raise SubscribeError("TOO_MANY_REQUEST", "Too many requests.")
                self.sub = parse_subscription(text, self.hub.market.upbit_codes)
            except SubscribeError as exc:
                await self.conn.send(error_frame(exc.name, exc.message))
                await trio.sleep(0.2)
                await self.conn.close(1000)
                cancel.cancel()
                return
            self.sent_snapshot = set()
            await self.send_books(list(self.sub.units))

    async def publish(self) -> None:
        async def on_step(step: StepResult) -> None:
            if not self.stalled:
                await self.send_books(step.upbit_changed)
            await self.apply_faults()

        await self.hub.follow(on_step)
        await self.conn.abort()  # dropped as a slow consumer

    def garbage(self) -> bytes:
        return b"\x00\x01 not json {"

    async def venue_fault(self, fault: FaultConfig) -> None:
        ts = self.hub.market.time_ms
        units = {
            "nan_level": '{"ask_price":NaN,"bid_price":1.0E8,"ask_size":0.1,"bid_size":0.1}',
            "negative_level": '{"ask_price":1.01E8,"bid_price":1.0E8,"ask_size":-0.1,"bid_size":0.1}',
            "crossed_book": '{"ask_price":1.0E8,"bid_price":1.01E8,"ask_size":0.1,"bid_size":0.1}',
        }
        if fault.kind in units:
            await self.conn.send(
                (
                    f'{{"type":"orderbook","code":"{UPBIT_BTC}","timestamp":{ts},"total_ask_size":0.1,'
                    f'"total_bid_size":0.1,"orderbook_units":[{units[fault.kind]}],'
                    f'"stream_type":"REALTIME","level":0}}'
                ).encode()
            )
        elif fault.kind == "error_frame":
            await self.conn.send(error_frame("INVALID_PARAM", "simulated error"))
            await trio.sleep(0.2)
            await self.conn.close(1000)

    async def keep_up(self) -> None:
        await self.up_started.wait()
        while True:
            await self.conn.send(b'{"status":"UP"}')
            await trio.sleep(UP_INTERVAL_S)

    async def idle_watchdog(self, timeout_s: float) -> None:
        while True:
            deadline = self.watched.last_traffic + timeout_s
            if trio.current_time() >= deadline:
                logger.bind(actor="sim").info(
                    "sim upbit: no frame either way for {:g} s, dropping the connection", timeout_s
                )
                await self.conn.abort()
                return
            await trio.sleep_until(deadline)


async def serve_upbit(
    hub: SimHub, host: str, port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async def handler(request: WsRequest) -> None:
        if request.path.split("?")[0] != "/websocket/v1":
            await request.reject(404)
            return
        connects = hub.upbit_connects.setdefault(request.client_host, RateWindow(hub.cfg.upbit_connects_per_s))
        if not connects.allow(trio.current_time()):
            logger.bind(actor="sim").warning("sim upbit: more than {} connects in a second; HTTP 429", connects.per_s)
            await request.reject(429, b'{"error":{"name":"too_many_requests","message":"Too many requests."}}')
            return
        conn = WatchedConn(await request.accept())
        with _Session(hub, conn) as session:
            await _run_session(session)

    async def _run_session(session: _Session) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.read, nursery.cancel_scope)
            nursery.start_soon(session.publish)
            nursery.start_soon(session.keep_up)
            nursery.start_soon(session.idle_watchdog, hub.cfg.upbit_idle_timeout_s)

    await serve_ws(handler, host, port, task_status=task_status)


# -- REST ------------------------------------------------------------------------------------------

MARKET_GROUP_PER_S = 10  # Upbit's quotation REST "market" group: requests a second per IP (MULTIPAIR.md §1)


def _remaining(rate: RateWindow, now: float) -> str:
    """Upbit's ``Remaining-Req`` header: the requests left in the market group this second."""
    used = sum(1 for t in rate.recent() if t > now - 1.0)
    return f"group=market; min=1800; sec={max(0, rate.per_s - used)}"


async def serve_upbit_rest(
    hub: SimHub, host: str, port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Upbit's quotation REST, the listing only: ``GET /v1/market/all[?isDetails=true]`` (``actors.sim.listings``),
    at most ``MARKET_GROUP_PER_S`` requests a second per client IP (more: HTTP 429, Upbit's answer past a limit)."""

    async def respond(target: str) -> tuple[int, dict[str, str], bytes]:
        now = trio.current_time()
        rate = hub.upbit_rest_rates.setdefault(client_host(), RateWindow(MARKET_GROUP_PER_S))
        allowed = rate.allow(now)
        headers = {"Remaining-Req": _remaining(rate, now)}
        if not allowed:
            return 429, headers, b'{"error":{"name":"too_many_requests","message":"Too many requests."}}'
        parts = urlsplit(target)
        if parts.path != "/v1/market/all":
            return 404, headers, b'{"error":{"name":"not_found","message":"Not found."}}'
        return 200, headers, listings.market_all(listings.catalogue_of(hub.market), parts.query)

    await serve_http(respond, host, port, task_status=task_status)
