"""Binance Spot market streams and the REST depth endpoint, served from the simulated market.

PROTOCOLS.md §2.8:
- ``/ws/<stream>`` (bare payloads), ``/ws`` (+ SUBSCRIBE), ``/stream?streams=a/b`` (wrapped as
  ``{"stream":…,"data":…}``); text frames; lower-case stream names.
- ``<sym>@depth@100ms`` diffs every step with chained ids (``U = previous u + 1``), absolute
  quantities, 0 = delete, no empty frames; ``<sym>@depth`` merges ten steps; ``<sym>@depth{5,10,20}[@100ms]``
  partial books whose ``lastUpdateId`` is the latest diff's ``u``. Unknown but well-formed stream names
  are acknowledged and stay silent.
- ``<sym>@bookTicker`` on every change of the touch, within a step too: a step's diff spends one
  update id per level, in the order ``BinanceDiff`` documents, and each ticker carries the id after
  which the book shows it, so it agrees with a book kept from REST + diffs at that id. A step's
  tickers go out before its diff (they happened during it).
- After the ``overlap`` fault, and after every REST answer with ``binance_overlap_after_snapshot``,
  a connection's next diff overlaps the one before (``U`` below the previous ``u``: the two merged),
  as the real stream was seen doing after a snapshot; a client keeping the documented rule applies it.
- Control messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with
  ``{"result":…,"id":…}`` or ``{"error":{"code":…,"msg":…},"id":…}``; non-JSON closes with 1008;
  more than ``binance_ws_messages_per_s`` (5) client messages in a second closes with 1008 "Too many requests".
- At most ``binance_streams_per_connection`` (1024) streams on a connection: a SUBSCRIBE past it is refused whole
  with an error reply, a URL naming more is closed with 1008 (docs/simulator.md, the exchanges' limits).
- With ``[sim] coins = N`` every coin's symbol is served too: ``@depth@100ms`` and ``@bookTicker`` streams (any
  number on one connection), depth snapshots, and ``GET /api/v3/exchangeInfo`` (weight 20, ``actors.sim.listings``);
  a symbol listed there without a book (not TRADING, not quoted in USDT) answers an empty book.
- A ping every 20 s carrying the time in ms; no pong within 60 s closes with 1008 "Pong timeout".
- Connections are cut after ``max_connection_s`` (24 h).
- ``GET /api/v3/depth?symbol=&limit=`` (limit default 100, capped at 5000; the model's book is that
  deep), weighing 5, 25, 50, 250 up to 100, 500, 1000, 5000 levels (any other path 1); unknown
  symbol -> 400 ``{"code":-1121,"msg":"Invalid symbol."}``. Every answer carries ``X-MBX-USED-WEIGHT-1M``,
  the client IP's weight this minute; past ``binance_rest_weight_per_min`` a request gets 429 with
  ``Retry-After``, and a client that asks again before it a 418 ban (``actors.sim.limits``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import trio
from loguru import logger

from actors.core.venues.binance_weight import depth_weight
from actors.core.vocabulary import Venue
from actors.net.http import client_host, serve_http
from actors.net.ws import WsConn, WsRequest, serve_ws
from actors.sim import listings
from actors.sim.coin_market import CoinsMarket
from actors.sim.exchange import FaultTarget, MarketHolder, ServedBook, ServedMarket, SimHub
from actors.sim.limits import RateWindow
from actors.sim.model import BinanceDiff, Level, SimMarket, StepResult
from actors.sim.settings import FaultConfig

_STREAM_RE = re.compile(r"^[a-z0-9]+@[a-zA-Z0-9_@]+$")
_PARTIAL_RE = re.compile(r"^depth(5|10|20)(@100ms)?$")
SLOW_DEPTH_STEPS = 10  # @depth without @100ms: one frame a second
EXCHANGE_INFO_WEIGHT = 20


def _num(x: float) -> str:
    return f"{x:.8f}"


def _levels(levels: Iterable[tuple[float, float]]) -> str:
    return "[" + ",".join(f'["{_num(p)}","{_num(q)}"]' for p, q in levels) + "]"


def _merged(earlier: BinanceDiff, later: BinanceDiff) -> BinanceDiff:
    """One diff for two chained ones: the ids of both, each level at its later size."""
    bids = dict(earlier.bids)
    bids.update(later.bids)
    asks = dict(earlier.asks)
    asks.update(later.asks)
    return BinanceDiff(
        earlier.first_id, later.final_id, tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))
    )


def _book_ticker(symbol: str, update_id: int, bid: Level, ask: Level) -> str:
    return (
        f'{{"u":{update_id},"s":"{symbol}","b":"{_num(bid[0])}","B":"{_num(bid[1])}",'
        f'"a":"{_num(ask[0])}","A":"{_num(ask[1])}"}}'
    )


def diff_payload(symbol: str, time_ms: int, diff: BinanceDiff) -> str:
    """A depthUpdate event as the server writes it (without the combined stream's envelope)."""
    return (
        f'{{"e":"depthUpdate","E":{time_ms},"s":"{symbol}",'
        f'"U":{diff.first_id},"u":{diff.final_id},"b":{_levels(diff.bids)},"a":{_levels(diff.asks)}}}'
    )


class _Session(FaultTarget):
    venue = Venue.BINANCE

    def __init__(self, hub: SimHub, conn: WsConn, symbol: str, combined: bool, streams: list[str]) -> None:
        super().__init__(hub, conn)
        self.skip_next_diff = False
        self.overlap_next = False  # the next diff re-sends the one before it (overlap fault, or after a snapshot)
        self._last_diff: BinanceDiff | None = None  # the last one sent on depth@100ms
        self.symbol = symbol
        self.combined = combined
        self.streams: list[str] = []
        self._pending_slow: dict[str, BinanceDiff] = {}
        self._slow_count = 0
        self._last_touch: tuple[Level, Level] | None = None
        self._incoming = RateWindow(hub.cfg.binance_ws_messages_per_s)
        self._subscribed: set[str] = set()  # ``streams`` as a set: the many-coin steps look names up in it
        for s in streams:
            self._add(s)

    def _add(self, stream: str) -> None:
        if stream not in self._subscribed:
            self.streams.append(stream)
            self._subscribed.add(stream)

    def _remove(self, stream: str) -> None:
        if stream in self._subscribed:
            self.streams.remove(stream)
            self._subscribed.discard(stream)

    async def _emit(self, stream: str, payload: str) -> None:
        if self.combined:
            payload = f'{{"stream":"{stream}","data":{payload}}}'
        await self.conn.send(payload)

    # -- market data -----------------------------------------------------------------------------

    def _diff_payload(self, diff: BinanceDiff) -> str:
        return diff_payload(self.symbol, self.hub.market.time_ms, diff)

    async def on_step(self, changes: BinanceDiff | None, diff: BinanceDiff | None) -> None:
        """Send one step: ``changes`` is the step's diff (None: the book did not change), ``diff`` what
        the depth streams get of it (None: lost on the way)."""
        sym = self.symbol.lower()
        book = self.hub.market.books[self.symbol]
        ticker_stream = f"{sym}@bookTicker"
        if changes is not None and ticker_stream in self.streams:
            for update_id, bid, ask in self._touches(changes):
                await self._emit(ticker_stream, _book_ticker(self.symbol, update_id, bid, ask))
        slow_stream = f"{sym}@depth"
        if diff is not None and slow_stream in self.streams:
            prev = self._pending_slow.get("slow")
            self._pending_slow["slow"] = diff if prev is None else _merged(prev, diff)
        self._slow_count += 1
        merged_due = self._slow_count >= SLOW_DEPTH_STEPS
        if merged_due:
            self._slow_count = 0
        for stream in list(self.streams):
            name, _, kind = stream.partition("@")
            if name != sym:
                continue
            if kind == "depth@100ms" and diff is not None:
                await self._emit(stream, self._diff_payload(self._overlapping(diff)))
            elif kind == "depth" and merged_due and "slow" in self._pending_slow:
                await self._emit(stream, self._diff_payload(self._pending_slow.pop("slow")))
            elif (m := _PARTIAL_RE.match(kind)) and (m.group(2) or merged_due):
                bids, asks = book.top(int(m.group(1)))
                await self._emit(
                    stream,
                    f'{{"lastUpdateId":{self.hub.market.update_id},"bids":{_levels(bids)},"asks":{_levels(asks)}}}',
                )

    async def on_coins(self, diffs: tuple[tuple[str, BinanceDiff], ...]) -> None:
        """Send the other coins' step ([sim] coins): each subscribed symbol's tickers, then its diff."""
        subscribed, time_ms = self._subscribed, self.hub.market.time_ms
        for symbol, diff in diffs:
            sym = symbol.lower()
            ticker_stream = sym + "@bookTicker"
            if ticker_stream in subscribed:
                for update_id, bid, ask in diff.touches():
                    await self._emit(ticker_stream, _book_ticker(symbol, update_id, bid, ask))
            depth_stream = sym + "@depth@100ms"
            if depth_stream in subscribed:
                await self._emit(depth_stream, diff_payload(symbol, time_ms, diff))

    def _touches(self, changes: BinanceDiff) -> list[tuple[int, Level, Level]]:
        """The step's tickers: every change of the top within it, or (a recorded diff, whose order within
        is unknown) the top after it if it changed."""
        touches = changes.touches()
        if changes.walks is None:
            bids, asks = self.hub.market.books[self.symbol].top(1)
            if bids and asks and (bids[0], asks[0]) != self._last_touch:
                touches = [(self.hub.market.update_id, bids[0], asks[0])]
        if touches:
            self._last_touch = touches[-1][1], touches[-1][2]
        return touches

    def _overlapping(self, diff: BinanceDiff) -> BinanceDiff:
        """``diff``, or (once ``overlap_next`` is set) ``diff`` merged with the diff sent before it."""
        earlier, self._last_diff = self._last_diff, diff
        if self.overlap_next and earlier is not None and earlier.final_id + 1 == diff.first_id:
            self.overlap_next = False
            return _merged(earlier, diff)
        return diff

    async def publish(self) -> None:
        async def on_step(step: StepResult) -> None:
            changes = diff = step.binance_diff
            if diff is not None and self.skip_next_diff:
                self.skip_next_diff, diff = False, None  # lost on the way: the client sees a gap
            if not self.stalled:
                await self.on_step(changes, diff)
                if step.binance_diffs:
                    await self.on_coins(step.binance_diffs)
            await self.apply_faults()  # after this step's data, so it follows a consistent stream

        await self.hub.follow(on_step)
        await self.conn.abort()  # dropped as a slow consumer

    def garbage(self) -> str:
        return "\x00 not json {"

    async def venue_fault(self, fault: FaultConfig) -> None:
        market = self.hub.market
        stream = f"{self.symbol.lower()}@depth@100ms"
        bad = {"nan_level": '[["NaN","1.0"]]', "negative_level": '[["-1.00","1.0"]]'}
        if fault.kind in bad:  # a malformed diff that does not consume update ids
            await self._emit(
                stream,
                f'{{"e":"depthUpdate","E":{market.time_ms},"s":"{self.symbol}",'
                f'"U":{market.update_id},"u":{market.update_id},"b":{bad[fault.kind]},"a":[]}}',
            )
        elif fault.kind == "crossed_book":  # a well-formed diff that crosses the book
            if not isinstance(market, SimMarket):  # a replay's update ids are the recording's, not ours to consume
                raise NotImplementedError("the crossed_book fault needs the simulated market, not a replay")
            market.update_id += 1
            _, asks = market.books[self.symbol].top(1)
            crossing = [(asks[0][0] + 1.0, 1.0)]
            await self._emit(
                stream,
                f'{{"e":"depthUpdate","E":{market.time_ms},"s":"{self.symbol}",'
                f'"U":{market.update_id},"u":{market.update_id},"b":{_levels(crossing)},"a":[]}}',
            )
        elif fault.kind == "gap":
            self.skip_next_diff = True
        elif fault.kind == "overlap":
            self.overlap_next = True
        elif fault.kind == "shutdown":
            await self._emit("!serverShutdown", f'{{"e":"serverShutdown","E":{market.time_ms}}}')
            await trio.sleep(1.0)
            await self.conn.close(1000)

    # -- control ---------------------------------------------------------------------------------

    async def read(self) -> None:
        while True:
            message = await self.conn.receive()
            if not self._incoming.allow(trio.current_time()):
                await self.conn.close(1008, "Too many requests")
                return
            try:
                request = json.loads(message)
            except ValueError:
                await self.conn.close(1008, "Invalid request")
                return
            await self.conn.send(json.dumps(self.control(request), separators=(",", ":")))

    def control(self, request: object) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"error": {"code": 2, "msg": "Invalid request: expected an object"}, "id": None}
        rid = request.get("id")
        if not (rid is None or isinstance(rid, (int, str)) and not isinstance(rid, bool)):
            return {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None}
        method = request.get("method")
        params = request.get("params", [])
        if method is None:
            return {"error": {"code": 2, "msg": "Invalid request: missing field `method`"}, "id": rid}
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) and _STREAM_RE.match(p) for p in params):
                return {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": rid}
            limit = self.hub.cfg.binance_streams_per_connection
            if method == "SUBSCRIBE" and len(self._subscribed | set(params)) > limit:
                return {"error": {"code": 2, "msg": f"Invalid request: more than {limit} streams"}, "id": rid}
            for p in params:
                if method == "SUBSCRIBE":
                    self._add(p)
                else:
                    self._remove(p)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(self.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or params[0] != "combined":
                return {"error": {"code": 0, "msg": "Unknown property"}, "id": rid}
            if method == "GET_PROPERTY":
                return {"result": self.combined, "id": rid}
            if len(params) < 2 or not isinstance(params[1], bool):
                return {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": rid}
            self.combined = params[1]
            return {"result": None, "id": rid}
        return {
            "error": {
                "code": 2,
                "msg": f"Invalid request: unknown variant `{method}`, expected one of "
                "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
            },
            "id": rid,
        }

    async def pinger(self, interval_s: float, pong_timeout_s: float) -> None:
        while True:
            await trio.sleep(interval_s)
            with trio.move_on_after(pong_timeout_s) as scope:
                await self.conn.ping(str(self.hub.market.time_ms).encode())
            if scope.cancelled_caught:
                await self.conn.close(1008, "Pong timeout")
                return


def stream_route(path: str) -> tuple[bool, list[str]] | None:
    """(combined, streams) of a WebSocket path: /stream?streams=a/b, /ws/a/b or /ws; None for another path."""
    parts = urlsplit(path)
    if parts.path == "/stream":
        streams = parse_qs(parts.query).get("streams", [""])[0]
        return True, [s for s in streams.split("/") if s]
    if parts.path == "/ws":
        return False, []
    if parts.path.startswith("/ws/"):
        return False, [s for s in parts.path[4:].split("/") if s]
    return None


async def serve_binance_ws(
    hub: SimHub, host: str, port: int, symbol: str, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    cfg = hub.cfg

    async def handler(request: WsRequest) -> None:
        route = stream_route(request.path)
        if route is None:
            await request.reject(404)
            return
        conn = await request.accept()
        if len(set(route[1])) > cfg.binance_streams_per_connection:
            await conn.close(1008, f"Too many streams: at most {cfg.binance_streams_per_connection}")
            return
        with _Session(hub, conn, symbol, *route) as session:
            await _run_session(session)

    async def _run_session(session: _Session) -> None:
        conn = session.conn
        async with trio.open_nursery() as nursery:

            async def until_done(fn: Callable[..., Awaitable[None]], *args: float) -> None:
                await fn(*args)
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_done, session.read)
            nursery.start_soon(until_done, session.publish)
            nursery.start_soon(until_done, session.pinger, cfg.binance_ping_interval_s, cfg.binance_pong_timeout_s)
            await trio.sleep(cfg.max_connection_s)
            logger.bind(actor="sim").info("sim binance: connection reached {:g} s, closing it", cfg.max_connection_s)
            await conn.close(1000)
            nursery.cancel_scope.cancel()

    await serve_ws(handler, host, port, task_status=task_status)


# -- REST ------------------------------------------------------------------------------------------


def request_weight(target: str) -> int:
    """A request's weight: a depth snapshot's by its limit (default 100, capped at 5000), anything else 1."""
    parts = urlsplit(target)
    if parts.path == "/api/v3/exchangeInfo":
        return EXCHANGE_INFO_WEIGHT
    if parts.path != "/api/v3/depth":
        return 1
    limit = parse_qs(parts.query).get("limit", ["100"])[0]
    return depth_weight(min(int(limit), 5000)) if limit.isdigit() else 1


def _refusal_body(status: int, limit: int) -> bytes:
    if status == 429:
        return (
            f'{{"code":-1003,"msg":"Too much request weight used; current limit is {limit} request weight per '
            f'1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}}'
        ).encode()
    return (
        b'{"code":-1003,"msg":"Way too much request weight used; IP banned. '
        b'Please use WebSocket Streams for live updates to avoid bans."}'
    )


def _book(market: ServedMarket, symbol: str, requested: str) -> tuple[ServedBook | None, int]:
    """The book a depth request names, and its last update id: the served symbol's, or another coin's ([sim]
    coins); (None, 0) for any other name (listed without a book, or unknown)."""
    if requested == symbol:
        return market.books[symbol], market.update_id
    coins = market.coins if isinstance(market, CoinsMarket) else None
    if coins is not None and requested in coins.binance_books:
        return coins.binance_books[requested], coins.update_ids[requested]
    return None, 0


def rest_response(
    hub: MarketHolder, symbol: str, target: str, weight_per_min: int = 6_000
) -> tuple[int, dict[str, str], bytes]:
    """Answer one REST request: (status, headers, body); ``weight_per_min``: the limit exchangeInfo states."""
    parts = urlsplit(target)
    cat = listings.catalogue_of(hub.market)
    if parts.path == "/api/v3/exchangeInfo":
        status, body = listings.exchange_info(cat, symbol, parts.query, hub.market.time_ms, weight_per_min)
        return status, {}, body
    if parts.path != "/api/v3/depth":
        return 404, {}, b'{"code":-1,"msg":"Not found."}'
    query = parse_qs(parts.query)
    requested = query.get("symbol", [""])[0]
    if not requested:
        return (
            400,
            {},
            (b'{"code":-1102,"msg":"Mandatory parameter \'symbol\' was not sent, was empty/null, or malformed."}'),
        )
    book, update_id = _book(hub.market, symbol, requested)
    if book is None and requested not in listings.listed_symbols(cat, symbol):
        return 400, {}, listings.INVALID_SYMBOL
    try:
        limit = min(int(query.get("limit", ["100"])[0]), 5000)
    except ValueError:
        return 400, {}, b'{"code":-1100,"msg":"Illegal characters found in parameter \'limit\'."}'
    bids, asks = ([], []) if book is None else book.top(max(limit, 1))
    body = (f'{{"lastUpdateId":{update_id},"bids":{_levels(bids)},"asks":{_levels(asks)}}}').encode()
    return 200, {"X-MBX-USED-WEIGHT-1M": str(depth_weight(limit))}, body


async def serve_binance_rest(
    hub: SimHub, host: str, port: int, symbol: str, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async def respond(target: str) -> tuple[int, dict[str, str], bytes]:
        now = trio.current_time()
        limits = hub.rest_limiter.check(client_host(), request_weight(target), now)
        if limits.status is not None:
            return limits.status, limits.headers, _refusal_body(limits.status, hub.rest_limiter.weight_per_min)
        answer = await _answer(target, now)
        return answer[0], {**answer[1], **limits.headers}, answer[2]

    async def _answer(target: str, now: float) -> tuple[int, dict[str, str], bytes]:
        if now < hub.rest_fail_until:
            return 500, {}, b'{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}'
        if now < hub.rest_slow_until:
            await trio.sleep_until(hub.rest_slow_until)
        await hub.wait_book()
        answer = rest_response(hub, symbol, target, hub.cfg.binance_rest_weight_per_min)
        if answer[0] == 200 and hub.cfg.binance_overlap_after_snapshot:
            for session in hub.targets[Venue.BINANCE]:  # the snapshot's client is one of them; the others do not mind
                if isinstance(session, _Session):
                    session.overlap_next = True
        return answer

    await serve_http(respond, host, port, task_status=task_status)
