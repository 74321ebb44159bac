"""A market of many pairs against one pair (issue 26): ``python -m bench.market [--seconds S] [--chaos-s S]``
(``make bench ARGS=--market`` runs it after the rest).

Latency: the simulated many-coin exchange (``python -m actors.sim --config config/kimchi_market.toml``) runs in a
process of its own, as a real exchange would, and a session with ``market = "live"`` pointed at its endpoints
trades every pair it lists for ``--seconds`` of real time, in another process (its CPU and peak RSS from
``os.wait4``). The same for one pair (config/d84_2.toml's, on the same exchange command with no coins). Reported:
pairs, connections, how long until every book was synced and published (from cold), REST weight spent, 429s/418s
(reconnect causes rate_limited/banned), wire-to-decision percentiles, CPU and peak RSS, and their ratios.

Chaos: the 151-pair market on the embedded exchange in virtual time for ``--chaos-s`` (default 600) with one
Binance connection (feed:binance) killed every 10 s: kills, reconnects per connection, resyncs per connection,
429s/418s, and whether every pair had a premium at the end.

Every figure is on the simulated market (docs/simulator.md: the per-coin parameters are assumptions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKET = ROOT / "config" / "kimchi_market.toml"
ONE_PAIR = ROOT / "config" / "d84_2.toml"
REFUSED = {"rate_limited", "banned"}
# what every figure here was measured on (the per-coin parameters are the simulator's assumptions, not a fit)
SIMULATED = "simulated: the embedded exchange's many-coin market, config/kimchi_market.toml ([sim] coins = 150)"


def _exchange(config: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.sim", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"the exchange for {config} printed no endpoints")
    return proc, json.loads(line)


def _live_config(config: Path, endpoints: dict[str, str], out: Path) -> Path:
    """``config`` on the live path, pointed at a standalone exchange's endpoints (its URL keys replaced in the
    text: the file keeps its comments and order)."""
    urls = {
        "[feeds.upbit]": {"url": endpoints["upbit_url"], "rest_url": endpoints["upbit_rest_url"]},
        "[feeds.binance]": {"ws_url": endpoints["binance_ws_url"], "rest_url": endpoints["binance_rest_url"]},
    }
    lines, table = [], ""
    for line in config.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped
        key = stripped.split("=", 1)[0].strip()
        if table in urls and key in urls[table]:
            continue  # replaced below
        if table == "[session]" and key == "market":
            line = 'market = "live"'
        lines.append(line)
        if stripped in urls:
            lines += [f'{k} = "{v}"' for k, v in urls[stripped].items()]
    for header, keys in urls.items():
        if header not in (line.strip() for line in lines):
            lines += ["", header, *(f'{k} = "{v}"' for k, v in keys.items())]
    path = out / f"{config.stem}_live.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _session(args: list[str], logs: Path) -> tuple[dict[str, Any], float, float]:
    """A session in its own process: (its KPI, CPU seconds, peak RSS in MB)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.session", *args, "--logs-dir", str(logs)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"session {args} exited with {os.waitstatus_to_exitcode(status)} (logs in {logs})")
    kpi_path = next(logs.glob("kpi_*.json"))
    return json.loads(kpi_path.read_text()), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _figures(kpi: dict[str, Any], cpu_s: float, rss_mb: float) -> dict[str, Any]:
    feeds = kpi["feeds"]
    latency = kpi["pipeline_latency_ms"]["wire_to_decision"]
    return {
        "pairs": kpi["pairs"]["count"] if "pairs" in kpi else 1,
        "connections": len(feeds),
        "ready_s": kpi["startup_s"],
        "rest_weight": sum(f["rest_weight"] for f in feeds.values()),
        "refused": sum(n for f in feeds.values() for cause, n in f["reconnect_causes"].items() if cause in REFUSED),
        "decision_p50_ms": latency["p50"],
        "decision_p99_ms": latency["p99"],
        "decision_p99_9_ms": latency["p99_9"],
        "trading_s": kpi["duration_s"],
        "cpu_s": round(cpu_s, 2),
        "peak_rss_mb": round(rss_mb, 1),
        "entries": kpi["entry_trades"],
        "pairs_traded": sum(1 for row in kpi.get("pairs", {}).get("table", {}).values() if row["entries"]),
    }


def latency(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in (("market", MARKET), ("one_pair", ONE_PAIR)):
            exchange, endpoints = _exchange(MARKET if name == "market" else _one_coin_exchange(Path(tmp)))
            try:
                live = _live_config(config, endpoints, Path(tmp))
                kpi, cpu, rss = _session(["--config", str(live), "--duration", str(seconds)], Path(tmp) / name)
            finally:
                exchange.kill()
                exchange.wait()
            out[name] = _figures(kpi, cpu, rss)
    m, one = out["market"], out["one_pair"]
    out["p99_ratio"] = round(m["decision_p99_ms"] / one["decision_p99_ms"], 2) if one["decision_p99_ms"] else None
    out["rss_per_pair_mb"] = round((m["peak_rss_mb"] - one["peak_rss_mb"]) / max(1, m["pairs"] - 1), 3)
    return out


def _one_coin_exchange(tmp: Path) -> Path:
    """The exchange command's config for one pair: kimchi_market's without the coins."""
    text = MARKET.read_text().replace("coins = 150", "coins = 0")
    path = tmp / "one_coin.toml"
    path.write_text(text)
    return path


def chaos(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "market_chaos.toml"
        config.write_text(
            MARKET.read_text()
            + '\n[chaos]\nkill_every_s = 10\nactors = ["feed:binance"]\n'
            + "\n[supervision]\nmax_restarts = 1000\nwindow_s = 60\nmax_backoff_s = 2\n"
        )
        args = ["--config", str(config), "--market", "sim", "--virtual-time", "--duration", str(seconds)]
        kpi, cpu, rss = _session(args, Path(tmp) / "chaos")
    feeds = kpi["feeds"]
    table = kpi["pairs"]["table"]
    return {
        "virtual_s": seconds,
        "kills": kpi["chaos"]["kills"],
        "reconnects": {name: f["reconnects"] for name, f in feeds.items()},
        "resyncs": {name: f["resyncs"] for name, f in feeds.items()},
        "refused": sum(n for f in feeds.values() for cause, n in f["reconnect_causes"].items() if cause in REFUSED),
        "pairs": len(table),
        "pairs_with_a_premium_at_the_end": sum(1 for row in table.values() if row["latest_premium_bps"] is not None),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(rss, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.market", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="real seconds of trading per session (30)")
    parser.add_argument("--chaos-s", type=float, default=600.0, help="virtual seconds of the chaos run (600; 0: none)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"market": SIMULATED, "latency": latency(args.seconds)}
    if args.chaos_s > 0:
        results["chaos"] = chaos(args.chaos_s)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
