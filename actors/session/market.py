"""A market session's first step (issue 26): the pairs it trades, from both venues' listings, before its frame
opens. With ``--market sim`` the embedded exchange starts first (it serves the listings, and then the market);
live, the listings come from [feeds.upbit] rest_url and [feeds.binance] rest_url. The Binance listing is paid
from the process's REST weight budget, the one every Binance feed of the session then shares.

A one-pair config ([market] pairs absent) skips all of it: ``open_market`` yields None.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, AsyncIterator

import trio

from actors import wiring_market
from actors.config import Config, Inputs, is_multi_pair
from actors.conventions import SeedStream
from actors.core.pairs import UniverseError, universe
from actors.feed_snapshot import rest_budget
from actors.net.listings import ListingUnavailable, fetch_listings
from actors.sim.exchange import SimEndpoints
from actors.sim.serve import serve_sim
from actors.wiring_market import MarketSetup
from supervision import sole_exception

if TYPE_CHECKING:
    from loguru import Logger


class MarketUnavailable(Exception):
    """The pairs could not be listed (a listing failed, or the pairs asked for are not on both venues);
    ``usage``: the config asks for what the venues do not list (exit 2), else the venues failed (exit 1)."""

    def __init__(self, text: str, *, usage: bool) -> None:
        super().__init__(text)
        self.usage = usage


@asynccontextmanager
async def open_market(cfg: Config, inputs: Inputs, opened_at: float, log: Logger) -> AsyncIterator[MarketSetup | None]:
    """The market's pairs, shards and weight budget, with the embedded exchange running (``--market sim``) until
    the block ends; None for a one-pair config."""
    if not is_multi_pair(cfg):
        yield None
        return
    try:
        async with trio.open_nursery() as nursery:
            yield await _listed(cfg, inputs, opened_at, log, nursery)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the exchange's nursery wraps what the session raised: one error, itself
        leaf = sole_exception(group)
        if isinstance(leaf, Exception):
            raise leaf from None
        raise


async def _listed(cfg: Config, inputs: Inputs, opened_at: float, log: Logger, nursery: trio.Nursery) -> MarketSetup:
    """The embedded exchange started in ``nursery`` (``--market sim``), both listings read, the pairs chosen."""
    endpoints: SimEndpoints | None = None
    if cfg.session.market == "sim":
        endpoints = await nursery.start(partial(serve_sim, cfg.sim, cfg.session.seed, model=inputs.market_model))
    upbit_url = cfg.feeds.upbit.rest_url if endpoints is None else endpoints.upbit_rest_url
    binance_url = cfg.feeds.binance.rest_url if endpoints is None else endpoints.binance_rest_url
    rest = rest_budget(cfg.feeds.binance, cfg.session.seed + SeedStream.REST_JITTER)
    m = cfg.market
    try:
        listings = await fetch_listings(
            upbit_url, binance_url, rest, m.listing_timeout_s, cfg.feeds.binance.connect_timeout_s
        )
    except ListingUnavailable as exc:
        raise MarketUnavailable(f"the pairs could not be listed: {exc}", usage=False) from None
    try:
        pairs = universe(listings.upbit, listings.binance, m.wanted(), m.exclude, m.alias_map(), m.max_pairs)
    except UniverseError as exc:
        raise MarketUnavailable(f"[market] pairs: {exc}", usage=True) from None
    log.info("market: {}", pairs.describe())
    plan = wiring_market.shard_plan(cfg, pairs, opened_at)
    sizes = ", ".join(str(len(shard.symbols)) for shard in plan.shards)
    log.info("binance: {} depth books over {} connections ({})", len(pairs.pairs), len(plan.shards), sizes)
    return MarketSetup(pairs, plan, rest, endpoints)
