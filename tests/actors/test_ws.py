"""The WebSocket seam over real loopback: error mapping, and canaries for library behaviour we rely on."""

from functools import partial

import pytest
import trio
import trio_websocket as tw

from actors.net.ws import WsClosed, WsConnectError, open_ws, serve_ws


async def _closing_server(nursery) -> int:
    async def handler(request):
        conn = await request.accept()
        await conn.close(1000)

    return await nursery.start(serve_ws, handler, "127.0.0.1", 0)


async def test_canary_trio_websocket_leaves_the_client_socket_open_when_the_server_closes_first():
    """If this fails after an upgrade, the library fixed the leak: drop the workaround in open_ws."""
    async with trio.open_nursery() as nursery:
        port = await _closing_server(nursery)
        async with tw.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
            with pytest.raises(tw.ConnectionClosed):
                await ws.get_message()
        leaked = ws._stream.socket.fileno() != -1
        await ws._stream.aclose()
        assert leaked
        nursery.cancel_scope.cancel()


async def test_open_ws_closes_the_socket_and_maps_the_close():
    async with trio.open_nursery() as nursery:
        port = await _closing_server(nursery)
        with pytest.raises(WsClosed) as info:
            async with open_ws(f"ws://127.0.0.1:{port}/") as conn:
                await conn.receive()
        assert info.value.code == 1000 and info.value.restart_cause == "closed"
        assert conn._ws._stream.socket.fileno() == -1
        nursery.cancel_scope.cancel()


async def test_abrupt_drop_is_reported_as_dropped():
    async def handler(request):
        conn = await request.accept()
        await conn.abort()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ws, handler, "127.0.0.1", 0)
        with pytest.raises(WsClosed) as info:
            async with open_ws(f"ws://127.0.0.1:{port}/") as conn:
                await conn.receive()
        assert info.value.restart_cause == "dropped"
        nursery.cancel_scope.cancel()


async def test_connect_errors_are_mapped():
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        await listeners[0].aclose()  # nothing listens there now
        with pytest.raises(WsConnectError, match="cannot connect"):
            async with open_ws(f"ws://127.0.0.1:{port}/", connect_timeout_s=2):
                pass


async def test_receive_nowait_reads_what_is_queued_without_blocking_then_maps_the_close():
    async def handler(request):
        conn = await request.accept()
        for i in range(3):
            await conn.send(f"m{i}")
        await conn.close(1000)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ws, handler, "127.0.0.1", 0)
        with trio.fail_after(10):
            async with open_ws(f"ws://127.0.0.1:{port}/") as conn:
                got = [await conn.receive()]
                while len(got) < 3:
                    message = conn.receive_nowait()
                    if message is None:
                        await trio.sleep(0.01)  # not arrived yet
                    else:
                        got.append(message)
                assert got == ["m0", "m1", "m2"]
                while True:  # after the queued messages: the close, as receive() reports it
                    try:
                        if conn.receive_nowait() is None:
                            await trio.sleep(0.01)
                    except WsClosed as exc:
                        assert exc.code == 1000
                        break
        nursery.cancel_scope.cancel()


async def test_a_server_that_never_answers_the_handshake_is_abandoned_at_the_connect_deadline():
    """It accepts TCP and reads the upgrade request but never answers: trio-websocket's own connect_timeout
    fires and then waits for its reader task forever; ours ends the whole connect at the deadline."""
    accepted = []

    async def silent(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        while await stream.receive_some(4096):
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5):
            t0 = trio.current_time()
            with pytest.raises(WsConnectError, match="no WebSocket handshake within 0.5 s"):
                async with open_ws(f"ws://127.0.0.1:{port}/", connect_timeout_s=0.5):
                    pass
            assert 0.5 <= trio.current_time() - t0 < 2
        assert len(accepted) == 1
        nursery.cancel_scope.cancel()


async def test_a_rejected_handshake_is_a_connect_error():
    async def handler(request):
        await request.reject(403, b"forbidden")

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ws, handler, "127.0.0.1", 0)
        with trio.fail_after(5), pytest.raises(WsConnectError, match="cannot connect"):
            async with open_ws(f"ws://127.0.0.1:{port}/", connect_timeout_s=2):
                pass
        nursery.cancel_scope.cancel()
