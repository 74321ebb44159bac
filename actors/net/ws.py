"""WebSockets: the only module that imports trio_websocket.

- Maps the library's errors to ours (``WsConnectError``, ``WsClosed``) with a restart cause each,
  so feeds and supervisors never see library types.
- Works around known library traps in one place: the client's message queue (the library's default
  of 1 makes a slow reader stop answering pings) and its message limit are set from a byte budget
  (``WsLimits``: the library counts messages, so the queue holds ``queue_bytes // max_message_bytes``
  of them); a message over the limit closes the connection with 1009, which we report as an
  ``overflow``; the whole connect, handshake included, is one deadline (the library's own timeout
  can wait forever for its reader task); and the client's TCP stream is closed on every way out
  (trio-websocket 0.12.2 can leave it open when the server closes first; tests/actors/test_ws.py pins
  that).
- Server helpers for the embedded exchange: serve WebSockets, accept/reject, abrupt drop without a
  close frame.
"""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import attrs
import trio
import trio_websocket as tw

from actors.core.budget import MIB, in_words
from actors.core.vocabulary import FeedFailure, RestartCause
from actors.net.failures import ConnectFailure, FailureKind, connect_failure
from actors.net.seam import current_network
from supervision import sole_exception

MESSAGE_TOO_BIG = 1009  # RFC 6455 close code: a message over the receiver's limit
# The embedded exchange's servers: what a client may send them (subscriptions, pings) is small
SERVER_MAX_MESSAGE_SIZE = 1 * MIB
SERVER_MESSAGE_QUEUE_SIZE = 16


@attrs.frozen
class WsLimits:
    """What one connection may make us hold (docs/reliability.md): a message larger than ``max_message_bytes``
    closes it (1009, reconnect cause ``overflow``); messages received and not yet read take at most
    ``queue_bytes`` (the library counts messages: ``queue_messages`` of the largest size). ``key`` is the
    config table they come from, for messages (``feeds.binance``)."""

    max_message_bytes: int = 1 * MIB
    queue_bytes: int = 16 * MIB
    key: str = ""

    @property
    def queue_messages(self) -> int:
        return max(1, self.queue_bytes // self.max_message_bytes)


# On exit we send a close frame and wait this long for the reply. When the caller was cancelled, its
# reader task is gone and no reply can be read, so this is the whole cost of a cancelled close.
CLOSE_TIMEOUT_S = 0.5


class WsConnectError(FeedFailure, ConnectionError):
    """Could not open the WebSocket (refused, DNS, TLS, handshake rejected, timeout); ``failure`` names
    the cause in words (``actors.net.failures``)."""

    cause = RestartCause.CONNECT

    def __init__(self, message: str, failure: ConnectFailure | None = None) -> None:
        super().__init__(message)
        self.failure = failure if failure is not None else ConnectFailure(FailureKind.OTHER, message)


class WsClosed(FeedFailure, ConnectionError):
    """The connection ended: a close frame ("closed"), an abrupt loss ("dropped", code 1006), or a message over
    the size limit ("overflow", code 1009: ours when we received it, the server's when it refused ours)."""

    def __init__(self, code: int | None, reason: str | None, limits: WsLimits | None = None) -> None:
        if code == MESSAGE_TOO_BIG:
            limit = (
                f" over {in_words(limits.max_message_bytes)} ({limits.key}.max_message_bytes)"
                if limits is not None and limits.key
                else ""
            )
            text, cause = (
                f"connection closed: a message{limit} was too big (code 1009, {reason!r})",
                RestartCause.OVERFLOW,
            )
        else:
            text = f"connection closed: code {code}, reason {reason!r}"
            cause = RestartCause.DROPPED if code in (None, 1006) else RestartCause.CLOSED
        super().__init__(text, cause)
        self.code = code
        self.reason = reason


def _reason(exc: BaseException) -> str:
    """The most informative text of an error chain (the library's own errors can be empty)."""
    parts: list[str] = []
    link: BaseException | None = exc
    while link is not None and len(parts) < 3:
        text = str(link)
        parts.append(f"{type(link).__name__}: {text}" if text else type(link).__name__)
        link = link.__cause__ or link.__context__
    return " <- ".join(parts)


def _connect_error(url: str, exc: BaseException) -> WsConnectError:
    """A failed connect as our error, its cause named: "cannot connect to wss://...: name resolution failed
    for api.upbit.com (Name or service not known)"."""
    if isinstance(exc, tw.ConnectionRejected):
        failure = ConnectFailure(
            FailureKind.REJECTED, f"the server refused the WebSocket upgrade (HTTP {exc.status_code})"
        )
    else:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        failure = connect_failure(exc, parts.hostname or "", port, _reason(exc))
    return WsConnectError(f"cannot connect to {url}: {failure.text}", failure)


def _closed(exc: tw.ConnectionClosed, limits: WsLimits | None = None) -> WsClosed:
    reason = exc.reason
    return WsClosed(getattr(reason, "code", None), getattr(reason, "reason", None), limits)


class WsConn:
    """A connected WebSocket with our error types."""

    def __init__(self, ws: tw.WebSocketConnection, limits: WsLimits | None = None) -> None:
        self._ws = ws
        self._limits = limits

    async def receive(self) -> bytes | str:
        try:
            return await self._ws.get_message()
        except tw.ConnectionClosed as exc:
            raise _closed(exc, self._limits) from None

    def receive_nowait(self) -> bytes | str | None:
        """The next message if one is already queued, else None; never blocks and is not a checkpoint.

        trio-websocket has no public non-blocking read: this reads the message queue that
        ``get_message`` reads, with the same end-of-connection mapping (WsClosed)."""
        try:
            return self._ws._recv_channel.receive_nowait()
        except trio.WouldBlock:
            return None
        except (trio.ClosedResourceError, trio.EndOfChannel):
            reason = self._ws._close_reason
            raise WsClosed(getattr(reason, "code", None), getattr(reason, "reason", None), self._limits) from None

    async def send(self, message: bytes | str) -> None:
        try:
            await self._ws.send_message(message)
        except tw.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a protocol ping and wait for its pong."""
        try:
            await self._ws.ping(payload)
        except tw.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self._ws.aclose(code, reason)

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (the peer sees 1006)."""
        await self._ws._stream.aclose()


@asynccontextmanager
async def open_ws(
    url: str, *, connect_timeout_s: float = 10.0, limits: WsLimits | None = None
) -> AsyncIterator[WsConn]:
    """Connect to ``url``, the TCP connect, TLS and the opening handshake included, within
    ``connect_timeout_s``; on exit close the connection and its TCP stream. ``limits``: what the connection
    may make us hold (default ``WsLimits()``)."""
    limits = limits if limits is not None else WsLimits()
    network = current_network()
    if network is not None:
        async with network.connect_ws(url, connect_timeout_s=connect_timeout_s, limits=limits) as conn:
            yield conn
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)

    async def open_stream() -> trio.abc.Stream:
        if secure:
            return await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=ssl.create_default_context(), https_compatible=True
            )
        return await trio.open_tcp_stream(host, port)

    host_header = host if port in (80, 443) else f"{host}:{port}"
    async with open_ws_on_stream(url, open_stream, host_header, connect_timeout_s, limits) as conn:
        yield conn


@asynccontextmanager
async def open_ws_on_stream(
    url: str,
    open_stream: Callable[[], Awaitable[trio.abc.Stream]],
    host: str,
    timeout_s: float,
    limits: WsLimits | None = None,
) -> AsyncIterator[WsConn]:
    """A client connection on a stream we own, its reader task in a nursery we own.

    trio-websocket's ``open_websocket_url(connect_timeout=...)`` raises its timeout and then waits for its
    own reader task, which a server that accepted TCP and never answers the handshake keeps blocked
    forever; and a failed connect can leave its socket open. Here the whole connect is one deadline that
    cancels the reader with it, and the stream is closed on every way out."""
    limits = limits if limits is not None else WsLimits()
    parts = urlsplit(url)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream | None = None
    try:
        async with trio.open_nursery() as nursery:
            ws = None
            with trio.move_on_after(timeout_s) as deadline:
                try:
                    stream = await open_stream()
                    # The ignore: trio-websocket annotates `stream` as SocketStream | SSLStream, but it wraps any
                    # trio Stream (as wrap_server_stream's annotation says); the memory network relies on that.
                    ws = await tw.wrap_client_stream(
                        nursery,
                        stream,  # type: ignore[arg-type]
                        host,
                        resource,
                        message_queue_size=limits.queue_messages,
                        max_message_size=limits.max_message_bytes,
                    )
                except (tw.HandshakeError, OSError) as exc:
                    raise _connect_error(url, exc) from None
            if ws is None or deadline.cancelled_caught:
                if stream is None:  # the TCP connect itself (or the name lookup) did not finish
                    failure = ConnectFailure(FailureKind.TIMEOUT, f"timed out: no connection within {timeout_s:g} s")
                else:
                    failure = ConnectFailure(FailureKind.NO_HANDSHAKE, f"no WebSocket handshake within {timeout_s:g} s")
                raise WsConnectError(f"cannot connect to {url}: {failure.text}", failure)
            try:
                yield WsConn(ws, limits)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _one_error(url, group, limits) from None
    finally:
        if stream is not None:
            with trio.CancelScope(shield=True):
                await stream.aclose()


def _one_error(url: str, group: BaseExceptionGroup, limits: WsLimits | None = None) -> BaseException:
    """The one exception a caller should see for a client nursery's group.

    The reader task reports a rejected handshake (``ConnectionRejected``) and ends quietly otherwise, so a
    lone ``Exception`` came from the caller's body and is raised as the socket would raise it; anything
    else (two errors, a ``Cancelled`` of an outer scope) stays a group."""
    rejected = group.subgroup(tw.HandshakeError)
    if rejected is not None:
        return _connect_error(url, rejected.exceptions[0])
    leaf = sole_exception(group)
    if isinstance(leaf, Exception):
        return _closed(leaf, limits) if isinstance(leaf, tw.ConnectionClosed) else leaf
    return group


Handler = Callable[["WsRequest"], Awaitable[None]]


class WsRequest:
    """An incoming WebSocket upgrade request on one of our servers."""

    def __init__(self, request: tw.WebSocketRequest) -> None:
        self._request = request

    @property
    def path(self) -> str:
        return self._request.path

    @property
    def client_host(self) -> str:
        """The client's address ("memory" over the in-memory network, where streams have none)."""
        remote = self._request.remote
        return str(remote.address) if isinstance(remote, tw.Endpoint) else "memory"

    async def accept(self) -> WsConn:
        return WsConn(await self._request.accept())

    async def reject(self, status: int, body: bytes = b"") -> None:
        await self._request.reject(status, body=body)


async def serve_ws(
    handler: Handler, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve WebSockets on host:port (0 = ephemeral); ``started()`` reports the bound port."""

    async def _handle(request: tw.WebSocketRequest) -> None:
        try:
            await handler(WsRequest(request))
        except* (tw.ConnectionClosed, WsClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # a client going away is not a server error

    async def _serve(task_status: trio.TaskStatus[tw.WebSocketServer] = trio.TASK_STATUS_IGNORED) -> None:
        await tw.serve_websocket(
            _handle,
            host,
            port,
            ssl_context=None,
            max_message_size=SERVER_MAX_MESSAGE_SIZE,
            message_queue_size=SERVER_MESSAGE_QUEUE_SIZE,
            task_status=task_status,
        )

    network = current_network()
    if network is not None:
        async with trio.open_nursery() as nursery:
            task_status.started(network.listen_ws(_handle, nursery))
            await trio.sleep_forever()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(_serve)
        task_status.started(server.port)


class WatchedConn(WsConn):
    """A connection that notes when it last carried a frame either way (the simulator's Upbit idle rule).

    Sends are ours to see. Received frames include the pings, pongs and close frames that trio-websocket
    handles itself and never hands us, and it offers no hook for them: this wraps the protocol object its
    reader task feeds every received chunk to (trio-websocket 0.12.2: ``_wsproto.receive_data``, looked up
    on each chunk). Were it renamed, every simulated Upbit connection would fail at once, and
    tests/actors/test_sim_protocol.py with them."""

    def __init__(self, conn: WsConn) -> None:
        super().__init__(conn._ws)
        self.last_traffic = trio.current_time()
        protocol = self._ws._wsproto
        receive_data = protocol.receive_data

        def receive_data_noted(data: bytes | None) -> None:
            self.last_traffic = trio.current_time()
            receive_data(data)

        protocol.receive_data = receive_data_noted  # type: ignore[method-assign]

    async def send(self, message: bytes | str) -> None:
        await super().send(message)
        self.last_traffic = trio.current_time()
