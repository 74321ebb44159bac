"""Which network the current task (and its children) uses: the real one, or a stand-in.

A stand-in is any object with an async context manager ``connect_ws(url, connect_timeout_s=..., limits=...)``
yielding a ``WsConn``-like object (``limits``: an ``actors.net.ws.WsLimits``, what the connection may make
the caller hold), ``listen_ws``/``listen_http`` for servers, and ``http_transport()`` returning an httpx
transport: ``actors.net.memory.MemoryNetwork``, or bench/pipeline.py's pre-encoded frames.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

_network: ContextVar[Any] = ContextVar("network", default=None)


def current_network() -> Any:
    """The stand-in network of this task, or None for real sockets."""
    return _network.get()


def use_network(network: Any) -> None:
    """Route this task's (and its children's) connections through ``network``."""
    _network.set(network)


@contextmanager
def network_scope(network: Any) -> Iterator[None]:
    """Route this task's (and the children it starts meanwhile) connections through ``network`` for the
    duration of the block, then back to what they were."""
    token = _network.set(network)
    try:
        yield
    finally:
        _network.reset(token)
