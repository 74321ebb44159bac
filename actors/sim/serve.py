"""Serving the embedded exchange: the market hub (simulated or replayed) behind the Upbit and Binance servers on one
host, until cancelled. Its own module, so the servers can import the hub (``exchange``) and this module can import the
servers, without a cycle."""

from __future__ import annotations

import attrs
import trio
from loguru import logger

from actors.sim import market_file
from actors.sim.binance_server import serve_binance_rest, serve_binance_ws
from actors.sim.exchange import SimEndpoints, SimHub
from actors.sim.model import BINANCE_BTC, SimMarket
from actors.sim.settings import SimConfig
from actors.sim.upbit_server import serve_upbit, serve_upbit_rest


@attrs.frozen
class SimPorts:
    """Where the servers listen; 0 = any free port (the default: the endpoints say which)."""

    upbit: int = 0
    binance_ws: int = 0
    binance_rest: int = 0
    upbit_rest: int = 0


ANY_PORTS = SimPorts()


def simulated_hub(
    cfg: SimConfig, seed: int, binance_symbol: str = "BTCUSDT", model: market_file.MarketModel | None = None
) -> SimHub:
    """A hub on the seeded model's market, its Binance book served under ``binance_symbol``; ``model``: the
    fitted model's file as parsed (else read from the file ``cfg`` names)."""
    hub = SimHub(cfg, seed, model=model)
    assert isinstance(hub.market, SimMarket)  # a hub built without a market simulates one
    hub.market.books[binance_symbol] = hub.market.books[BINANCE_BTC]  # served under the configured name
    return hub


async def serve_sim(
    cfg: SimConfig,
    seed: int,
    *,
    host: str = "127.0.0.1",
    ports: SimPorts = ANY_PORTS,
    binance_symbol: str = "BTCUSDT",
    model: market_file.MarketModel | None = None,
    task_status: trio.TaskStatus[SimEndpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the embedded exchange until cancelled; ``started()`` reports its SimEndpoints."""
    hub = simulated_hub(cfg, seed, binance_symbol, model)
    await serve_hub(hub, host=host, ports=ports, binance_symbol=binance_symbol, task_status=task_status)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL


async def serve_hub(
    hub: SimHub,
    *,
    host: str = "127.0.0.1",
    ports: SimPorts = ANY_PORTS,
    binance_symbol: str = "BTCUSDT",
    task_status: trio.TaskStatus[SimEndpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``hub``'s market (simulated or replayed) on the Upbit and Binance servers until cancelled.

    A port that cannot be bound (in use, a host that is not ours) raises OSError before ``started()``."""
    async with trio.open_nursery() as nursery:
        upbit_port = await nursery.start(serve_upbit, hub, host, ports.upbit)
        ws_port = await nursery.start(serve_binance_ws, hub, host, ports.binance_ws, binance_symbol)
        rest_port = await nursery.start(serve_binance_rest, hub, host, ports.binance_rest, binance_symbol)
        upbit_rest_port = await nursery.start(serve_upbit_rest, hub, host, ports.upbit_rest)
        nursery.start_soon(hub.run_clock)
        nursery.start_soon(hub.run_faults)
        at = _url_host(host)
        endpoints = SimEndpoints(
            f"ws://{at}:{upbit_port}/websocket/v1",
            f"ws://{at}:{ws_port}",
            f"http://{at}:{rest_port}",
            f"http://{at}:{upbit_rest_port}",
        )
        logger.bind(actor="sim").info("embedded exchange on {} ({})", endpoints, type(hub.market).__name__)
        task_status.started(endpoints)
