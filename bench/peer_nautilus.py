"""Peer benchmark: nautilus_trader's BacktestEngine replaying the recorded Binance BTCUSDT depth diffs.

Two parts in one file:

- the driver, ``measure(recording, repeats)`` (stdlib only, imported by the project's Python): makes the
  virtualenv bench/.venv-nautilus if needed, installs the pinned nautilus_trader into it (never a project
  dependency), runs this file there and returns the JSON it prints, or ``{"error": ...}``;
- the script, ``bench/.venv-nautilus/bin/python bench/peer_nautilus.py RECORDING REPEATS`` (imports
  nautilus_trader, nothing from the project), which prints one JSON line.

What the script measures: the recording's REST depth snapshot and its depth diffs, synced the documented
Binance way (drop diffs with u <= lastUpdateId; the first applied one has U <= lastUpdateId + 1 <= u; each
next one starts at the previous u + 1), become nautilus ``OrderBookDeltas``: the snapshot one batch (CLEAR
then an ADD per level, F_SNAPSHOT), each diff one batch (qty 0 -> DELETE, else UPDATE; F_LAST on the last
delta of a batch). A BacktestEngine with a Binance-like venue (L2_MBP books, a cash account holding USDT
and BTC) and a BTCUSDT CurrencyPair replays them to a minimal strategy subscribed to the book deltas: the
data engine keeps the managed book in the cache, the simulated exchange keeps its own matching book, and
on every batch the strategy reads the best bid and best ask from the cached book and counts the update.
That is the work a book-reading nautilus strategy does per diff in a backtest, and the figure is checked
not to be a no-op (the strategy must have seen every batch).

Timed: ``engine.run()`` alone (time.perf_counter; converting the recording and building the engine are
outside), REPEATS times with a fresh engine each, median -> ``engine_run_s`` and ``x_real_time_run``
(recording span / run time; span = last diff E - first diff E of the recording, about 346 s). Also a
one-shot figure: ``whole_process_s`` runs from the import of this file (so it takes in importing
nautilus_trader, reading and converting the recording, building the engine) to the end of the FIRST
repeat's engine.run() and disposal, i.e. what a single replay costs from a cold start; later repeats are
left out of it so the figure does not grow with REPEATS. ``x_real_time_whole`` = span / whole_process_s.
Interpreter start-up before this file is imported is not counted.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import gzip  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venv-nautilus"
NAUTILUS_VERSION = "1.221.0"
PRICE_PRECISION = 2  # every price in the recording has at most 2 decimals (tick 0.01)
SIZE_PRECISION = 6  # sizes: Binance's lot step is 0.00001, but 3 aggregated levels carry a 6th decimal
RUN_TIMEOUT_S = 900


# -- driver (the project's Python) -----------------------------------------------------------------


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "?"


def _installed(python: Path) -> bool:
    """Whether the pinned nautilus_trader is in the venv (looked up on disk: importing it takes seconds)."""
    pattern = f"lib/python*/site-packages/nautilus_trader-{NAUTILUS_VERSION}.dist-info"
    return python.exists() and any(VENV.glob(pattern))


def measure(recording: Path, repeats: int) -> dict[str, Any]:
    """Run the script part in bench/.venv-nautilus (made and filled first if needed); its JSON or an error."""
    python = VENV / "bin" / "python"
    try:
        if not python.exists():
            made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
            if made.returncode != 0:
                return {"error": "could not create bench/.venv-nautilus: " + _last_line(made.stderr)}
        if not _installed(python):
            install = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"nautilus_trader=={NAUTILUS_VERSION}"],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
            if install.returncode != 0:
                return {
                    "error": f"nautilus_trader=={NAUTILUS_VERSION} could not be installed in bench/.venv-nautilus: "
                    + _last_line(install.stderr)
                }
        run = subprocess.run(
            [str(python), str(Path(__file__).resolve()), str(recording.resolve()), str(repeats)],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        return {"error": f"nautilus peer timed out after {exc.timeout:.0f} s: {' '.join(map(str, exc.cmd))}"}
    if run.returncode != 0:
        return {"error": "nautilus peer benchmark failed: " + _last_line(run.stderr)}
    try:
        result: dict[str, Any] = json.loads(_last_line(run.stdout))
    except json.JSONDecodeError:
        return {"error": "nautilus peer printed no JSON: " + _last_line(run.stdout)}
    return result


# -- script (bench/.venv-nautilus) -----------------------------------------------------------------


@dataclass
class Recording:
    snapshot: dict[str, Any]  # the REST body: lastUpdateId, bids, asks
    diffs: list[dict[str, Any]]  # the "data" objects of the depth diffs, in recorded order

    @property
    def span_s(self) -> float:
        return (self.diffs[-1]["E"] - self.diffs[0]["E"]) / 1000


def read_recording(path: str) -> Recording:
    """The first REST depth snapshot and every depth diff (bookTicker and trade lines are skipped)."""
    snapshot: dict[str, Any] | None = None
    diffs: list[dict[str, Any]] = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            _, payload = line.rstrip("\n").split(" ", 1)
            if '"depthUpdate"' in payload:
                diffs.append(json.loads(payload)["data"])
            elif payload.startswith('{"lastUpdateId"') and snapshot is None:
                snapshot = json.loads(payload)
    if snapshot is None or not diffs:
        raise SystemExit(f"{path}: needs a REST depth snapshot and depth diffs")
    return Recording(snapshot, diffs)


def synced_diffs(recording: Recording) -> list[dict[str, Any]]:
    """The diffs that apply on top of the snapshot, per Binance's documented book sync."""
    last_update_id = recording.snapshot["lastUpdateId"]
    applied: list[dict[str, Any]] = []
    for diff in recording.diffs:
        if diff["u"] <= last_update_id:
            continue
        if not applied:
            if not diff["U"] <= last_update_id + 1 <= diff["u"]:
                raise SystemExit(f"first diff after the snapshot leaves a gap: U={diff['U']} u={diff['u']}")
        elif diff["U"] != applied[-1]["u"] + 1:
            raise SystemExit(f"gap in the diffs: U={diff['U']} after u={applied[-1]['u']}")
        applied.append(diff)
    return applied


def to_nautilus(recording: Recording, diffs: list[dict[str, Any]], instrument_id: Any) -> list[Any]:
    """One OrderBookDeltas batch for the snapshot, then one per diff; timestamps are the diffs' E (ns)."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas
    from nautilus_trader.model.enums import BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.objects import Price, Quantity

    last = RecordFlag.F_LAST
    snapshot_flag = RecordFlag.F_SNAPSHOT

    def levels(diff_or_snapshot: dict[str, Any], bids: str, asks: str) -> list[tuple[Any, str, str]]:
        return [(OrderSide.BUY, px, qty) for px, qty in diff_or_snapshot[bids]] + [
            (OrderSide.SELL, px, qty) for px, qty in diff_or_snapshot[asks]
        ]

    # the snapshot has no exchange time: it goes 1 ns before the first diff it is synced with
    ts = diffs[0]["E"] * 1_000_000 - 1
    sequence = recording.snapshot["lastUpdateId"]
    snapshot_levels = levels(recording.snapshot, "bids", "asks")
    batch = [OrderBookDelta.clear(instrument_id, sequence, ts, ts)]
    for i, (side, px, qty) in enumerate(snapshot_levels):
        order = BookOrder(side, Price(float(px), PRICE_PRECISION), Quantity(float(qty), SIZE_PRECISION), 0)
        flags = snapshot_flag | (last if i == len(snapshot_levels) - 1 else 0)
        batch.append(OrderBookDelta(instrument_id, BookAction.ADD, order, flags, sequence, ts, ts))
    data = [OrderBookDeltas(instrument_id, batch)]

    for diff in diffs:
        ts = diff["E"] * 1_000_000
        sequence = diff["u"]
        diff_levels = levels(diff, "b", "a")
        batch = []
        for i, (side, px, qty) in enumerate(diff_levels):
            size = Quantity(float(qty), SIZE_PRECISION)
            action = BookAction.DELETE if size.as_double() == 0 else BookAction.UPDATE
            order = BookOrder(side, Price(float(px), PRICE_PRECISION), size, 0)
            flags = last if i == len(diff_levels) - 1 else 0
            batch.append(OrderBookDelta(instrument_id, action, order, flags, sequence, ts, ts))
        data.append(OrderBookDeltas(instrument_id, batch))
    return data


def build_engine(data: list[Any], instrument: Any) -> tuple[Any, Any]:
    """A fresh BacktestEngine with the venue, the instrument, the data and the book-reading strategy."""
    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.data import OrderBookDeltas
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.objects import Money
    from nautilus_trader.trading.strategy import Strategy

    class BookReader(Strategy):
        """Reads the top of the managed book on every batch of deltas and counts them."""

        def __init__(self, instrument_id: Any) -> None:
            super().__init__()
            self.book_instrument_id = instrument_id
            self.updates_seen = 0
            self.best_bid: Any = None
            self.best_ask: Any = None

        def on_start(self) -> None:
            self.subscribe_order_book_deltas(self.book_instrument_id, book_type=BookType.L2_MBP, managed=True)

        def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
            book = self.cache.order_book(self.book_instrument_id)
            self.best_bid = book.best_bid_price()
            self.best_ask = book.best_ask_price()
            self.updates_seen += 1

    engine = BacktestEngine(config=BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        venue=instrument.id.venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(Decimal("1000000"), USDT), Money(Decimal("10"), BTC)],
        book_type=BookType.L2_MBP,
    )
    engine.add_instrument(instrument)
    engine.add_data(data)
    strategy = BookReader(instrument.id)
    engine.add_strategy(strategy)
    return engine, strategy


def btcusdt_instrument() -> Any:
    from decimal import Decimal

    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Price, Quantity

    return CurrencyPair(
        instrument_id=InstrumentId(Symbol("BTCUSDT"), Venue("BINANCE")),
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC,
        quote_currency=USDT,
        price_precision=PRICE_PRECISION,
        size_precision=SIZE_PRECISION,
        price_increment=Price(10**-PRICE_PRECISION, PRICE_PRECISION),
        size_increment=Quantity(10**-SIZE_PRECISION, SIZE_PRECISION),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
    )


def main(path: str, repeats: int) -> None:
    import nautilus_trader

    recording = read_recording(path)
    diffs = synced_diffs(recording)
    instrument = btcusdt_instrument()
    data = to_nautilus(recording, diffs, instrument.id)

    run_seconds: list[float] = []
    whole_process_s = 0.0
    for _ in range(repeats):
        engine, strategy = build_engine(data, instrument)
        t0 = time.perf_counter()
        engine.run()
        run_seconds.append(time.perf_counter() - t0)
        updates_seen, best_bid, best_ask = strategy.updates_seen, strategy.best_bid, strategy.best_ask
        engine.dispose()
        if not whole_process_s:
            whole_process_s = time.perf_counter() - PROCESS_START
        # the snapshot batch is one more update than the diffs; a no-op run would see none
        if abs(updates_seen - (len(diffs) + 1)) > 10:
            raise SystemExit(f"strategy saw {updates_seen} book updates for {len(diffs)} diffs")
        if best_bid is None or best_ask is None or not best_bid < best_ask:
            raise SystemExit(f"book top after the replay is not a book: bid {best_bid} ask {best_ask}")

    engine_run_s = statistics.median(run_seconds)
    span_s = recording.span_s
    print(
        json.dumps(
            {
                "engine_run_s": round(engine_run_s, 4),
                "span_s": span_s,
                "x_real_time_run": round(span_s / engine_run_s, 1),
                "whole_process_s": round(whole_process_s, 3),
                "x_real_time_whole": round(span_s / whole_process_s, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "diffs": len(diffs),
                "updates_seen": updates_seen,
                "final_best_bid": str(best_bid),
                "final_best_ask": str(best_ask),
                "repeats": repeats,
                "nautilus_trader": nautilus_trader.__version__,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python bench/peer_nautilus.py RECORDING REPEATS")
    main(sys.argv[1], int(sys.argv[2]))
