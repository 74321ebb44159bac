"""The replay's fast path: recorded frames handed to the feeds at the network seam.

No exchange servers and no WebSocket framing run: ``DirectReplay`` stands in for the network
(``actors.net.seam``), so each feed's ``open_ws`` and REST client talk to it, and the feeds decode,
sync and book the frames with their own code, as they do live. What differs from serving the replay
through the embedded exchange (``ReplayHub``), and why it is faster:

- a recorded frame is handed on as it was recorded (bytes for bytes), not decoded and re-encoded;
- a synthesised book (the venue a recording lacks) is encoded once per subscriber, as the exchange's
  servers encode it (``orderbook_frame``, ``diff_payload``);
- the Binance REST depth request is answered from the replayed book, as the exchange answers it.
  When both venues are recorded the market keeps its books only until that first answer (then it
  decodes no recorded frame at all), so a later request (after a gap in the recording, or a killed
  feed) is answered by the recording's next REST snapshot, as recorded;
- Binance serves the ``depth@100ms`` stream only, Upbit order books only; no pings, faults or
  status frames (faults need the exchange: ``replay.via = "exchange"``).

Each connection keeps the byte budget the feed asked for (``WsLimits``), as the WebSocket library does
for a socket: the frames handed out and not yet read take at most ``queue_bytes`` (the replay waits for
the feed meanwhile: its read-ahead), and a frame over ``max_message_bytes`` ends the connection as a
1009 close would (reconnect cause ``overflow``).

The pace (``ReplayPacer``) is the same as through the exchange: the replay starts once both venues
have a client, and every step is handed out at its recorded time, so both ways give the same fill
events for the same recording and seed (tests/actors/test_replay_direct.py).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator
from urllib.parse import urlsplit

import httpx
import trio

from actors.core.venues import upbit
from actors.core.vocabulary import Venue
from actors.net.ws import MESSAGE_TOO_BIG, WsClosed, WsLimits
from actors.sim.binance_server import diff_payload, rest_response, stream_route
from actors.sim.exchange import SimEndpoints
from actors.sim.model import StepResult
from actors.sim.recordings import Kind, Recorded
from actors.sim.replay import ReplayMarket, ReplayPacer
from actors.sim.upbit_server import SubscribeError, Subscription, error_frame, orderbook_frame, parse_subscription

HOST = "replay.direct"
ENDPOINTS = SimEndpoints(f"ws://{HOST}/upbit/websocket/v1", f"ws://{HOST}/binance", f"http://{HOST}")
QUEUE_FRAMES = 256  # per connection: frames handed out and not yet read, at most (and at most queue_bytes)


class _Conn:
    """One feed's connection: the reading side of a WsConn, fed by the replay."""

    def __init__(self, venue: Venue, limits: WsLimits | None = None) -> None:
        self.venue = venue
        self.limits = limits if limits is not None else WsLimits()
        self._send, self._receive = trio.open_memory_channel[bytes | str](QUEUE_FRAMES)
        self._queued_bytes = 0
        self._room = trio.Event()  # set when a frame is read (bytes left the queue)
        self._close: tuple[int, str] = (1000, "the replay closed the connection")
        self.upbit_sub = Subscription({})
        self.depth_stream = False  # Binance: subscribed to <symbol>@depth@100ms
        self.combined = True

    async def put(self, frame: bytes | str) -> None:
        """Hand ``frame`` to the feed once the frames it has not read leave room for it (an empty queue takes
        any frame up to the message limit); a frame over the limit ends the connection (1009)."""
        size = len(frame)
        if size > self.limits.max_message_bytes:
            self._close = (MESSAGE_TOO_BIG, f"Exceeded maximum message size: {self.limits.max_message_bytes} bytes")
            self.end()
            return
        while self._queued_bytes and self._queued_bytes + size > self.limits.queue_bytes:
            self._room = trio.Event()
            await self._room.wait()
        self._queued_bytes += size  # before the send: the feed may read it before the send returns
        try:
            await self._send.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._queued_bytes -= size  # the feed has gone: its frames go nowhere, as on a dropped socket

    def _taken(self, frame: bytes | str) -> bytes | str:
        self._queued_bytes -= len(frame)
        self._room.set()
        return frame

    def end(self) -> None:
        self._send.close()
        self._receive.close()
        self._room.set()  # a put waiting for room sees the closed channel

    def _closed(self) -> WsClosed:
        return WsClosed(*self._close, self.limits)

    async def receive(self) -> bytes | str:
        try:
            return self._taken(await self._receive.receive())
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed() from None

    def receive_nowait(self) -> bytes | str | None:
        try:
            return self._taken(self._receive.receive_nowait())
        except trio.WouldBlock:
            return None
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed() from None

    async def send(self, message: bytes | str) -> None:
        await trio.lowlevel.checkpoint()  # the feed's subscriptions and keep-alives (handled by the replay)

    async def ping(self, payload: bytes | None = None) -> None:
        await trio.lowlevel.checkpoint()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.end()

    async def abort(self) -> None:
        self.end()


class _UpbitConn(_Conn):
    def __init__(self, replay: DirectReplay, limits: WsLimits | None) -> None:
        super().__init__(Venue.UPBIT, limits)
        self._replay = replay

    async def send(self, message: bytes | str) -> None:
        await trio.lowlevel.checkpoint()
        text = message.decode() if isinstance(message, bytes) else message
        if text == upbit.PING:
            return
        try:
            self.upbit_sub = parse_subscription(text, self._replay.market.upbit_codes)
        except SubscribeError as exc:
            await self.put(error_frame(exc.name, exc.message))
            return
        if not self.upbit_sub.only_realtime:
            for code, units in self.upbit_sub.units.items():
                await self.put(self._replay.upbit_snapshot(code, units, self.upbit_sub.fmt))


class DirectReplay:
    """A ``ReplayMarket`` served at the network seam: ``connect_ws`` and ``http_transport`` for the feeds,
    ``run_clock`` for the pace."""

    def __init__(self, market: ReplayMarket, pacer: ReplayPacer) -> None:
        self.market = market  # also what rest_response and orderbook_frame read (the hub's shape)
        self.pacer = pacer
        self._conns: dict[Venue, set[_Conn]] = {Venue.UPBIT: set(), Venue.BINANCE: set()}
        self._last_upbit: dict[str, bytes | str] = {}  # recorded code -> its latest frame as recorded
        self._snapshot = trio.Event()  # set when the recording's next REST snapshot is served
        self._snapshot_body: bytes = b""

    # -- the network seam ------------------------------------------------------------------------

    @asynccontextmanager
    async def connect_ws(
        self, url: str, *, connect_timeout_s: float = 10.0, limits: WsLimits | None = None
    ) -> AsyncIterator[_Conn]:
        parts = urlsplit(url)
        conn: _Conn
        if parts.path.startswith("/upbit"):
            conn = _UpbitConn(self, limits)
        else:
            conn = _Conn(Venue.BINANCE, limits)
            route = stream_route(parts.path[len("/binance") :] + (f"?{parts.query}" if parts.query else ""))
            combined, streams = route if route is not None else (True, [])
            conn.combined = combined
            conn.depth_stream = f"{self.market.binance_symbol.lower()}@depth@100ms" in streams
        await trio.lowlevel.checkpoint()
        self._conns[conn.venue].add(conn)
        try:
            yield conn
        finally:
            self._conns[conn.venue].discard(conn)
            conn.end()

    def http_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            status, headers, body = await self._rest(request.url.raw_path.decode())
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handle)

    async def _rest(self, target: str) -> tuple[int, dict[str, str], bytes]:
        market = self.market
        if market.keeps_books:
            await self.pacer.wait_book()
            answer = rest_response(self, market.binance_symbol, target)
            if answer[0] == 200:
                market.stop_keeping_books()
            return answer
        await self._snapshot.wait()  # this market keeps no book: the recording's next snapshot answers
        return 200, {}, self._snapshot_body

    # -- serving ---------------------------------------------------------------------------------

    def upbit_snapshot(self, code: str, units: int, fmt: str) -> bytes | str:
        """The first frame of a code after a subscription: its latest recorded frame, or the book."""
        recorded = self._last_upbit.get(code)
        return recorded if recorded is not None else orderbook_frame(self, code, units, True, fmt)

    async def run_clock(self) -> None:
        await self.pacer.run(lambda: all(self._conns.values()), self._deliver)

    async def _deliver(self, recorded: Recorded | None, result: StepResult | None) -> None:
        if recorded is not None:
            await self._deliver_recorded(recorded)
        elif result is not None:
            await self._deliver_synthesised(result)

    async def _deliver_recorded(self, r: Recorded) -> None:
        if r.kind is Kind.BOOK:
            self._last_upbit[r.symbol] = r.frame
            for conn in list(self._conns[Venue.UPBIT]):
                if r.symbol in conn.upbit_sub.units and not conn.upbit_sub.only_snapshot:
                    await conn.put(r.frame)
        elif r.kind is Kind.DIFF:
            for conn in list(self._conns[Venue.BINANCE]):
                if conn.depth_stream:
                    await conn.put(r.frame)
        else:
            body = r.frame.encode() if isinstance(r.frame, str) else r.frame
            self._snapshot_body = body
            self._snapshot.set()
            self._snapshot = trio.Event()

    async def _deliver_synthesised(self, result: StepResult) -> None:
        for code in result.upbit_changed:
            for conn in list(self._conns[Venue.UPBIT]):
                sub = conn.upbit_sub
                units = sub.units.get(code)
                if units is not None and not sub.only_snapshot:
                    await conn.put(orderbook_frame(self, code, units, False, sub.fmt))
        diff = result.binance_diff
        if diff is not None:
            symbol = self.market.binance_symbol
            payload = diff_payload(symbol, self.market.time_ms, diff)
            framed = f'{{"stream":"{symbol.lower()}@depth@100ms","data":{payload}}}'
            for conn in list(self._conns[Venue.BINANCE]):
                if conn.depth_stream:
                    await conn.put(framed if conn.combined else payload)
