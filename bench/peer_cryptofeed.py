"""Peer benchmark: cryptofeed's own Binance order-book handling fed our recorded frames.

Run by bench/run.py with the interpreter of bench/.venv-peer (cryptofeed is never a project
dependency): ``python bench/peer_cryptofeed.py RECORDING REPEATS``; prints JSON {"frames_per_s": ...}.

Offline setup: the symbol table (normally fetched from Binance's REST API) is given directly, and the
REST depth snapshot is the recording's own. Each frame goes through ``Binance.message_handler``
(json parse with Decimal, stream routing, update-id check, Decimal level updates into the
order_book C extension, the L2 book callback), the same work cryptofeed does per frame live.
"""

import asyncio
import gzip
import json
import statistics
import sys
import time

from cryptofeed.defines import L2_BOOK
from cryptofeed.exchanges import Binance
from cryptofeed.symbols import Symbol, Symbols


def frames(path):
    snapshot, diffs = None, []
    with gzip.open(path, "rt") as f:
        for line in f:
            _, payload = line.rstrip("\n").split(" ", 1)
            if '"depthUpdate"' in payload:
                diffs.append(payload)
            elif payload.startswith('{"lastUpdateId"') and snapshot is None:
                snapshot = payload
    return snapshot, diffs


async def run_once(snapshot: str, diffs: list) -> float:
    updates = 0

    async def on_book(book, receipt_timestamp):
        nonlocal updates
        updates += 1

    feed = Binance(symbols=["BTC-USDT"], channels=[L2_BOOK], callbacks={L2_BOOK: on_book})

    class _Http:
        async def read(self, *args, **kwargs):
            return snapshot

    feed.http_conn = _Http()
    t0 = time.perf_counter()
    for frame in diffs:
        await feed.message_handler(frame, None, time.time())
    elapsed = time.perf_counter() - t0
    assert updates >= len(diffs) - 10, (updates, len(diffs))  # every applied diff reached the callback
    return len(diffs) / elapsed


def main() -> None:
    path, repeats = sys.argv[1], int(sys.argv[2])
    symbol = Symbol("BTC", "USDT")
    Symbols.set(
        Binance.id,
        {symbol.normalized: "BTCUSDT"},
        {"tick_size": {}, "instrument_type": {symbol.normalized: symbol.type}},
    )
    snapshot, diffs = frames(path)
    rates = [asyncio.run(run_once(snapshot, diffs)) for _ in range(repeats)]
    import cryptofeed

    print(
        json.dumps(
            {
                "frames_per_s": round(statistics.median(rates)),
                "frames": len(diffs),
                "cryptofeed": getattr(cryptofeed, "__version__", "2.x"),
            }
        )
    )


if __name__ == "__main__":
    main()
