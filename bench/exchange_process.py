"""The replay exchange in a process of its own, for the latency benchmark (bench/run.py).

``python -m bench.exchange_process RECORDING SPEED`` serves RECORDING with the embedded exchange's
Upbit and Binance servers on 127.0.0.1 (Upbit synthesised from the recorded Binance mid, as in a
replay session), prints its endpoints as one JSON line, and exits when the replay has ended. The
session under test then runs in another process with ``market = "live"`` pointed at these
endpoints, so the exchange's own work (stepping and formatting books, framing) does not run on the
client's event loop: the two processes run on different cores, as a client and a real exchange do.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    from actors import config
    from actors.logs import configure_logging
    from actors.sim.replay import ReplayHub, ReplayPacer
    from actors.sim.serve import serve_hub
    from actors.wiring import prepare_replay

    recording, speed = argv[0], float(argv[1])
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        # Upbit synthesised on the OU market, as bench/run.py's sessions (MECHANICS_MARKET): fills to time
        {
            "session": {"market": "replay"},
            "replay": {"files": [recording], "speed": speed},
            "sim": {"market_model": "ou"},
        },
    )
    configure_logging(None, stderr_level="ERROR")
    market = prepare_replay(cfg)
    pacer = ReplayPacer(market, speed, f"{speed:g}x")
    hub = ReplayHub(market, cfg.sim, cfg.session.seed, pacer)

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            endpoints = await nursery.start(partial(serve_hub, hub, binance_symbol=cfg.feeds.binance.symbol))
            print(
                json.dumps(
                    {
                        "upbit_url": endpoints.upbit_url,
                        "binance_ws_url": endpoints.binance_ws_url,
                        "binance_rest_url": endpoints.binance_rest_url,
                    }
                ),
                flush=True,
            )
            await pacer.finished.wait()
            nursery.cancel_scope.cancel()

    trio.run(serve)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
