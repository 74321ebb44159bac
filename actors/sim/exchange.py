"""The embedded exchange: one market clock, Upbit and Binance servers on 127.0.0.1, and faults.

``serve_sim`` steps the seeded ``SimMarket`` every ``step_ms`` and fans each step out to every
connected client's queue (explicit sends, one bounded queue per connection). A client that falls
behind by a whole queue is disconnected, as a real exchange drops slow consumers.

Faults (``[[sim.faults]]`` at fixed times, or ``fault_rate_per_min`` at seeded random times) go to
every connection of their venue, which applies it at its next market step (``FaultTarget``); REST
faults change how the depth endpoint answers for ``duration_s``.

The hub counts what a status line reports (``statistics()``): connections per venue, open and opened
since the start, WebSocket frames sent per venue (each server connection's sends pass through
``CountedConn``), and faults injected.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from typing import Any, Awaitable, Callable, Mapping, Protocol, Self, Sequence

import attrs
import trio
from loguru import logger

from actors.conventions import SeedStream
from actors.core.vocabulary import Venue
from actors.net.ws import WsConn, WsLimits
from actors.sim import market_file
from actors.sim.coin_market import simulated_market
from actors.sim.limits import RateWindow, WeightLimiter
from actors.sim.model import SimMarket, StepResult
from actors.sim.settings import VENUE_KINDS, FaultConfig, SimConfig

QUEUE_STEPS = 200  # 20 s of market at 100 ms steps


@attrs.frozen
class SimEndpoints:
    upbit_url: str
    binance_ws_url: str
    binance_rest_url: str
    upbit_rest_url: str = ""  # Upbit's quotation REST (the listing, /v1/market/all); "" where none is served


@attrs.frozen
class VenueStatistics:
    """One venue's connections and frames, as of a ``SimHub.statistics()`` call."""

    connected: int  # connections open now
    opened: int  # connections accepted since the exchange started
    frames_sent: int  # WebSocket messages sent since the start (data, replies, status, faults; not pings)


@attrs.frozen
class HubStatistics:
    """What the exchange has done so far (the status lines of ``python -m actors.sim``)."""

    venues: Mapping[Venue, VenueStatistics]
    faults_injected: Mapping[str, int]  # "venue:kind" -> count

    @property
    def faults_total(self) -> int:
        return sum(self.faults_injected.values())


class ServedBook(Protocol):
    """A book as the servers read it: ``SimBook``, or a replay's ``DiffBook``."""

    def top(self, n: int) -> tuple[Sequence[tuple[float, float]], Sequence[tuple[float, float]]]: ...


class ServedMarket(Protocol):
    """What the servers read from a market: ``SimMarket``, or a replay's ``ReplayMarket``."""

    @property
    def books(self) -> Mapping[str, ServedBook]: ...

    @property
    def upbit_codes(self) -> tuple[str, ...]: ...

    @property
    def time_ms(self) -> int: ...

    @property
    def update_id(self) -> int: ...


class MarketHolder(Protocol):
    """What the frame and REST encoders read: a ``market`` (a ``SimHub``, or a replay's ``DirectReplay``)."""

    @property
    def market(self) -> ServedMarket: ...


class SimHub:
    """Owns the market and the per-connection step queues."""

    def __init__(
        self,
        cfg: SimConfig,
        seed: int,
        epoch_ms: int | None = None,
        market: ServedMarket | None = None,
        *,
        model: market_file.MarketModel | None = None,
    ) -> None:
        """``market``: what to serve (a replay's); without it the seeded model's, on ``model`` (the fitted
        model's file as parsed, else read from the file ``cfg`` names)."""
        self.cfg = cfg
        self.market: ServedMarket = (
            market
            if market is not None
            else simulated_market(
                cfg, seed, int(time.time() * 1000) if epoch_ms is None else epoch_ms, market_file.params_of(cfg, model)
            )
        )
        self._queues: dict[int, trio.MemorySendChannel[StepResult]] = {}
        self._next_id = 0
        self._fault_rng = random.Random(seed + SeedStream.FAULTS)
        self.targets: dict[Venue, set[FaultTarget]] = {Venue.UPBIT: set(), Venue.BINANCE: set()}
        self.faults_injected: Counter[str] = Counter()
        self.connections_opened: Counter[str] = Counter()  # per venue, since the start
        self.frames_sent: Counter[str] = Counter()  # per venue, counted by CountedConn
        self.rest_slow_until = -math.inf
        self.rest_fail_until = -math.inf
        self.rest_limiter = WeightLimiter(cfg.binance_rest_weight_per_min, cfg.binance_ban_s)  # per client IP
        self.upbit_connects: dict[str, RateWindow] = {}  # per client IP
        self.upbit_rest_rates: dict[str, RateWindow] = {}  # per client IP: Upbit's REST market group

    def statistics(self) -> HubStatistics:
        """A frozen snapshot of the counters."""
        return HubStatistics(
            {
                venue: VenueStatistics(len(targets), self.connections_opened[venue], self.frames_sent[venue])
                for venue, targets in self.targets.items()
            },
            dict(self.faults_injected),
        )

    def inject(self, fault: FaultConfig) -> None:
        now = trio.current_time()
        self.faults_injected[f"{fault.venue}:{fault.kind}"] += 1
        logger.bind(actor="sim").warning(
            "sim: injecting {} on {} ({} connection(s))", fault.kind, fault.venue, len(self.targets[fault.venue])
        )
        if fault.kind == "rest_slow":
            self.rest_slow_until = now + fault.duration_s
        elif fault.kind == "rest_fail":
            self.rest_fail_until = now + fault.duration_s
        else:
            for target in list(self.targets[fault.venue]):
                target.inject(fault)

    def _random_fault(self, at_s: float) -> FaultConfig:
        rng = self._fault_rng
        kind = rng.choice(self.cfg.fault_kinds)
        venue = rng.choice([v for v, kinds in VENUE_KINDS.items() if kind in kinds])
        return FaultConfig(at_s, venue, kind)

    async def run_faults(self) -> None:
        """Inject the scheduled faults, and random ones at fault_rate_per_min (seeded)."""
        t0 = trio.current_time()
        schedule = sorted(self.cfg.faults, key=lambda f: f.at_s)
        rate = self.cfg.fault_rate_per_min / 60
        next_random = t0 + self._fault_rng.expovariate(rate) if rate else math.inf
        while True:
            next_scheduled = t0 + schedule[0].at_s if schedule else math.inf
            when = min(next_scheduled, next_random)
            if when == math.inf:
                return
            await trio.sleep_until(when)
            if when == next_scheduled:
                self.inject(schedule.pop(0))
            else:
                self.inject(self._random_fault(when - t0))
                next_random = when + self._fault_rng.expovariate(rate)

    async def follow(self, on_step: Callable[[StepResult], Awaitable[None]]) -> None:
        """Call ``on_step`` for every market step until this client falls a whole queue behind."""
        send, receive = trio.open_memory_channel[StepResult](QUEUE_STEPS)
        self._next_id += 1
        key = self._next_id
        self._queues[key] = send
        try:
            async for step in receive:
                self._dequeued(key, step)
                await on_step(step)
        finally:
            self.close_queue(key)

    def _dequeued(self, key: int, step: StepResult) -> None:
        """A client's queue handed out ``step`` (a replay counts the bytes it holds per queue)."""

    def close_queue(self, key: int) -> None:
        send = self._queues.pop(key, None)
        if send is not None:
            send.close()

    def publish(self, result: StepResult) -> None:
        for key, send in list(self._queues.items()):
            try:
                send.send_nowait(result)
            except trio.WouldBlock:
                logger.bind(actor="sim").warning(
                    "sim: client {} is {} steps behind; disconnecting it", key, QUEUE_STEPS
                )
                self.close_queue(key)

    async def wait_book(self) -> None:
        """Return once the Binance book can be served by REST (always, for the simulated market)."""

    async def run_clock(self) -> None:
        """Step the market on a fixed grid of step_ms (absolute deadlines: no drift)."""
        step_s = self.cfg.step_ms / 1000
        next_at = trio.current_time()
        while True:
            next_at += step_s
            await trio.sleep_until(next_at)
            assert isinstance(self.market, SimMarket)  # a hub on another market (ReplayHub) runs its own clock
            self.publish(self.market.step())


class CountedConn:
    """A server connection whose sends are counted per venue (``SimHub.frames_sent``); everything else
    is the connection's own."""

    def __init__(self, conn: WsConn, counter: Counter[str], venue: str) -> None:
        self._conn = conn
        self._counter = counter
        self._venue = venue

    async def send(self, message: bytes | str) -> None:
        await self._conn.send(message)
        self._counter[self._venue] += 1

    async def receive(self) -> bytes | str:
        return await self._conn.receive()

    async def ping(self, payload: bytes | None = None) -> None:
        await self._conn.ping(payload)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self._conn.close(code, reason)

    async def abort(self) -> None:
        await self._conn.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)  # any other WsConn attribute, unchanged


class FaultTarget:
    """A server connection that can be told to misbehave; venues add their own kinds."""

    venue: Venue  # set by each venue's server

    def __init__(self, hub: SimHub, conn: WsConn) -> None:
        self.hub = hub
        self.conn = CountedConn(conn, hub.frames_sent, self.venue)
        self._faults: list[FaultConfig] = []
        self.stalled_until = -math.inf

    def __enter__(self) -> Self:
        self.hub.targets[self.venue].add(self)
        self.hub.connections_opened[self.venue] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.hub.targets[self.venue].discard(self)

    def inject(self, fault: FaultConfig) -> None:
        self._faults.append(fault)

    @property
    def stalled(self) -> bool:
        """Stalled: the socket stays open, no market data is sent."""
        return trio.current_time() < self.stalled_until

    def garbage(self) -> bytes | str:
        raise NotImplementedError

    async def venue_fault(self, fault: FaultConfig) -> None:
        raise NotImplementedError

    async def apply_faults(self) -> None:
        while self._faults:
            fault = self._faults.pop(0)
            kind = fault.kind
            if kind == "close":
                await self.conn.close(1000)
            elif kind == "drop":
                await self.conn.abort()
            elif kind == "stall":
                self.stalled_until = trio.current_time() + fault.duration_s
            elif kind == "garbage":
                await self.conn.send(self.garbage())
            elif kind == "oversized":
                junk = self.garbage()  # just over a client's default limit (feeds.*.max_message_bytes)
                await self.conn.send(junk * (WsLimits().max_message_bytes // len(junk) + 1))
            else:
                await self.venue_fault(fault)
