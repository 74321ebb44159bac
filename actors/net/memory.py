"""An in-memory network: servers and clients in one process without sockets, so whole sessions run in
virtual time (pytest-trio's autojump clock). Only the byte transport changes: the WebSocket protocol
code is the library's own in both modes (``trio.testing.memory_stream_pair``), and HTTP goes through
httpx's ``MockTransport``."""

from __future__ import annotations

import errno
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httpx
import trio
import trio.testing
import trio_websocket as tw

from actors.net.failures import ConnectFailure, FailureKind
from actors.net.http import Responder
from actors.net.seam import use_network
from actors.net.ws import (
    SERVER_MAX_MESSAGE_SIZE,
    SERVER_MESSAGE_QUEUE_SIZE,
    WsConn,
    WsConnectError,
    WsLimits,
    open_ws_on_stream,
)


class MemoryNetwork:
    """Servers and clients in one process without sockets. Hosts are ignored; ports are ours."""

    HOST = "memory"

    def __init__(self) -> None:
        self._ws: dict[int, tuple[Callable[[tw.WebSocketRequest], Awaitable[None]], trio.Nursery]] = {}
        self._http: dict[int, Responder] = {}
        self._next_port = 40000

    def _port(self) -> int:
        self._next_port += 1
        return self._next_port

    def listen_ws(self, handle: Callable[[tw.WebSocketRequest], Awaitable[None]], nursery: trio.Nursery) -> int:
        port = self._port()
        self._ws[port] = (handle, nursery)
        return port

    def listen_http(self, respond: Responder) -> int:
        port = self._port()
        self._http[port] = respond
        return port

    @asynccontextmanager
    async def connect_ws(
        self, url: str, *, connect_timeout_s: float = 10.0, limits: WsLimits | None = None
    ) -> AsyncIterator[WsConn]:
        port = urlsplit(url).port or 0
        entry = self._ws.get(port)
        if entry is None:
            failure = ConnectFailure(
                FailureKind.REFUSED, f"connection refused by port {port} (memory network: nothing listens there)"
            )
            raise WsConnectError(f"cannot connect to {url}: {failure.text}", failure)
        handle, server_nursery = entry

        async def open_stream() -> trio.abc.Stream:
            client_stream, server_stream = trio.testing.memory_stream_pair()

            async def serve_one() -> None:
                request = await tw.wrap_server_stream(
                    server_nursery, server_stream, SERVER_MESSAGE_QUEUE_SIZE, SERVER_MAX_MESSAGE_SIZE
                )
                await handle(request)

            server_nursery.start_soon(serve_one)
            return client_stream

        async with open_ws_on_stream(url, open_stream, self.HOST, connect_timeout_s, limits) as conn:
            yield conn

    def http_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            respond = self._http.get(request.url.port or 0)
            if respond is None:
                refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused (memory network)")
                raise httpx.ConnectError("connection refused (memory network)", request=request) from refused
            target = request.url.raw_path.decode()
            status, headers, body = await respond(target)
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handle)


def memory_network() -> MemoryNetwork:
    """Route this task's (and its children's) connections over a fresh in-memory network."""
    network = MemoryNetwork()
    use_network(network)
    return network
