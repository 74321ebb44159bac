"""HTTP: the client the Binance feed fetches REST snapshots with, and a minimal HTTP/1.1 server (h11)
for the simulator's REST endpoint; both over the in-memory network when one is in use."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Awaitable, Callable

import h11
import httpx
import trio

from actors.net.seam import current_network

# the address of the client a server's handler is answering (a limit per IP reads it); "memory" in-memory
_client_host: ContextVar[str] = ContextVar("client_host", default="memory")
Responder = Callable[[str], Awaitable[tuple[int, dict[str, str], bytes]]]  # target -> (status, headers, body)


async def _serve_http_stream(stream: trio.abc.Stream, respond: Responder) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return
            conn.receive_data(bytes(data))  # trio may hand us a bytearray; h11 is typed for bytes
        elif isinstance(event, h11.Request):
            status, headers, body = await respond(event.target.decode())
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=list(headers.items()))))
            await stream.send_all(conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        elif event is h11.PAUSED and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()  # keep-alive
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return


async def serve_http(
    respond: Responder, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve GET requests with ``respond``; ``started()`` reports the bound port."""
    network = current_network()
    if network is not None:
        task_status.started(network.listen_http(respond))
        await trio.sleep_forever()
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def handle(stream: trio.SocketStream) -> None:
        _client_host.set(str(stream.socket.getpeername()[0]))  # this connection's task only
        async with stream:
            try:
                await _serve_http_stream(stream, respond)
            except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def client_host() -> str:
    """The address of the client the current request came from ("memory" over the in-memory network)."""
    return _client_host.get()


def http_client(base_url: str, timeout_s: float, read_timeout_s: float | None = None) -> httpx.AsyncClient:
    """An HTTP client for ``base_url`` (over the in-memory network when one is active): connections within
    ``timeout_s``, each read and write within ``read_timeout_s`` (default ``timeout_s``). These are httpx's
    per-operation timeouts; a whole request's deadline is the caller's (a trickling body resets them)."""
    network = current_network()
    transport = None if network is None else network.http_transport()
    timeout = httpx.Timeout(timeout_s if read_timeout_s is None else read_timeout_s, connect=timeout_s)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
