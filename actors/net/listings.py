"""The two listings a multi-pair session computes its universe from (issue 26): Upbit's ``GET /v1/market/all``
and Binance's ``GET /api/v3/exchangeInfo``, each one bounded REST call; the decoding and the universe are the
core's (``actors.core.pairs``).

Each call has a deadline for the whole request, body included (httpx's timeouts are per read: a body that
trickles one byte a second would never time out), and a byte limit on the body (announced or streamed), so a
hostile or broken server costs at most ``timeout_s`` and a bounded amount of memory. Every failure is a
``ListingUnavailable`` whose ``failure`` says what went wrong and whose message names the venue, the URL and
the config key that sets the bound.

Binance: the call waits on the process's REST weight budget (``RestBudget``; exchangeInfo weighs 20, its wait
is not part of the deadline) and reports its answer to it, so a 429's or a 418's ``Retry-After`` holds every
later request of the process (the next listing, every depth snapshot); the call itself then fails
(``ListingFailure.RATE_LIMITED`` / ``BANNED``). Check ``rest.statistics().blocked_until`` first to say that a
wait is coming: a ban can last days.

Upbit: no request carries an ``Origin`` header (with one, Upbit allows 1 request per 10 s instead of 10 per
second: MULTIPAIR.md §1). httpx adds none; one a caller's client would add is removed from the request.
Upbit's 429 and 418 fail the call at once (it has no shared budget to hold: the ``market`` group allows 10
requests a second per IP, and one call at a session's start is far from it).

No call is retried here: the caller decides (a session's start fails with the message, naming the cause).
"""

from __future__ import annotations

import enum
from contextlib import aclosing
from typing import AsyncGenerator, Callable, Mapping, cast

import attrs
import httpx
import trio

from actors.core.pairs import BinanceSymbol, ListingError, UpbitMarket, decode_binance_symbols, decode_upbit_markets
from actors.core.venues.binance_weight import Answer
from actors.core.vocabulary import Venue
from actors.inputs import KIB, MIB
from actors.net.failures import connect_failure
from actors.net.http import http_client
from actors.net.rest_budget import RestBudget

UPBIT_MARKETS_PATH = "/v1/market/all"
BINANCE_EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
EXCHANGE_INFO_WEIGHT = 20  # rest-api.md "Exchange information"
MAX_UPBIT_LISTING_BYTES = 4 * MIB  # a few hundred markets: tens of KiB
MAX_BINANCE_LISTING_BYTES = 64 * MIB  # every symbol with its filters: a few MiB
ERROR_BODY_BYTES = 4 * KIB  # an error page: its start says what went wrong
TIMEOUT_KEY = "market.listing_timeout_s"
_ORIGIN = "origin"


class ListingFailure(enum.StrEnum):
    """Why a listing could not be read."""

    CONNECT = "connect"  # no connection (the name did not resolve, refused, timed out, TLS, ...)
    TIMEOUT = "timeout"  # no complete answer within the deadline (headers and body)
    TOO_LARGE = "too_large"  # a body over the byte limit (announced or streamed)
    HTTP_STATUS = "http_status"  # an answer other than 200 (a 500, a 404, Upbit's 429)
    RATE_LIMITED = "rate_limited"  # Binance 429: past the weight limit; nothing goes before Retry-After
    BANNED = "banned"  # Binance 418: the IP is banned until Retry-After
    UNREADABLE = "unreadable"  # a 200 whose body is not the listing (not JSON, wrong shape: the field named)


class ListingUnavailable(Exception):
    """A listing that could not be fetched or read; str() says which venue, URL and why."""

    def __init__(self, text: str, venue: Venue, failure: ListingFailure) -> None:
        super().__init__(text)
        self.venue = venue
        self.failure = failure


@attrs.frozen
class Listings:
    """Both venues' listings, decoded, in the venues' order."""

    upbit: tuple[UpbitMarket, ...]
    binance: tuple[BinanceSymbol, ...]


async def fetch_listings(
    upbit_url: str, binance_url: str, rest: RestBudget, timeout_s: float, connect_timeout_s: float | None = None
) -> Listings:
    """Both listings, Upbit's first: ``upbit_url`` is ``[feeds.upbit] rest_url``, ``binance_url``
    ``[feeds.binance] rest_url``; each call within ``timeout_s`` (``[market] listing_timeout_s``), its connect
    within ``connect_timeout_s`` (default ``timeout_s``). Over the in-memory network when one is in use."""
    connect_s = timeout_s if connect_timeout_s is None else connect_timeout_s
    async with http_client(upbit_url, connect_s, timeout_s) as http:
        upbit = await fetch_upbit_markets(http, timeout_s)
    async with http_client(binance_url, connect_s, timeout_s) as http:
        binance = await fetch_binance_symbols(http, rest, timeout_s)
    return Listings(upbit, binance)


async def fetch_upbit_markets(http: httpx.AsyncClient, timeout_s: float) -> tuple[UpbitMarket, ...]:
    """Upbit's ``/v1/market/all`` through ``http`` (its base URL: Upbit's REST base), within ``timeout_s``."""
    status, _headers, body = await _get(http, UPBIT_MARKETS_PATH, Venue.UPBIT, MAX_UPBIT_LISTING_BYTES, timeout_s)
    if status != 200:
        raise _status_error(Venue.UPBIT, http, UPBIT_MARKETS_PATH, status, body)
    try:
        return decode_upbit_markets(body)
    except ListingError as exc:
        raise ListingUnavailable(
            f"{exc} ({_url(http, UPBIT_MARKETS_PATH)})", Venue.UPBIT, ListingFailure.UNREADABLE
        ) from None


async def fetch_binance_symbols(
    http: httpx.AsyncClient, rest: RestBudget, timeout_s: float
) -> tuple[BinanceSymbol, ...]:
    """Binance's ``/api/v3/exchangeInfo`` through ``http`` once ``rest`` grants its weight, within ``timeout_s``
    from then. A 429 or 418 fails it after the budget has taken in the Retry-After."""
    sent_at = await rest.acquire(EXCHANGE_INFO_WEIGHT)
    answers: list[Answer] = []

    def answered(status: int, headers: Mapping[str, str]) -> None:
        answers.append(rest.answered(status, headers, sent_at))

    path = BINANCE_EXCHANGE_INFO_PATH
    status, headers, body = await _get(http, path, Venue.BINANCE, MAX_BINANCE_LISTING_BYTES, timeout_s, answered)
    if answers and answers[0] is not Answer.OK:
        failure = ListingFailure.BANNED if answers[0] is Answer.BANNED else ListingFailure.RATE_LIMITED
        raise ListingUnavailable(
            f"Binance refused {_url(http, path)}: HTTP {status} ({failure}); no REST request of this process goes "
            f"before its Retry-After ({headers.get('retry-after', '?')} s): {_start(body)}",
            Venue.BINANCE,
            failure,
        )
    if status != 200:
        raise _status_error(Venue.BINANCE, http, path, status, body)
    try:
        return decode_binance_symbols(body)
    except ListingError as exc:
        raise ListingUnavailable(f"{exc} ({_url(http, path)})", Venue.BINANCE, ListingFailure.UNREADABLE) from None


async def _get(
    http: httpx.AsyncClient,
    path: str,
    venue: Venue,
    limit: int,
    timeout_s: float,
    on_headers: Callable[[int, Mapping[str, str]], None] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One GET of ``path`` without an Origin header: its status, headers and body (at most ``limit`` bytes for
    a 200, the start of anything else), all within ``timeout_s``. ``on_headers`` hears the status and headers
    as soon as they arrived, also when the body then fails."""
    request = http.build_request("GET", path)
    if _ORIGIN in request.headers:
        del request.headers[_ORIGIN]
    status, headers, body = 0, dict[str, str](), b""
    with trio.move_on_after(timeout_s) as deadline:
        try:
            response = await http.send(request, stream=True)
            try:
                status, headers = response.status_code, dict(response.headers)
                if on_headers is not None:
                    on_headers(status, headers)
                body = await _read_bounded(response, limit if status == 200 else ERROR_BODY_BYTES, venue, http, path)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            text = f"{venue.title()} {_url(http, path)} failed: {_http_failure(exc, http, timeout_s)}"
            failure = ListingFailure.TIMEOUT if isinstance(exc, httpx.TimeoutException) else ListingFailure.CONNECT
            raise ListingUnavailable(text, venue, failure) from None
    if deadline.cancelled_caught:
        raise ListingUnavailable(
            f"{venue.title()} {_url(http, path)}: no complete answer within {timeout_s:g} s ({TIMEOUT_KEY})",
            venue,
            ListingFailure.TIMEOUT,
        )
    return status, headers, body


async def _read_bounded(
    response: httpx.Response, limit: int, venue: Venue, http: httpx.AsyncClient, path: str
) -> bytes:
    """The (decoded) body, or ``ListingUnavailable`` as soon as a 200's is known to exceed ``limit`` bytes (an
    error page is cut at ``limit``)."""
    announced = response.headers.get("content-length", "")
    too_large = f"{venue.title()} {_url(http, path)}: a listing over {limit:,} bytes"
    if response.status_code == 200 and announced.isdigit() and int(announced) > limit:
        raise ListingUnavailable(f"{too_large} ({int(announced):,} announced)", venue, ListingFailure.TOO_LARGE)
    chunks, size = [], 0
    chunks_in = cast(AsyncGenerator[bytes, None], response.aiter_bytes())  # typed as an iterator; a generator
    async with aclosing(chunks_in) as body:  # closed on a break or a raise, not left to the GC
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                if response.status_code != 200:
                    chunks.append(chunk[: limit - size + len(chunk)])
                    break
                raise ListingUnavailable(f"{too_large}: abandoned", venue, ListingFailure.TOO_LARGE)
            chunks.append(chunk)
    return b"".join(chunks)


def _status_error(venue: Venue, http: httpx.AsyncClient, path: str, status: int, body: bytes) -> ListingUnavailable:
    return ListingUnavailable(
        f"{venue.title()} {_url(http, path)} answered HTTP {status}: {_start(body)}", venue, ListingFailure.HTTP_STATUS
    )


def _http_failure(exc: httpx.HTTPError, http: httpx.AsyncClient, timeout_s: float) -> str:
    host = http.base_url.host
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        within = "" if http.timeout.connect is None else f" within {http.timeout.connect:g} s"
        return f"no connection to {host}{within}"
    if isinstance(exc, httpx.TimeoutException):  # a read or a write: nothing moved for a whole deadline
        return f"{host} sent nothing for {timeout_s:g} s while answering ({type(exc).__name__}; {TIMEOUT_KEY})"
    fallback = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not isinstance(exc, httpx.TransportError):
        return fallback
    return connect_failure(exc, host, http.base_url.port, fallback).text


def _url(http: httpx.AsyncClient, path: str) -> str:
    return str(http.base_url.join(path))


def _start(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace") or "(no body)"
