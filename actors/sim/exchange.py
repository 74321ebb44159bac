"""The embedded exchange: one market clock, Upbit and Binance servers on 127.0.0.1.

``serve_sim`` steps the seeded ``SimMarket`` every ``step_ms`` and fans each step out to every
connected client's queue (explicit sends, one bounded queue per connection). A client that falls
behind by a whole queue is disconnected, as a real exchange drops slow consumers.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

import attrs
import trio
from loguru import logger

from actors.config import SimConfig
from actors.sim.model import SimMarket, StepResult

QUEUE_STEPS = 200  # 20 s of market at 100 ms steps


@attrs.frozen
class SimEndpoints:
    upbit_url: str
    binance_ws_url: str
    binance_rest_url: str


class SlowConsumer(Exception):
    pass


class SimHub:
    """Owns the market and the per-connection step queues."""

    def __init__(self, cfg: SimConfig, seed: int, epoch_ms: int | None = None) -> None:
        self.cfg = cfg
        self.market = SimMarket(cfg, seed, int(time.time() * 1000) if epoch_ms is None else epoch_ms)
        self._queues: dict[int, trio.MemorySendChannel[StepResult]] = {}
        self._next_id = 0
        self.steps = 0
        self.connections = 0

    async def follow(self, on_step: Callable[[StepResult], Awaitable[None]]) -> None:
        """Call ``on_step`` for every market step until this client falls a whole queue behind."""
        send, receive = trio.open_memory_channel[StepResult](QUEUE_STEPS)
        self._next_id += 1
        key = self._next_id
        self._queues[key] = send
        self.connections += 1
        try:
            async for step in receive:
                await on_step(step)
        finally:
            self.close_queue(key)

    def close_queue(self, key: int) -> None:
        send = self._queues.pop(key, None)
        if send is not None:
            send.close()

    def publish(self, result: StepResult) -> None:
        for key, send in list(self._queues.items()):
            try:
                send.send_nowait(result)
            except trio.WouldBlock:
                logger.bind(actor="sim").warning("sim: client {} is {} steps behind; disconnecting it",
                                                 key, QUEUE_STEPS)
                self.close_queue(key)

    async def run_clock(self) -> None:
        """Step the market on a fixed grid of step_ms (absolute deadlines: no drift)."""
        step_s = self.cfg.step_ms / 1000
        next_at = trio.current_time()
        while True:
            next_at += step_s
            await trio.sleep_until(next_at)
            self.publish(self.market.step())
            self.steps += 1


async def serve_sim(cfg: SimConfig, seed: int, *, host: str = "127.0.0.1",
                    binance_symbol: str = "BTCUSDT",
                    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Run the embedded exchange until cancelled; ``started()`` reports its SimEndpoints."""
    from actors.sim.binance_server import serve_binance_rest, serve_binance_ws
    from actors.sim.upbit_server import serve_upbit

    hub = SimHub(cfg, seed)
    async with trio.open_nursery() as nursery:
        upbit_port = await nursery.start(serve_upbit, hub, host, 0)
        ws_port = await nursery.start(serve_binance_ws, hub, host, 0, binance_symbol)
        rest_port = await nursery.start(serve_binance_rest, hub, host, 0, binance_symbol)
        nursery.start_soon(hub.run_clock)
        endpoints = SimEndpoints(f"ws://{host}:{upbit_port}/websocket/v1", f"ws://{host}:{ws_port}",
                                 f"http://{host}:{rest_port}")
        logger.bind(actor="sim").info("embedded exchange on {} (seed {})", endpoints, seed)
        task_status.started(endpoints)
