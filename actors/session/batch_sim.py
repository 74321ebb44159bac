"""The batched simulated session: the seeded market stepped straight into one pass of the pure core per step.

A session on the embedded exchange (market = "sim") on the virtual clock runs, on the actor path, the exchange's
Upbit and Binance servers and the feed, aggregator and executor actors over the in-memory network. Nothing
outside the process sees those hops, so where nothing needs the actors (``batch_path.why_actors``) the session
steps the same ``SimMarket`` (the hub ``serve_sim`` would build, ``simulated_hub``) every ``sim.step_ms`` on the
same grid as the hub's clock, and hands each step to the keepers as the servers would send it
(``actors.session.batch_pass``):

- Upbit: the subscription's first books (``orderbook_frame``, SNAPSHOT), then the book of every changed code,
  as ``upbit.decode`` reads the server's frame (``batch_path.synthesised_book``); the server's ``{"status":"UP"}``
  every ``UP_INTERVAL_S`` from the feed's first PING, which the feed counts as messages;
- Binance: the step's diff on ``<symbol>@depth@100ms`` (the server sends each step's diff whatever ``step_ms``),
  as ``binance.decode`` reads it (``synthesised_diff``); a depth request granted by the feed's weight budget as
  ``fetch_snapshot`` asks it (``WeightBudget``, seeded as the tree's), checked by the server's weight limiter
  and answered as the server answers it (``rest_response`` from the model's book, the limiter's headers taken
  in by the budget).

Fill events, premium series and KPI are byte-identical to the actor path's (tests/actors/test_sim_batch.py).
"""

from __future__ import annotations

import math

import trio

from actors.conventions import SeedStream
from actors.core.venues import binance
from actors.core.venues.binance_weight import depth_weight
from actors.feed_snapshot import rest_budget
from actors.net.http import client_host
from actors.net.ws import CLOSE_TIMEOUT_S
from actors.session.batch_pass import BatchedPass
from actors.session.batch_path import BatchUnsupported
from actors.session.fast_forward import FastForward
from actors.session.tree import Frame
from actors.sim.binance_server import request_weight, rest_response
from actors.sim.exchange import SimHub
from actors.sim.model import SimMarket
from actors.sim.upbit_server import UP_INTERVAL_S, orderbook_frame


class BatchedSim(BatchedPass):
    """The feeds, the aggregator and the executor of a simulated session on the virtual clock, as one pass of
    the pure core per step of ``hub``'s market (``run_clock`` is the market's clock task, ``run`` the actors)."""

    PATH_LINE = (
        "market path: batched, the simulated market stepped into one pass of the pure core per step "
        "(sim.batched = false: the actors)"
    )
    FAILED = "simulated market (batched path): {}; rerun with sim.batched = false"
    WHERE = ("the simulated Upbit in memory", "the simulated Binance depth stream in memory")
    FEEDS_CLOSE_S = CLOSE_TIMEOUT_S  # a cancelled feed's WebSocket close waits this long for the server's reply

    def __init__(self, frame: Frame, hub: SimHub) -> None:
        super().__init__(frame, hub)
        assert isinstance(hub.market, SimMarket), "a hub on the one-coin simulated market (why_actors)"
        self.hub, self.sim = hub, hub.market
        # the process's weight budget as the actor tree makes it (its jitter seeded alike)
        seed = frame.info.config.session.seed
        self._budget = rest_budget(self._bfeed, seed + SeedStream.REST_JITTER).budget
        self._next_up_at = math.inf
        self._feeds_connected = trio.Event()  # the feeds connect at the session's start, before the first step

    async def run_clock(self) -> None:
        """The market's clock on the hub's grid (``SimHub.run_clock``: absolute deadlines from the start), until
        the feeds are stopped."""
        self._ff = ff = FastForward()
        step_s = self.hub.cfg.step_ms / 1000
        next_at = trio.current_time()
        await self._feeds_connected.wait()  # at this same instant: until then the executor's task decides
        try:
            while self._stopped_at is None and self.error is None:
                next_at += step_s
                await self._until(next_at)
                if self._stopped_at is not None:
                    break
                await self._deliver(None, self.sim.step())
        finally:
            self._hand_back()
        self.frame.log.debug(
            "market clock: {} waits jumped the virtual clock, {} went through the scheduler", ff.jumps, ff.sleeps
        )

    def _connect(self, now: float) -> None:
        super()._connect(now)
        # the feed's first PING starts the server's {"status":"UP"}, now and every UP_INTERVAL_S
        self._next_up_at = now
        self._keepalive(now)
        self._feeds_connected.set()

    def _keepalive(self, now: float, at_now: bool = True) -> None:
        super()._keepalive(now, at_now)
        while self._next_up_at < now or at_now and self._next_up_at == now:
            self._ustats.messages += 1  # a status frame: read and counted, no book in it
            self._next_up_at += UP_INTERVAL_S

    def _upbit_snapshot(self, code: str, units: int) -> bytes:
        return orderbook_frame(self.hub, code, units, True, self._sub.fmt)

    def _rest(self) -> bytes:
        """A depth request as ``fetch_snapshot`` makes it and the server answers it; what the actors would wait for
        or be refused (the budget full, the server's 429 or 418) is BatchUnsupported."""
        cfg, hub, budget = self._bfeed, self.hub, self._budget
        now = trio.current_time()
        weight = depth_weight(cfg.snapshot_limit)
        ticket = budget.submit(weight, now)
        if budget.poll(ticket, now) is not None:
            budget.cancel(ticket)
            raise BatchUnsupported("feed:binance would wait for its REST weight budget (rest_weight_per_min)")
        self._bstats.rest_weight += weight
        target = binance.depth_query(cfg.symbol, cfg.snapshot_limit)
        limits = hub.rest_limiter.check(client_host(), request_weight(target), now)
        if limits.status is not None:
            raise BatchUnsupported(f"feed:binance would reconnect: depth snapshot HTTP {limits.status}")
        status, headers, body = rest_response(hub, self._symbol, target, hub.cfg.binance_rest_weight_per_min)
        budget.answered(status, {**headers, **limits.headers}, now, now)
        if status != 200:
            raise BatchUnsupported(f"feed:binance would reconnect: depth snapshot HTTP {status}")
        return body
