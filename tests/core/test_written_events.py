"""The synthesised venue's books handed over as events (``upbit.written_book``, ``binance.written_diff``) are the
events the feeds decode from the frames the simulated exchange writes for them: the batched replay skips the
encode-and-decode round trip and must see the same thing (tests/actors/test_replay_batch.py checks whole
sessions)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from actors.core.venues import binance, upbit
from actors.sim.binance_server import diff_payload
from actors.sim.model import BinanceDiff
from actors.sim.upbit_server import orderbook_frame


def _side(rng: random.Random, mid: float, ask: bool, n: int) -> list[tuple[float, float]]:
    step = mid * rng.choice([1e-5, 1e-4, 3e-3])
    prices = [mid + (1 if ask else -1) * step * (i + 1) for i in range(n)]
    sizes = [rng.choice([rng.random() * 3, rng.expovariate(1) * 1e-6, 1e-9, 12345.678912345]) for _ in range(n)]
    return list(zip(prices, sizes))


class _Book:
    def __init__(self, bids: list, asks: list) -> None:
        self.bids, self.asks = bids, asks

    def top(self, n: int) -> tuple[list, list]:
        return self.bids[:n], self.asks[:n]


def test_a_written_upbit_book_is_the_event_its_frame_decodes_to():
    rng = random.Random(7)
    for _ in range(2000):
        mid = rng.choice([1.4e8, 1385.5, 0.0123, 2.5e7])
        units = rng.choice([1, 5, 15, 30])
        bids, asks = _side(rng, mid, False, rng.randint(0, units + 3)), _side(rng, mid, True, rng.randint(0, units + 3))
        hub = SimpleNamespace(market=SimpleNamespace(books={"KRW-BTC": _Book(bids, asks)}, time_ms=1_723_000_000_123))
        (decoded,) = upbit.decode(orderbook_frame(hub, "KRW-BTC", units, False, "DEFAULT"))
        written = upbit.written_book("KRW-BTC", hub.market.time_ms, bids, asks, units)
        assert written == decoded


def test_a_crossed_book_is_left_to_the_frame():
    assert upbit.written_book("KRW-BTC", 1, [(101.0, 1.0)], [(100.0, 1.0)], 5) is None


def test_a_written_binance_diff_is_the_event_its_frame_decodes_to():
    rng = random.Random(8)
    for i in range(2000):
        mid = rng.choice([60_000.123456789, 0.031234567891, 1.0])
        bids = [(p, rng.choice([0.0, q])) for p, q in _side(rng, mid, False, rng.randint(0, 20))]
        asks = [(p, rng.choice([0.0, q])) for p, q in _side(rng, mid, True, rng.randint(0, 20))]
        diff = BinanceDiff(100 + i, 100 + i + rng.randint(0, 5), tuple(bids), tuple(asks))
        payload = diff_payload("BTCUSDT", 1_723_000_000_456, diff)
        decoded = binance.decode(f'{{"stream":"btcusdt@depth@100ms","data":{payload}}}')
        written = binance.written_diff("BTCUSDT", 1_723_000_000_456, diff.first_id, diff.final_id, diff.bids, diff.asks)
        assert written == decoded
