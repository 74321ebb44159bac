"""Interop check: cryptofeed's own Binance and Upbit feeds against ``python -m actors.sim`` (docs/simulator.md).

Two parts in one file (as bench/peer_nautilus.py):

- the driver, ``python -m bench.interop [--seconds S] [--config PATH]`` (the project's Python, ``make interop``):
  makes bench/.venv-peer with the pinned cryptofeed if it is missing (never a project dependency), starts the
  exchange as a subprocess and reads its endpoints from its first stdout line, runs the peer part against
  them for S seconds, stops the exchange with SIGINT and reads its totals line, checks, and prints a JSON
  summary. Exit 0 when every check passed, 1 with the failed checks listed, 2 when the check cannot run
  (cryptofeed not installable, the exchange did not start).
- the peer, ``bench/.venv-peer/bin/python bench/interop.py --peer ENDPOINTS_JSON SECONDS`` (imports cryptofeed,
  nothing of the project): prints one JSON line of what cryptofeed saw.

How cryptofeed is pointed at the simulator, with its feeds otherwise unmodified: subclasses of ``Binance`` and
``Upbit`` whose ``websocket_endpoints`` / ``rest_endpoints`` are the simulator's URLs; the symbol tables given
offline (``Symbols.set``, as bench/peer_cryptofeed.py), since cryptofeed would fetch them from the real
exchanges; and cryptofeed's ``WSAsyncConn`` refuses any address that is not ``wss://``, so a subclass passes
that check and connects to the simulator's ``ws://`` address (connect, ping options, reads and writes are
cryptofeed's own). Its Binance feed subscribes ``btcusdt@depth@100ms`` and ``btcusdt@bookTicker`` on one
combined connection and syncs the book from ``/api/v3/depth?limit=1000``; its Upbit feed subscribes KRW-BTC and
KRW-USDT order books in SIMPLE format (``isOnlyRealtime``), and keeps the connection alive with protocol pings
every 10 s only (websockets' default in cryptofeed), never the text ``PING``.

The checks:
- one connection per venue: the exchange's totals (connections it accepted) and cryptofeed's own connects;
- no gap in the Binance book: cryptofeed logs "Missing book update detected" and resyncs on a gap; neither a
  gap nor a second REST snapshot may happen;
- no crossed book: best bid < best ask on every book callback, both venues, and on every bookTicker;
- bookTicker agrees with the book. The rule: a bookTicker is sent on every change of the touch and its ``u``
  is the order-book update id of that change, so the touch at update id N is the latest bookTicker with
  ``u <= N``. For every Binance book callback (cryptofeed's ``sequence_number`` N: a diff's ``u``, or the
  snapshot's ``lastUpdateId``), the book's best bid, its size, best ask and its size must equal that
  ticker's ``b``, ``B``, ``a``, ``A`` exactly (as Decimals). Compared after the run, over every ticker
  received, so the order of the two streams on the connection does not matter; books before the first
  ticker (a touch set before the connection) are not comparable, and at least one book must be compared;
- books for each Upbit code (KRW-BTC and KRW-USDT) and for Binance BTCUSDT;
- cryptofeed logged no warning or error; the exchange stopped with status 0 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "bench" / ".venv-peer"
CRYPTOFEED_VERSION = "2.4.1"
DEFAULT_SECONDS = 130.0  # past the Upbit idle limit (~120 s) and six Binance server pings
START_S = 60.0  # the exchange's first stdout line
STOP_S = 15.0
PEER_GRACE_S = 60.0  # the peer's imports and its feeds' shutdown, on top of its seconds
TOTALS = re.compile(r"totals after [\d.]+ s: upbit (\d+) opened, (\d+) frames; binance (\d+) opened, (\d+) frames")


# -- driver (the project's Python) -----------------------------------------------------------------


class CannotRun(Exception):
    """The check could not run at all (exit status 2)."""


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "?"


def _installed(python: Path) -> bool:
    """Whether the pinned cryptofeed is in the venv (looked up on disk)."""
    pattern = f"lib/python*/site-packages/cryptofeed-{CRYPTOFEED_VERSION}.dist-info"
    return python.exists() and any(PEER_VENV.glob(pattern))


def ensure_peer_venv() -> Path:
    """bench/.venv-peer's Python with cryptofeed, made as bench/run.py's peer() makes it; CannotRun otherwise."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            raise CannotRun(f"could not create {PEER_VENV}: {_last_line(made.stderr)}")
    if not _installed(python):
        print(f"interop: installing cryptofeed {CRYPTOFEED_VERSION} into {PEER_VENV} ...", file=sys.stderr, flush=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"cryptofeed=={CRYPTOFEED_VERSION}"],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            raise CannotRun(
                f"cryptofeed {CRYPTOFEED_VERSION} could not be installed into {PEER_VENV} (it needs PyPI): "
                f"{_last_line(install.stderr)}"
            )
    return python


def run_peer(python: Path, endpoints: dict[str, str], seconds: float) -> dict[str, Any]:
    args = [str(python), str(Path(__file__).resolve()), "--peer", json.dumps(endpoints), str(seconds)]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + PEER_GRACE_S)
    except subprocess.TimeoutExpired:
        return {"error": f"the cryptofeed peer did not end within {seconds + PEER_GRACE_S:g} s"}
    if proc.returncode != 0:
        return {"error": f"the cryptofeed peer failed (exit {proc.returncode}): {_last_line(proc.stderr)}"}
    return json.loads(_last_line(proc.stdout))


def exchange_totals(stderr: str) -> dict[str, int] | None:
    match = TOTALS.search(stderr)
    if match is None:
        return None
    upbit_opened, upbit_frames, binance_opened, binance_frames = map(int, match.groups())
    return {
        "upbit_opened": upbit_opened,
        "upbit_frames": upbit_frames,
        "binance_opened": binance_opened,
        "binance_frames": binance_frames,
    }


def checks(peer: dict[str, Any], totals: dict[str, int] | None, returncode: int | None, stderr: str) -> dict:
    """Each check: {"ok": bool, "detail": what was seen}."""
    out: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: Any) -> None:
        out[name] = {"ok": bool(ok), "detail": detail}

    if "error" in peer:
        check("cryptofeed ran", False, peer["error"])
        peer = {}
    connects = peer.get("connects", {})
    check(
        "one connection per venue (exchange)",
        totals is not None and totals["upbit_opened"] == 1 and totals["binance_opened"] == 1,
        totals if totals is not None else "no totals line from the exchange",
    )
    check(
        "one connection per venue (cryptofeed)",
        connects.get("UPBIT") == 1 and connects.get("BINANCE") == 1,
        connects,
    )
    binance = peer.get("binance", {})
    check(
        "no gap in the Binance book",
        peer.get("gaps", 1) == 0 and binance.get("snapshots") == 1,
        {"gaps_logged": peer.get("gaps"), "rest_snapshots": binance.get("snapshots")},
    )
    crossed = peer.get("crossed", {})
    check("no crossed book", peer and not any(crossed.values()), crossed)
    tickers = peer.get("tickers", {})
    check(
        "bookTicker agrees with the book",
        tickers.get("books_compared", 0) > 0 and tickers.get("mismatched", 1) == 0,
        tickers,
    )
    books = peer.get("books", {})
    check(
        "books for every code",
        all(books.get(code, 0) > 0 for code in ("KRW-BTC", "KRW-USDT", "BTCUSDT")),
        books,
    )
    check("cryptofeed logged no warning or error", peer and not peer.get("warnings"), peer.get("warnings"))
    check(
        "the exchange stopped cleanly",
        returncode == 0 and "Traceback" not in stderr,
        {"exit": returncode, "traceback": "Traceback" in stderr},
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.interop", description="cryptofeed's Binance and Upbit feeds against python -m actors.sim"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"how long cryptofeed runs (default: {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=ROOT / "config" / "demo.toml",
        help="the exchange's config; without faults, or the checks fail (default: config/demo.toml)",
    )
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error(f"--seconds: expected a positive number, got {args.seconds:g}")
    from actors.sim.process import ExchangeNotStarted, ExchangeProcess  # the driver's side only: stdlib inside

    exchange = None
    try:
        python = ensure_peer_venv()
        exchange = ExchangeProcess("--config", str(args.config))
        endpoints = exchange.endpoints(START_S)
        print(
            f"interop: cryptofeed {CRYPTOFEED_VERSION} against {endpoints} for {args.seconds:g} s ...", file=sys.stderr
        )
        peer = run_peer(python, endpoints, args.seconds)
    except (CannotRun, ExchangeNotStarted) as exc:
        print(f"interop: cannot run: {exc}", file=sys.stderr)
        return 2
    finally:
        returncode = exchange.stop(timeout_s=STOP_S)[0] if exchange is not None else None
    stderr = "".join(exchange.err)
    totals = exchange_totals(stderr)
    results = checks(peer, totals, returncode, stderr)
    failed = [name for name, result in results.items() if not result["ok"]]
    summary = {
        "passed": not failed,
        "failed": failed,
        "seconds": args.seconds,
        "cryptofeed": CRYPTOFEED_VERSION,
        "endpoints": endpoints,
        "exchange": totals,
        "exchange_last_status": next((line.strip() for line in reversed(exchange.err) if "status: " in line), None),
        "checks": results,
        "cryptofeed_saw": {k: v for k, v in peer.items() if k != "warnings"},
    }
    print(json.dumps(summary, indent=2))
    if failed:
        print("interop: FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


# -- peer (bench/.venv-peer's Python: cryptofeed, nothing of the project) ----------------------------


def observe(endpoints: dict[str, str], seconds: float) -> dict[str, Any]:
    import asyncio
    import bisect
    import logging
    from collections import Counter
    from decimal import Decimal

    from cryptofeed import feed as feed_module
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint, WSAsyncConn
    from cryptofeed.defines import L2_BOOK, TICKER
    from cryptofeed.exchanges import Binance, Upbit
    from cryptofeed.symbols import Symbol, Symbols

    connects: Counter[str] = Counter()

    class PlainWsConn(WSAsyncConn):
        """cryptofeed's WebSocket connection on a ws:// address: it refuses anything but wss:// in __init__."""

        def __init__(self, address: str, conn_id: str, **kwargs: Any) -> None:
            super().__init__("wss://" + address.removeprefix("ws://"), conn_id, **kwargs)
            self.address = address
            self.venue = conn_id

        async def _open(self) -> None:
            connects[self.venue] += 1
            await super()._open()

    feed_module.WSAsyncConn = PlainWsConn  # what Feed.connect builds its connections with

    class SimBinance(Binance):
        websocket_endpoints = [WebsocketEndpoint(endpoints["binance_ws_url"])]
        rest_endpoints = [
            RestEndpoint(
                endpoints["binance_rest_url"],
                routes=Routes("/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}"),
            )
        ]

    class SimUpbit(Upbit):
        websocket_endpoints = [WebsocketEndpoint(endpoints["upbit_url"])]

    btc_usdt, btc_krw, usdt_krw = Symbol("BTC", "USDT"), Symbol("BTC", "KRW"), Symbol("USDT", "KRW")
    Symbols.set(
        Binance.id,
        {btc_usdt.normalized: "BTCUSDT"},
        {"tick_size": {}, "instrument_type": {btc_usdt.normalized: btc_usdt.type}},
    )
    Symbols.set(
        Upbit.id,
        {btc_krw.normalized: "KRW-BTC", usdt_krw.normalized: "KRW-USDT"},
        {"instrument_type": {s.normalized: s.type for s in (btc_krw, usdt_krw)}},
    )
    wire_name = {btc_usdt.normalized: "BTCUSDT", btc_krw.normalized: "KRW-BTC", usdt_krw.normalized: "KRW-USDT"}

    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            warnings.append(f"{record.levelname} {text}")

    feed_log = logging.getLogger("feedhandler")
    feed_log.addHandler(Collect(level=logging.WARNING))
    feed_log.setLevel(logging.WARNING)

    books: Counter[str] = Counter()
    crossed: Counter[str] = Counter()
    crossed_examples: list[str] = []
    binance_snapshots = 0
    tops: dict[int, tuple[Decimal, Decimal, Decimal, Decimal]] = {}  # Binance update id -> the top at that id
    tickers: list[tuple[int, Decimal, Decimal, Decimal, Decimal]] = []

    def top(book: Any) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        bids, asks = book.book.bids, book.book.asks
        if not len(bids) or not len(asks):
            return None
        (bid, bid_size), (ask, ask_size) = bids.index(0), asks.index(0)
        return bid, bid_size, ask, ask_size

    def note_crossed(where: str, bid: Decimal, ask: Decimal) -> None:
        if bid >= ask:
            crossed[where] += 1
            if len(crossed_examples) < 5:
                crossed_examples.append(f"{where}: bid {bid} >= ask {ask}")

    async def on_book(book: Any, receipt_timestamp: float) -> None:
        nonlocal binance_snapshots
        name = wire_name[book.symbol]
        books[name] += 1
        best = top(book)
        if best is not None:
            note_crossed(name, best[0], best[2])
        if name == "BTCUSDT":
            if book.delta is None:
                binance_snapshots += 1
            if best is not None:
                tops[book.sequence_number] = best

    async def on_ticker(ticker: Any, receipt_timestamp: float) -> None:
        raw = ticker.raw
        tickers.append((raw["u"], Decimal(raw["b"]), Decimal(raw["B"]), Decimal(raw["a"]), Decimal(raw["A"])))
        note_crossed("bookTicker", ticker.bid, ticker.ask)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        feeds = [
            SimBinance(
                symbols=[btc_usdt.normalized],
                channels=[L2_BOOK, TICKER],
                callbacks={L2_BOOK: on_book, TICKER: on_ticker},
            ),
            SimUpbit(
                symbols=[btc_krw.normalized, usdt_krw.normalized], channels=[L2_BOOK], callbacks={L2_BOOK: on_book}
            ),
        ]
        for feed in feeds:
            feed.start(loop)
        await asyncio.sleep(seconds)
        for feed in feeds:
            feed.stop()
        for feed in feeds:
            await asyncio.wait_for(feed.shutdown(), 10)

    asyncio.run(run())

    # the touch at update id N is the latest bookTicker with u <= N (one is sent on every change of it)
    tickers.sort(key=lambda t: t[0])
    ticker_ids = [t[0] for t in tickers]
    compared = mismatched = exact = 0
    mismatches: list[str] = []
    for book_id, book_top in sorted(tops.items()):
        at = bisect.bisect_right(ticker_ids, book_id) - 1
        if at < 0:
            continue  # before the first bookTicker: the touch was set before this connection
        compared += 1
        exact += ticker_ids[at] == book_id
        ticker_top = tuple(tickers[at][1:])
        if ticker_top != book_top:
            mismatched += 1
            if len(mismatches) < 5:
                mismatches.append(
                    f"book at id {book_id}: {tuple(map(str, book_top))}; bookTicker u={ticker_ids[at]}: "
                    f"{tuple(map(str, ticker_top))}"
                )
    return {
        "connects": dict(connects),
        "books": dict(books),
        "binance": {"snapshots": binance_snapshots, "book_ids": len(tops)},
        "gaps": sum("Missing book update" in w for w in warnings),
        "crossed": dict(crossed),
        "crossed_examples": crossed_examples,
        "tickers": {
            "received": len(tickers),
            "books_compared": compared,
            "books_before_first_ticker": len(tops) - compared,
            "ticker_u_equal_to_book_id": exact,
            "mismatched": mismatched,
            "examples": mismatches,
        },
        "warnings": warnings[:20],
        "warning_count": len(warnings),
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--peer":
        print(json.dumps(observe(json.loads(sys.argv[2]), float(sys.argv[3]))))
        sys.exit(0)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
