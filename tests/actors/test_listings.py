"""The listings' REST calls (actors/net/listings.py, issue 26) against servers that misbehave: each failure is
bounded in time (virtual: the autojump clock) and memory and says what went wrong; Binance's call waits on the
weight budget and honours 429/418; no request to Upbit carries an Origin header (on the wire: a loopback
server)."""

from __future__ import annotations

import json
import socket
from typing import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trio

from actors.core.pairs import Pair, universe
from actors.net.http import serve_http
from actors.net.listings import (
    EXCHANGE_INFO_WEIGHT,
    MAX_UPBIT_LISTING_BYTES,
    ListingFailure,
    ListingUnavailable,
    fetch_binance_symbols,
    fetch_listings,
    fetch_upbit_markets,
)
from actors.net.memory import memory_network
from actors.net.rest_budget import RestBudget

TIMEOUT_S = 5.0
UPBIT_BODY = json.dumps(
    [
        {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"},
        {"market": "KRW-ETH", "korean_name": "이더리움", "english_name": "Ethereum"},
        {"market": "KRW-USDT", "korean_name": "테더", "english_name": "Tether"},
        {"market": "BTC-XRP", "korean_name": "리플", "english_name": "XRP"},
    ]
).encode()


def _symbol(base: str) -> dict[str, object]:
    return {
        "symbol": base + "USDT",
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": "USDT",
        "isSpotTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00010000", "minQty": "0.00010000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000"},
        ],
    }


BINANCE_BODY = json.dumps({"timezone": "UTC", "symbols": [_symbol("BTC"), _symbol("ETH"), _symbol("XRP")]}).encode()

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _client(handler: Handler, base_url: str = "https://api.example") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=httpx.MockTransport(handler), timeout=TIMEOUT_S)


def _budget(weight_per_min: int = 6_000) -> RestBudget:
    return RestBudget.per_minute(weight_per_min, seed=1)


async def _fails(call: Awaitable[object], failure: ListingFailure, *words: str) -> ListingUnavailable:
    with pytest.raises(ListingUnavailable) as err:
        await call
    assert err.value.failure is failure, str(err.value)
    for w in words:
        assert w in str(err.value)
    return err.value


# -- a good answer --------------------------------------------------------------------------------------------


async def test_a_good_answer_gives_both_listings_and_spends_the_exchange_info_weight(autojump_clock):
    asked: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, content=BINANCE_BODY, headers={"X-MBX-USED-WEIGHT-1M": "20"})

    rest = _budget()
    async with _client(handler) as http:
        symbols = await fetch_binance_symbols(http, rest, TIMEOUT_S)
    assert [s.symbol for s in symbols] == ["BTCUSDT", "ETHUSDT", "XRPUSDT"] and symbols[0].rules.tick_size_usdt == 0.01
    assert asked == ["/api/v3/exchangeInfo"]
    assert rest.statistics().granted_weight == EXCHANGE_INFO_WEIGHT == 20


async def test_fetch_listings_over_the_in_memory_network_makes_the_universe(autojump_clock):
    memory_network()
    paths: list[str] = []

    async def respond(target: str) -> tuple[int, dict[str, str], bytes]:
        paths.append(target)
        return 200, {}, UPBIT_BODY if target == "/v1/market/all" else BINANCE_BODY

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_http, respond, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}"
        listings = await fetch_listings(url, url, _budget(), TIMEOUT_S)
        nursery.cancel_scope.cancel()
    assert paths == ["/v1/market/all", "/api/v3/exchangeInfo"]  # Upbit's first
    assert universe(listings.upbit, listings.binance).pairs == (Pair.of("BTC"), Pair.of("ETH"))


# -- deadlines: the whole call, body included ------------------------------------------------------------------


async def test_a_server_that_never_answers_fails_at_the_deadline(autojump_clock):
    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError

    start = trio.current_time()
    async with _client(handler) as http:
        await _fails(
            fetch_upbit_markets(http, TIMEOUT_S),
            ListingFailure.TIMEOUT,
            "Upbit https://api.example/v1/market/all: no complete answer within 5 s (market.listing_timeout_s)",
        )
    assert trio.current_time() - start == pytest.approx(TIMEOUT_S)


async def _trickle(body: bytes) -> AsyncIterator[bytes]:
    for i in range(len(body)):
        await trio.sleep(1.0)  # one byte a second: no single read ever waits for the per-read timeout
        yield body[i : i + 1]


async def test_a_body_that_trickles_fails_at_the_deadline(autojump_clock):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(len(BINANCE_BODY))}, content=_trickle(BINANCE_BODY))

    rest = _budget()
    start = trio.current_time()
    async with _client(handler) as http:
        await _fails(fetch_binance_symbols(http, rest, TIMEOUT_S), ListingFailure.TIMEOUT, "within 5 s")
    assert trio.current_time() - start == pytest.approx(TIMEOUT_S)
    assert rest.statistics().rate_limited == 0  # the answer's headers reached the budget: a plain answer


# -- byte limits ----------------------------------------------------------------------------------------------


class _Endless:
    """A body that never ends, in chunks of 64 KiB of ``byte``; ``sent`` counts the bytes handed out."""

    def __init__(self, byte: bytes) -> None:
        self.byte, self.sent = byte, 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 65536
            yield self.byte * 65536


async def test_a_huge_announced_body_is_refused_before_it_is_read(autojump_clock):
    body = _Endless(b" ")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(2**31)}, content=body.chunks())

    async with _client(handler) as http:
        await _fails(
            fetch_binance_symbols(http, _budget(), TIMEOUT_S),
            ListingFailure.TOO_LARGE,
            "Binance https://api.example/api/v3/exchangeInfo: a listing over 67,108,864 bytes",
            "(2,147,483,648 announced)",
        )
    assert body.sent <= 65536  # nothing of it was read (at most what the transport pulled to start)


# httpx's body iterators nest async generators (aiter_bytes > aiter_raw > the bound stream) and closing the outer
# one leaves the inner ones to the garbage collector, which trio finalizes with this warning: harmless (the
# response is closed), httpx's own, and only seen when a body is abandoned mid-way
ABANDONED_BODY = "ignore:Async generator 'httpx.:ResourceWarning"


@pytest.mark.filterwarnings(ABANDONED_BODY)
async def test_a_huge_streamed_body_is_abandoned_at_the_limit(autojump_clock):
    body = _Endless(b"[")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body.chunks())  # chunked: no length announced

    async with _client(handler) as http:
        await _fails(fetch_upbit_markets(http, TIMEOUT_S), ListingFailure.TOO_LARGE, "over 4,194,304 bytes: abandoned")
    assert MAX_UPBIT_LISTING_BYTES < body.sent <= MAX_UPBIT_LISTING_BYTES + 2 * 65536  # read no further than the limit


@pytest.mark.filterwarnings(ABANDONED_BODY)
async def test_an_error_page_is_cut_to_its_start(autojump_clock):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=b"<html>" + b"x" * 10_000_000)

    async with _client(handler) as http:
        err = await _fails(
            fetch_upbit_markets(http, TIMEOUT_S),
            ListingFailure.HTTP_STATUS,
            "Upbit https://api.example/v1/market/all answered HTTP 500: <html>xxx",
        )
    assert len(str(err)) < 400


# -- wrong answers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        (b"<html>maintenance</html>", "Upbit GET /v1/market/all: not JSON"),
        (b'{"markets": []}', "Expected `array`, got `object`"),
        (b'[{"market": null}]', "Expected `str`, got `null` - at `$[0].market`"),
    ],
)
async def test_a_200_that_is_not_the_listing_is_unreadable_and_names_the_field(autojump_clock, body, words):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async with _client(handler) as http:
        await _fails(
            fetch_upbit_markets(http, TIMEOUT_S), ListingFailure.UNREADABLE, words, "api.example/v1/market/all"
        )


async def test_a_binance_500_is_named_and_is_not_a_refusal(autojump_clock):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=b'{"code": -1000, "msg": "An unknown error occurred"}')

    rest = _budget()
    async with _client(handler) as http:
        await _fails(
            fetch_binance_symbols(http, rest, TIMEOUT_S), ListingFailure.HTTP_STATUS, "answered HTTP 500", "-1000"
        )
    assert rest.statistics().blocked_until == float("-inf")


# -- Binance's weight budget, 429 and 418 ----------------------------------------------------------------------


@pytest.mark.parametrize("status, failure", [(429, ListingFailure.RATE_LIMITED), (418, ListingFailure.BANNED)])
async def test_a_refusal_holds_every_later_request_until_its_retry_after(autojump_clock, status, failure):
    sent_at: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(trio.current_time())
        if len(sent_at) == 1:
            return httpx.Response(status, headers={"Retry-After": "30"}, content=b'{"code": -1003}')
        return httpx.Response(200, content=BINANCE_BODY)

    rest = _budget()
    async with _client(handler) as http:
        await _fails(
            fetch_binance_symbols(http, rest, TIMEOUT_S),
            failure,
            f"Binance refused https://api.example/api/v3/exchangeInfo: HTTP {status}",
            "Retry-After (30 s)",
        )
        assert rest.statistics().blocked_until == pytest.approx(sent_at[0] + 30)
        symbols = await fetch_binance_symbols(http, rest, TIMEOUT_S)  # waits, then goes
    assert len(symbols) == 3
    assert sent_at[1] - sent_at[0] >= 30  # never asked again within the Retry-After


async def test_the_call_waits_for_the_weight_budget(autojump_clock):
    sent_at: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(trio.current_time())
        return httpx.Response(200, content=BINANCE_BODY)

    rest = _budget(weight_per_min=2 * EXCHANGE_INFO_WEIGHT)  # two calls a minute
    async with _client(handler) as http:
        for _ in range(3):
            await fetch_binance_symbols(http, rest, TIMEOUT_S)
    assert sent_at[1] - sent_at[0] < 1 and sent_at[2] - sent_at[0] >= 60
    assert rest.statistics().waited == 1


async def test_an_upbit_429_fails_at_once(autojump_clock):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Remaining-Req": "group=market; min=0; sec=0"}, content=b"")

    async with _client(handler) as http:
        await _fails(fetch_upbit_markets(http, TIMEOUT_S), ListingFailure.HTTP_STATUS, "HTTP 429: (no body)")


# -- on the wire (loopback): no Origin, connect failures named -----------------------------------------------------


async def _serve_once(listener: trio.SocketListener, heads: list[bytes], body: bytes) -> None:
    stream = await listener.accept()
    async with stream:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(65536)
        heads.append(head)
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        await stream.send_all(answer % len(body) + body)


async def test_no_request_to_upbit_carries_an_origin_header_on_the_wire():
    heads: list[bytes] = []
    with trio.fail_after(10):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_once, listener, heads, UPBIT_BODY)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S) as http:
                assert len(await fetch_upbit_markets(http, TIMEOUT_S)) == 4  # httpx as it comes
            nursery.start_soon(_serve_once, listener, heads, UPBIT_BODY)
            headers = {"Origin": "https://example.com"}  # a client that would send one
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
                await fetch_upbit_markets(http, TIMEOUT_S)
        await listener.aclose()
    assert [h.split(b"\r\n")[0] for h in heads] == [b"GET /v1/market/all HTTP/1.1"] * 2
    for head in heads:
        assert b"\r\norigin:" not in head.lower()


async def test_a_refused_connection_is_named():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with trio.fail_after(10):
        err = await _fails(
            fetch_listings(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", _budget(), TIMEOUT_S),
            ListingFailure.CONNECT,
            f"Upbit http://127.0.0.1:{port}/v1/market/all failed: connection refused",
        )
    assert err.venue == "upbit"
