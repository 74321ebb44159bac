"""Serving the embedded exchange: the market hub (simulated or replayed) behind the Upbit and Binance
servers on one host, until cancelled. Its own module, so the servers can import the hub
(``exchange``) and this module can import the servers, without a cycle."""

from __future__ import annotations

import trio
from loguru import logger

from actors.sim.binance_server import serve_binance_rest, serve_binance_ws
from actors.sim.exchange import SimEndpoints, SimHub
from actors.sim.model import BINANCE_BTC, SimMarket
from actors.sim.settings import SimConfig
from actors.sim.upbit_server import serve_upbit


async def serve_sim(
    cfg: SimConfig,
    seed: int,
    *,
    host: str = "127.0.0.1",
    binance_symbol: str = "BTCUSDT",
    task_status: trio.TaskStatus[SimEndpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the embedded exchange until cancelled; ``started()`` reports its SimEndpoints."""
    hub = SimHub(cfg, seed)
    assert isinstance(hub.market, SimMarket)  # a hub built without a market simulates one
    hub.market.books[binance_symbol] = hub.market.books[BINANCE_BTC]  # served under the configured name
    await serve_hub(hub, host=host, binance_symbol=binance_symbol, task_status=task_status)


async def serve_hub(
    hub: SimHub,
    *,
    host: str = "127.0.0.1",
    binance_symbol: str = "BTCUSDT",
    task_status: trio.TaskStatus[SimEndpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``hub``'s market (simulated or replayed) on the Upbit and Binance servers until cancelled."""
    async with trio.open_nursery() as nursery:
        upbit_port = await nursery.start(serve_upbit, hub, host, 0)
        ws_port = await nursery.start(serve_binance_ws, hub, host, 0, binance_symbol)
        rest_port = await nursery.start(serve_binance_rest, hub, host, 0, binance_symbol)
        nursery.start_soon(hub.run_clock)
        nursery.start_soon(hub.run_faults)
        endpoints = SimEndpoints(
            f"ws://{host}:{upbit_port}/websocket/v1", f"ws://{host}:{ws_port}", f"http://{host}:{rest_port}"
        )
        logger.bind(actor="sim").info("embedded exchange on {} ({})", endpoints, type(hub.market).__name__)
        task_status.started(endpoints)
