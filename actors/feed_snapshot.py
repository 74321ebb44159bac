"""The Binance feed's REST depth snapshot: one request once the process's weight budget grants it, bounded in
time and size, its refusals (429, 418) and failures named (``SnapshotError``, ``RestRefused``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import trio
from loguru import logger

from actors.config import BinanceFeedConfig
from actors.core.kpi import FeedStats
from actors.core.venues import binance
from actors.core.venues.binance_book import SnapshotError
from actors.core.venues.binance_weight import Answer, depth_weight
from actors.core.vocabulary import RestartCause, Venue
from actors.net.failures import connect_failure
from actors.net.rest_budget import RestBudget

if TYPE_CHECKING:
    from actors.records.files import Recorder

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024  # a 5000-level depth snapshot is well under 1 MiB


class RestRefused(SnapshotError):
    """Binance refused a REST request: 429 (past the weight limit) or 418 (the IP is banned)."""


def rest_budget(cfg: BinanceFeedConfig, seed: int | None = None) -> RestBudget:
    """The REST weight budget of a process's Binance feeds (``rest_weight_per_min``), its jitter seeded."""
    return RestBudget.per_minute(cfg.rest_weight_per_min, seed)


async def fetch_snapshot(
    http: httpx.AsyncClient,
    cfg: BinanceFeedConfig,
    rest: RestBudget,
    stats: FeedStats,
    recorder: Recorder | None = None,
) -> binance.DepthSnapshot:
    """One REST depth snapshot, once the weight budget grants it; within ``snapshot_timeout_s`` for the whole
    request (a body that trickles one byte a second never times out per read) and at most MAX_SNAPSHOT_BYTES
    (announced or streamed). A 429 or 418 raises ``RestRefused``, after the budget has taken in its Retry-After."""
    query = binance.depth_query(cfg.symbol, cfg.snapshot_limit)
    weight = depth_weight(cfg.snapshot_limit)
    asked_at = trio.current_time()
    held_s = rest.statistics().blocked_until - asked_at
    if held_s > 0:  # a wait of minutes or days (a ban) says so when it starts, not only when it ends
        logger.bind(actor="feed:binance").warning(
            "depth snapshot held {:.0f} s: Binance's Retry-After (HTTP 429/418) stops every REST request until then",
            held_s,
        )
    sent_at = await rest.acquire(weight)
    stats.rest_weight += weight
    stats.rest_wait_s += sent_at - asked_at
    headers: dict[str, str] = {}
    answer = Answer.OK
    with trio.move_on_after(cfg.snapshot_timeout_s) as deadline:
        try:
            async with http.stream("GET", query) as response:
                status, headers = response.status_code, dict(response.headers)
                body = await _read_body(response, MAX_SNAPSHOT_BYTES if status == 200 else 4096)
        except httpx.HTTPError as exc:
            raise SnapshotError(f"depth snapshot request failed: {_http_failure(exc, http.base_url, cfg)}") from None
        finally:
            if headers:
                answer = rest.answered(status, headers, sent_at)
    if deadline.cancelled_caught:
        raise SnapshotError(
            f"depth snapshot: no complete answer within {cfg.snapshot_timeout_s:g} s (feeds.binance.snapshot_timeout_s)"
        )
    if answer is not Answer.OK:
        cause = RestartCause.BANNED if answer is Answer.BANNED else RestartCause.RATE_LIMITED
        raise RestRefused(
            f"depth snapshot HTTP {status} ({cause}): no REST request before Retry-After "
            f"({headers.get('retry-after', '?')} s); {body[:200].decode('utf-8', 'replace')}",
            cause=cause,
        )
    if status != 200:
        raise SnapshotError(f"depth snapshot HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
    if recorder is not None:
        recorder.write(Venue.BINANCE, "rest", trio.current_time(), body)
    try:
        return binance.decode_snapshot(body)
    except Exception as exc:  # any exception of the decoder: RecursionError on nested JSON, say
        raise SnapshotError(f"depth snapshot unreadable: {type(exc).__name__}: {str(exc)[:200]}") from None


def _http_failure(exc: httpx.HTTPError, base_url: httpx.URL, cfg: BinanceFeedConfig) -> str:
    """A failed REST request in words: a timeout with the deadline and the key that sets it, the connect
    failure it names ("name resolution failed for api.binance.com (...)", "connection refused by ..."), or
    the library's own message."""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return f"no connection to {base_url.host} within {cfg.connect_timeout_s:g} s (feeds.binance.connect_timeout_s)"
    if isinstance(exc, httpx.TimeoutException):  # a read or a write: nothing moved for a whole deadline
        return (
            f"{base_url.host} sent nothing for {cfg.snapshot_timeout_s:g} s while answering "
            f"({type(exc).__name__}; feeds.binance.snapshot_timeout_s)"
        )
    fallback = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not isinstance(exc, httpx.TransportError):
        return fallback
    return connect_failure(exc, base_url.host, base_url.port, fallback).text


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body, or SnapshotError as soon as it is known to exceed ``limit`` bytes."""
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit and response.status_code == 200:
        raise SnapshotError(f"depth snapshot of {int(announced):,} bytes announced; at most {limit:,} accepted")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if response.status_code != 200:
                break  # an error page: its start is enough to say what went wrong
            raise SnapshotError(f"depth snapshot longer than {limit:,} bytes: abandoned")
        chunks.append(chunk)
    return b"".join(chunks)
