"""What the many-coin simulated market costs ([sim] coins = N): ``python -m bench.sim_coins [N ...]``.

Two figures per N (default 0, 10, 150), printed as a table:

- market steps/s: the market's ``step()`` alone, as fast as it goes (the 100 ms grid needs 10 a second);
- serving: the embedded exchange (``serve_hub``: both venues' servers and the market clock) on the in-memory
  network under a virtual clock, with one Upbit client subscribed to every code and one Binance client
  subscribed to every symbol's ``@depth@100ms`` on one combined connection, each decoding what it receives
  (``actors.core.venues``). Reported: frames per simulated second (what a real-time session receives), and the
  CPU seconds per simulated second (the share of one core the exchange and its two clients take at real time;
  under 1.0 they keep up).
"""

from __future__ import annotations

import sys
import time

import trio
import trio.testing

from actors.core.venues import binance, upbit
from actors.net.memory import memory_network
from actors.net.ws import open_ws
from actors.sim import market_file
from actors.sim.coin_market import CoinsMarket, simulated_market
from actors.sim.exchange import SimHub
from actors.sim.serve import serve_hub, simulated_hub
from actors.sim.settings import SimConfig

STEPS = 600  # a minute of market for the step rate
SERVE_S = 30.0  # simulated seconds served


def steps_per_s(coins: int) -> float:
    cfg = SimConfig(coins=coins)
    market = simulated_market(cfg, 1, 0, market_file.params_of(cfg))
    started = time.process_time()
    for _ in range(STEPS):
        market.step()
    return STEPS / (time.process_time() - started)


async def _clients(hub: SimHub, counts: dict[str, int]) -> None:
    """Serve ``hub`` and read every book of it on both venues for SERVE_S simulated seconds."""
    memory_network()
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_hub, hub)
        market = hub.market
        symbols = ["BTCUSDT", *(market.coins.binance_books if isinstance(market, CoinsMarket) else ())]
        streams = tuple(f"{s.lower()}@depth@100ms" for s in symbols)

        async def read_upbit() -> None:
            async with open_ws(endpoints.upbit_url) as conn:
                await conn.send(upbit.subscribe_request("bench", market.upbit_codes))
                while True:
                    upbit.decode(await conn.receive())
                    counts["upbit"] += 1

        async def read_binance() -> None:
            async with open_ws(endpoints.binance_ws_url + binance.combined_path(streams)) as conn:
                while True:
                    binance.decode(await conn.receive())
                    counts["binance"] += 1

        nursery.start_soon(read_upbit)
        nursery.start_soon(read_binance)
        await trio.sleep(SERVE_S)
        nursery.cancel_scope.cancel()


def serving(coins: int) -> tuple[float, float]:
    """(frames per simulated second, CPU seconds per simulated second) of serving and reading ``coins``."""
    hub = simulated_hub(SimConfig(coins=coins), 1)
    counts = {"upbit": 0, "binance": 0}
    started = time.process_time()
    trio.run(_clients, hub, counts, clock=trio.testing.MockClock(autojump_threshold=0))
    cpu = time.process_time() - started
    return (counts["upbit"] + counts["binance"]) / SERVE_S, cpu / SERVE_S


def main(argv: list[str]) -> int:
    from actors.logs import configure_logging

    configure_logging(None, stderr_level="ERROR")
    print(f"{'coins':>5} {'books':>6} {'steps/s':>8} {'frames/s':>9} {'core share':>10}")
    for coins in [int(a) for a in argv] or [0, 10, 150]:
        cfg = SimConfig(coins=coins)
        books = len(simulated_market(cfg, 1, 0, market_file.params_of(cfg)).books)
        rate = steps_per_s(coins)
        frames, share = serving(coins)
        print(f"{coins:>5} {books:>6} {rate:>8.0f} {frames:>9.0f} {share:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
