"""Why a connection could not be opened, in words a person can act on.

A failed connect reaches us as a chain of library exceptions (trio's "all attempts to connect failed"
wrapping a group of ``ConnectionRefusedError``; httpx's ``ConnectError`` wrapping httpcore's wrapping a
``socket.gaierror``). ``connect_failure`` walks that chain once and names the cause: the name did not
resolve, the connection was refused, it timed out, the network is unreachable, TLS failed. The feeds'
errors carry the result, so the log, the KPI file and the session's fatal line all say the same words.
"""

from __future__ import annotations

import enum
import errno
import socket
import ssl
from typing import Iterator

import attrs


class FailureKind(enum.StrEnum):
    NAME = "name resolution failed"
    REFUSED = "connection refused"
    TIMEOUT = "timed out"
    UNREACHABLE = "network unreachable"
    RESET = "connection reset"
    TLS = "TLS failed"
    NO_HANDSHAKE = "no handshake"  # TCP connected, the server never answered the WebSocket upgrade
    REJECTED = "handshake rejected"
    OTHER = "error"


# the kinds that mean the exchange was never reached at all (the network, DNS or the address is wrong)
UNREACHED = frozenset({FailureKind.NAME, FailureKind.REFUSED, FailureKind.TIMEOUT, FailureKind.UNREACHABLE})
_UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


@attrs.frozen
class ConnectFailure:
    """What stopped a connect: ``kind`` and ``text`` ("name resolution failed for api.upbit.com (...)")."""

    kind: FailureKind
    text: str

    @property
    def unreached(self) -> bool:
        """The exchange was never reached: no name, nothing listening, no route, no answer to the TCP connect."""
        return self.kind in UNREACHED


def _links(exc: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the leaves of any exception group among them (depth first)."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < limit:
        link = stack.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        if isinstance(link, BaseExceptionGroup):
            stack.extend(reversed(link.exceptions))
        for nxt in (link.__context__, link.__cause__):
            if nxt is not None:
                stack.append(nxt)


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def classify(link: BaseException, host: str, port: int | None) -> ConnectFailure | None:
    """The failure one exception names, or None if it names none (a wrapper, a library's own error)."""
    where = host if port is None else f"{host}:{port}"
    if isinstance(link, socket.gaierror):
        return ConnectFailure(FailureKind.NAME, f"name resolution failed for {host} ({_strerror(link)})")
    if isinstance(link, ConnectionRefusedError):
        return ConnectFailure(FailureKind.REFUSED, f"connection refused by {where} (nothing listens there)")
    if isinstance(link, ssl.SSLError):  # before OSError: an SSLError is one
        return ConnectFailure(FailureKind.TLS, f"TLS with {host} failed ({link.reason or _strerror(link)})")
    if isinstance(link, TimeoutError):
        return ConnectFailure(FailureKind.TIMEOUT, f"timed out connecting to {where}")
    if isinstance(link, ConnectionResetError):
        return ConnectFailure(FailureKind.RESET, f"connection reset by {where}")
    if isinstance(link, OSError) and link.errno in _UNREACHABLE_ERRNOS:
        return ConnectFailure(FailureKind.UNREACHABLE, f"{where} unreachable ({_strerror(link)})")
    return None


def connect_failure(exc: BaseException, host: str, port: int | None, fallback: str) -> ConnectFailure:
    """The cause named anywhere in ``exc``'s chain; ``fallback`` words (kind OTHER) when none is."""
    for link in _links(exc):
        failure = classify(link, host, port)
        if failure is not None:
            return failure
    return ConnectFailure(FailureKind.OTHER, fallback)
