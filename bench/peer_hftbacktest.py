"""Peer benchmark: hftbacktest replaying the recorded Binance BTCUSDT stream, as "x real time".

Two parts in one file:

- the driver, ``measure(recording, repeats)``: stdlib only, imported by the project's Python. It keeps
  hftbacktest out of the project's dependencies: it creates ``bench/.venv-hftbacktest`` when missing,
  installs the pinned ``hftbacktest`` there, runs this file with that venv's Python and returns its
  JSON (or ``{"error": ...}``);
- the script, ``python bench/peer_hftbacktest.py RECORDING REPEATS`` (that venv's Python only; it imports
  nothing from the project) prints one JSON line.

What is measured: the recording (written by hftbacktest's own collector) is converted by hftbacktest's
``binancefutures.convert`` (setup, not timed), loaded into a ``HashMapMarketDepthBacktest`` (one linear
asset, tick 0.01, lot 0.00001, constant 10 ms order latency, risk-adverse queue model, no partial fills)
and a numba-jitted loop calls ``hbt.elapse(100 ms)`` until the data ends, reading the best bid and best
ask of the local book at every step. ``run_s`` is the median wall time of that loop over REPEATS fresh
backtests; numba compiles the loop during one untimed warm-up run first, so ``run_s`` excludes compile
time, while ``whole_process_s`` (process start to the print: imports, conversion, compilation, warm-up
and every run) includes it. ``x_real_time_*`` = recording span / time: 346 recorded seconds replayed in
0.02 s is 17,000x.

Why it is comparable with our replay (``--replay FILE --as-fast-as-possible``): both start from the
recording's REST snapshot and apply every depth diff of the same file to an order book, then advance a
clock to the end of the recording. hftbacktest also steps its exchange-side book and matches the trades
(our replay counts and skips them), and it does no JSON decoding, networking or strategy while timed:
its figure is a replay engine working on pre-decoded arrays, an upper bound to aim at, not a like-for-like
pipeline.

What the temporary copy fills in (the file is Binance SPOT; the converter reads the FUTURES format):

- depth diffs: ``T`` (futures transaction time) = ``E`` (event time). The converter reads only ``T``,
  ``b`` and ``a`` (not ``pu``), so nothing else is added; diff timestamps stay the recorded ones;
- trades: ``X`` = ``"MARKET"``: the converter keeps only futures market trades (``X`` separates them
  from insurance-fund/ADL fills, which spot does not have); every spot stream trade is one;
- book tickers: ``e`` = ``"bookTicker"``, which the spot stream omits; the converter reads ``e`` of every
  frame and, by default as here, skips book tickers (our replay skips them too);
- the REST snapshot: ``T`` = ``E`` of the first diff with ``u`` > ``lastUpdateId`` (the one that bridges
  the snapshot), and the line is moved just before that diff with that diff's receive time. In the file
  the snapshot arrived after that diff; left there, it would undo the diff's later updates. This is
  Binance's documented sync procedure (snapshot, then the diffs past ``lastUpdateId``), which our
  replay applies too.

None of this adds, drops or changes a price level, a trade or a timestamp of an event the backtest steps
through (the one snapshot moves by its 69 ms receive delay), so the work measured is the same. The
converter then shifts every local timestamp by one constant (the collector's clock was ~1.3 s behind the
exchange's; hftbacktest requires non-negative feed latency), which moves the whole replay, not its span.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HFTBACKTEST_VERSION = "2.4.4"
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venv-hftbacktest"
STEP_NS = 100_000_000  # hbt.elapse step: 100 ms
TICK_SIZE = 0.01  # Binance spot BTCUSDT filters
LOT_SIZE = 0.00001
_STARTED = time.perf_counter()  # fallback for the process age where /proc is missing


# -- driver (stdlib only; the project's Python) ----------------------------------------------------


def _last_line(text: str, prefer: str = "ERROR") -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    preferred = [line for line in lines if line.startswith(prefer)]
    return (preferred or lines or ["?"])[-1]


def _installed_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('hftbacktest'))"
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _ensure_venv() -> str | None:
    """Creates bench/.venv-hftbacktest with the pinned hftbacktest if needed; an error line, or None."""
    python = VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            return "could not create bench/.venv-hftbacktest: " + _last_line(made.stderr)
    if _installed_version(python) == HFTBACKTEST_VERSION:
        return None
    print(f"installing hftbacktest=={HFTBACKTEST_VERSION} into bench/.venv-hftbacktest ...", file=sys.stderr)
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"hftbacktest=={HFTBACKTEST_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if install.returncode != 0:
        return f"hftbacktest=={HFTBACKTEST_VERSION} could not be installed: " + _last_line(install.stderr)
    return None


def measure(recording: Path, repeats: int) -> dict[str, Any]:
    """Runs the script part in bench/.venv-hftbacktest; its JSON, or {"error": one line}."""
    try:
        error = _ensure_venv()
        if error is not None:
            return {"error": error}
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), str(Path(recording).resolve()), str(repeats)],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as e:  # a timeout, a missing interpreter
        return {"error": f"hftbacktest peer: {type(e).__name__}: {e}".splitlines()[0]}
    if proc.returncode != 0:
        return {"error": "hftbacktest peer failed: " + _last_line(proc.stderr, prefer="AssertionError")}
    out = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not out:
        return {"error": "hftbacktest peer printed no JSON: " + _last_line(proc.stdout + proc.stderr)}
    result: dict[str, Any] = json.loads(out[-1])
    return result


# -- script (bench/.venv-hftbacktest's Python; imports hftbacktest, nothing from the project) -------


def _process_age_s() -> float:
    """Seconds since this process started (Linux /proc; else since this module was imported)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime in clock ticks
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _STARTED


def futures_shaped_copy(recording: Path, out: Path) -> int:
    """Writes the recording with the futures fields the converter reads (see the module docstring).

    Returns an upper bound of the rows the converter produces (its buffer size)."""
    import gzip

    lines: list[tuple[int, dict[str, Any]]] = []
    with gzip.open(recording, "rt") as f:
        for line in f:
            ts, payload = line.rstrip("\n").split(" ", 1)
            lines.append((int(ts), json.loads(payload)))
    snapshot_at = next(i for i, (_, m) in enumerate(lines) if "lastUpdateId" in m and "stream" not in m)
    snapshot = lines.pop(snapshot_at)[1]
    bridge = next(
        i
        for i, (_, m) in enumerate(lines)
        if m.get("data", {}).get("e") == "depthUpdate" and m["data"]["u"] > snapshot["lastUpdateId"]
    )
    bridge_ts, bridge_msg = lines[bridge]
    snapshot["T"] = bridge_msg["data"]["E"]
    lines.insert(bridge, (bridge_ts, snapshot))
    rows = 0
    last_diff_e = bridge_msg["data"]["E"]
    with gzip.open(out, "wt", compresslevel=1) as f:
        for ts, message in lines:
            data = message.get("data")
            if data is None:  # a REST snapshot: a clear and its levels per side
                if "T" not in message:  # a later snapshot (none in the shared recording): where it arrived
                    message["T"] = last_diff_e
                rows += len(message["bids"]) + len(message["asks"]) + 2
            elif data.get("e") == "depthUpdate":
                data["T"] = last_diff_e = data["E"]
                rows += len(data["b"]) + len(data["a"])
            elif data.get("e") == "trade":
                data["X"] = "MARKET"
                rows += 1
            elif "e" not in data and message.get("stream", "").endswith("@bookTicker"):
                data["e"] = "bookTicker"
            f.write(f"{ts} {json.dumps(message, separators=(',', ':'))}\n")
    return rows + 16


def convert(recording: Path) -> Any:
    """The recording as hftbacktest events (an event_dtype array); the converter's prints go to stderr."""
    import tempfile

    from hftbacktest.data.utils import binancefutures

    with tempfile.TemporaryDirectory(prefix="peer-hftbacktest-") as tmp:
        copy = Path(tmp) / "futures_shaped.gz"
        rows = futures_shaped_copy(recording, copy)
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)  # numba-compiled helpers print from C: redirect the descriptor, not sys.stdout
        try:
            return binancefutures.convert(str(copy), buffer_size=rows)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def build_replay() -> Callable[[Any], tuple[int, int, int]]:
    """The jitted loop: elapse 100 ms until the data ends, reading the best bid/ask each step."""
    import math

    from numba import njit

    @njit
    def replay(hbt: Any) -> tuple[int, int, int]:
        steps = 0
        sane = 0
        rc = hbt.elapse(STEP_NS)
        while rc == 0:
            depth = hbt.depth(0)
            bid = depth.best_bid
            ask = depth.best_ask
            steps += 1
            if math.isfinite(bid) and math.isfinite(ask) and bid < ask:
                sane += 1
            rc = hbt.elapse(STEP_NS)
        return steps, sane, rc

    return replay  # type: ignore[no-any-return]


def backtest(events: Any) -> Any:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(10_000_000, 10_000_000)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.001, 0.001)
        .tick_size(TICK_SIZE)
        .lot_size(LOT_SIZE)
    )
    return HashMapMarketDepthBacktest([asset])


def main() -> None:
    import resource
    import statistics

    import hftbacktest
    from hftbacktest import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, LOCAL_EVENT

    recording, repeats = Path(sys.argv[1]), int(sys.argv[2])
    events = convert(recording)
    kind = events["ev"] & 0xFF
    depth = (events["ev"] & LOCAL_EVENT != 0) & ((kind == DEPTH_EVENT) | (kind == DEPTH_SNAPSHOT_EVENT))
    local_ts = events["local_ts"][depth]
    span_s = (int(local_ts.max()) - int(local_ts.min())) / 1e9
    replay = build_replay()

    def run_once() -> tuple[float, int]:
        hbt = backtest(events)
        t0 = time.perf_counter()
        steps, sane, rc = replay(hbt)
        elapsed = time.perf_counter() - t0
        hbt.close()
        assert rc == 1, f"elapse returned {rc} (1 is the end of the data)"
        # a replay that built no book (or a crossed one) would be a no-op figure
        assert steps > 0.9 * span_s / (STEP_NS / 1e9), (steps, span_s)
        assert sane >= 0.95 * steps, f"best bid < best ask at only {sane} of {steps} steps"
        return elapsed, steps

    run_once()  # warm-up: numba compiles the loop for this backtest type here (not timed)
    runs = [run_once() for _ in range(repeats)]
    run_s = statistics.median(elapsed for elapsed, _ in runs)
    whole_s = _process_age_s()
    result = {
        "run_s": round(run_s, 6),
        "span_s": round(span_s, 3),
        "x_real_time_run": round(span_s / run_s),
        "whole_process_s": round(whole_s, 3),
        "x_real_time_whole": round(span_s / whole_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": runs[0][1],
        "events": int(len(events)),
        "hftbacktest": getattr(hftbacktest, "__version__", HFTBACKTEST_VERSION),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
