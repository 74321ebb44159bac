"""The actor pipeline alone, fed pre-encoded frames: feeds -> aggregator -> executor -> collector.

``FrameNetwork`` stands in for the network at the WebSocket seam (``actors.ws.use_network``): each
feed's connection hands out its venue's pre-encoded frames as fast as the feed reads them, in the
order of one shared script (so the venues interleave as they do on the wire), and the Binance REST
snapshot is answered from the recording. No exchange simulator and no WebSocket framing run in the
process: what is measured is our side, from "frame received" to "fill event written", through the
real session (``run_session``: supervisors, channels, conflation, the collector's file).

The script: the recorded BTCUSDT diffs, each followed by two Upbit books (KRW-BTC, and KRW-BTC or
KRW-USDT in turn) synthesised by the market model pinned to the recorded Binance mid, the same 2:1
mix as a replay of the recording with Upbit synthesised.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]


def build_script(snapshot: str, diffs: list[str]) -> list[tuple[str, bytes]]:
    """(venue, frame) in delivery order; starts with one book per Upbit code (the Upbit feed reports
    ready once it has both, and only then does the session start the Binance feed)."""
    import attrs

    from actors.core.book import DiffBook
    from actors.core.venues import binance
    from actors.sim import market_file
    from actors.sim.model import UPBIT_BTC, UPBIT_USDT, SimMarket
    from actors.sim.settings import SimConfig
    from actors.sim.upbit_server import orderbook_frame

    snap = binance.decode_snapshot(snapshot)
    book = DiffBook()
    book.reset(snap.bids, snap.asks, snap.last_update_id)
    mid = (book.best_bid[0] + book.best_ask[0]) / 2
    first = binance.decode(diffs[0])

    class _Hub:
        market = SimMarket(
            attrs.evolve(SimConfig(), btc_usdt=mid), 1, first.event_ms, market_file.params_of(SimConfig())
        )

    def upbit(code: str) -> bytes:
        return orderbook_frame(_Hub, code, 15, False, "DEFAULT")

    script = [("upbit", upbit(UPBIT_BTC)), ("upbit", upbit(UPBIT_USDT))]
    for i, frame in enumerate(diffs):
        diff = binance.decode(frame)
        if diff.final_id > snap.last_update_id:
            book.apply(diff.bids, diff.asks, diff.final_id)
            mid = (book.best_bid[0] + book.best_ask[0]) / 2
        script.append(("binance", frame.encode()))
        _Hub.market.step(btc_usdt=mid)
        script.append(("upbit", upbit(UPBIT_BTC)))
        script.append(("upbit", upbit(UPBIT_USDT if i % 2 else UPBIT_BTC)))
    return script


class _Conn:
    def __init__(self, network: FrameNetwork, venue: str) -> None:
        self._network, self._venue = network, venue

    async def receive(self) -> bytes:
        while (frame := self._network.take(self._venue)) is None:
            await self._network.turn.park()
        await trio.lowlevel.checkpoint()  # a socket read is a checkpoint too
        return frame

    def receive_nowait(self) -> bytes | None:
        return self._network.take(self._venue)

    async def send(self, message: bytes | str) -> None:
        await trio.lowlevel.checkpoint()  # subscriptions and pings: nobody answers


class FrameNetwork:
    """Hands out the script's frames, each venue its own in order, at most ``window`` script positions
    ahead of the oldest frame not yet read (what the sockets hold when a sender outpaces the reader);
    then waits forever."""

    def __init__(self, script: list[tuple[str, bytes]], snapshot: str, window: int = 64) -> None:
        self._queues: dict[str, deque[tuple[int, bytes]]] = {"upbit": deque(), "binance": deque()}
        for i, (venue, frame) in enumerate(script):
            self._queues[venue].append((i, frame))
        self._snapshot = snapshot.encode()
        self._taken = bytearray(len(script))
        self._low = 0  # the oldest script position not yet read
        self.window = window
        self.turn = trio.lowlevel.ParkingLot()
        self.started_at: float | None = None  # perf_counter when the first Binance frame was read
        self.finished_at: float | None = None  # perf_counter when the last frame was read
        self.done = trio.Event()

    def take(self, venue: str) -> bytes | None:
        queue = self._queues[venue]
        if not queue or queue[0][0] >= self._low + self.window:
            return None
        i, frame = queue.popleft()
        if venue == "binance" and self.started_at is None:
            self.started_at = time.perf_counter()
        self._taken[i] = 1
        if i == self._low:
            while self._low < len(self._taken) and self._taken[self._low]:
                self._low += 1
            self.turn.unpark_all()
            if self._low == len(self._taken):
                self.finished_at = time.perf_counter()
                self.done.set()
        return frame

    @asynccontextmanager
    async def connect_ws(self, url: str, connect_timeout_s: float = 10.0, limits=None):
        yield _Conn(self, "binance" if "/stream" in url else "upbit")

    def http_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=self._snapshot, headers={"content-type": "application/json"})

        return httpx.MockTransport(handle)


def run_once(script: list[tuple[str, bytes]], snapshot: str, window: int = 64) -> dict[str, Any]:
    """One session over the script; updates/s from the first Binance frame to the last frame handed out,
    and the same including the drain (the session stopping and writing everything)."""
    from actors.logs import configure_logging
    from actors.net.seam import use_network
    from actors.records.paths import SessionPaths
    from actors.session import run_session
    from bench.run import session_config

    with tempfile.TemporaryDirectory() as tmp:
        # the recording's 346 s pass in about a second here: the strategy's clocks are shortened to
        # match, so that it trades and the collector writes fill events during the run
        cfg = session_config(tmp, "live", 3600, {"warmup_s": 0, "baseline_halflife_s": 0.05, "max_hold_s": 0.05})
        configure_logging(None, stderr_level="ERROR")
        network = FrameNetwork(script, snapshot, window)

        async def main():
            use_network(network)
            stop = trio.Event()

            async def stop_when_done():
                await network.done.wait()
                stop.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_when_done)
                result = await run_session(cfg, SessionPaths(Path(tmp), "bench"), handle_signals=False, stop=stop)
                nursery.cancel_scope.cancel()
            return result

        result = trio.run(main)
        drained_at = time.perf_counter()
        kpi = result.kpi
    assert network.started_at is not None and network.finished_at is not None, "the script was not consumed"
    updates = sum(1 for venue, _ in script[2:])
    feeds = kpi["feeds"]
    return {
        "updates": updates,
        "seconds": network.finished_at - network.started_at,
        "seconds_with_drain": drained_at - network.started_at,
        "updates_per_s": updates / (network.finished_at - network.started_at),
        "updates_per_s_with_drain": updates / (drained_at - network.started_at),
        "books_published": sum(f["books"] for f in feeds.values()),
        "books_superseded_in_batches": sum(f["books_superseded"] for f in feeds.values()),
        "books_dropped_aggregator_full": sum(f["books_dropped"] for f in feeds.values()),
        "frames_per_batch": round(
            sum(f["messages"] for f in feeds.values()) / max(1, sum(f["batches"] for f in feeds.values())), 2
        ),
        "window": window,
        "decisions": kpi["pipeline_latency_ms"]["wire_to_decision"].get("count"),
        "fill_events_written": kpi["fill_events_written"],
        "status": kpi["status"],
    }


if __name__ == "__main__":
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.run import recorded_binance_frames

    snap, diffs = recorded_binance_frames()
    script = build_script(snap, diffs)
    for window in (1, 64):
        print(json.dumps(run_once(script, snap, window), indent=2))
