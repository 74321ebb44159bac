"""The replay's fast path (``actors.sim.direct``) against the exchange path, and the streaming reader.

- Both paths give byte-identical fill events for the same recording, config and seed: a Binance-only
  recording (Upbit synthesised, the market keeps its books) and our own recording of both venues (the
  direct path then hands every frame on as recorded and decodes none after the first REST answer).
- Recordings are read as they are served: memory does not grow with their length, and damage found
  late in a file (corrupt gzip data) ends the replay with a named cause, not a traceback.
"""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import trio
from markets import on_ou

from actors import config
from actors.core.venues import upbit
from actors.records.kpi import as_kpi
from actors.records.paths import SessionPaths
from actors.sim import recordings
from actors.sim.direct import ENDPOINTS, DirectReplay
from actors.sim.replay import ReplayMarket, ReplayPacer
from actors.sim.settings import SimConfig

ROOT = Path(__file__).resolve().parents[2]
HFT = Path("recorded") / "hftbacktest" / "btcusdt_20240808.gz"


def _replay(files: list[Path], folder: Path, via: str, duration_s: float = 90, **sections) -> config.Config:
    return config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {"logs_dir": str(folder), "duration_s": duration_s, "market": "replay"},
            "replay": {"files": [str(f) for f in files], "as_fast_as_possible": True, "via": via},
            "sim": on_ou()["sim"],  # the synthesised venue on the OU premium: trades within a short recording
            **sections,
        },
    )


def _both_ways(run_virtual, tmp_path: Path, files: list[Path], **kw) -> dict[str, dict]:
    out = {}
    for via in ("direct", "exchange"):
        folder = tmp_path / via
        result = run_virtual(_replay(files, folder, via, **kw), SessionPaths(folder, "same"))
        assert result.kpi["status"] == "completed" and result.kpi["replay"]["via"] == via
        out[via] = {"kpi": result.kpi, "fills": result.paths.fill_events.read_bytes()}
    return out


def test_direct_and_exchange_paths_give_identical_fill_events(tmp_path, fixtures, run_virtual):
    runs = _both_ways(run_virtual, tmp_path, [fixtures / HFT])
    assert runs["direct"]["kpi"]["fill_events"] >= 5
    assert runs["direct"]["fills"] == runs["exchange"]["fills"]
    first = json.loads(runs["direct"]["fills"].splitlines()[0])
    assert first["ts_utc"].startswith("2024-08-08T23:5")  # the recording's time, not today's
    # the KPI's market clock (the report's time axis) places session times where ts_utc does
    replay = as_kpi(runs["direct"]["kpi"]).replay
    at = datetime.fromtimestamp(replay.recording_time(first["t_s"]), timezone.utc)
    assert abs((at - datetime.fromisoformat(first["ts_utc"])).total_seconds()) < 1e-3


def test_a_cryptofeed_websocket_file_and_its_http_file_replay_the_same_both_ways(tmp_path, fixtures, run_virtual):
    cf = fixtures / "recorded" / "cryptofeed"
    files = [cf / "BINANCE.ws.1.0", cf / "BINANCE.http.0.0"]
    quick = {"warmup_s": 1, "baseline_halflife_s": 2, "max_hold_s": 3, "zones": [[2, 2]]}  # 30 s of market
    runs = _both_ways(run_virtual, tmp_path, files, feeds={"binance": {"symbol": "NKNUSDT"}}, strategy=quick)
    kpi = runs["direct"]["kpi"]
    assert kpi["replay"]["recorded"] == ["NKNUSDT"] and kpi["feeds"]["binance"]["books"] > 100
    assert kpi["fill_events"] >= 2 and runs["direct"]["fills"] == runs["exchange"]["fills"]


def test_direct_replay_of_our_own_recording_matches_the_exchange(tmp_path, run_virtual):
    source = tmp_path / "source"
    cfg = config.load(
        ROOT / "config" / "demo.toml", on_ou({"session": {"logs_dir": str(source), "duration_s": 40, "record": True}})
    )
    recording = run_virtual(cfg, SessionPaths(source, "rec")).paths.recording
    runs = _both_ways(run_virtual, tmp_path, [recording], duration_s=120)
    direct, exchange = runs["direct"]["kpi"], runs["exchange"]["kpi"]
    assert direct["replay"]["synthesised"] == [] and direct["replay"]["recording_ended"]
    assert direct["feeds"]["binance"]["messages"] == exchange["feeds"]["binance"]["messages"] > 300
    assert direct["fill_events"] >= 2 and runs["direct"]["fills"] == runs["exchange"]["fills"]
    assert direct["reconnects"] == {"upbit": 0, "binance": 0}


def _hft_day(path: Path, lines: int) -> None:
    """A synthetic hftbacktest file: a snapshot, then chained diffs 100 ms apart, and a trade after each."""
    rng = random.Random(3)
    with gzip.open(path, "wt", compresslevel=1) as f:
        snapshot = {"lastUpdateId": 1000, "bids": [["100.00", "1.0"]], "asks": [["101.00", "1.0"]]}
        f.write(f"1700000000000000000 {json.dumps(snapshot)}\n")
        for i in range(1, lines):
            t_ms = 1_700_000_000_000 + 100 * i
            levels = [[f"{100 - rng.random():.2f}", f"{rng.random():.4f}"] for _ in range(20)]
            data = {"e": "depthUpdate", "E": t_ms, "s": "ABCUSDT", "U": 1000 + i, "u": 1000 + i, "b": levels, "a": []}
            f.write(f"{t_ms * 1_000_000} {json.dumps({'stream': 'abcusdt@depth@100ms', 'data': data})}\n")
            trade = {"e": "trade", "E": t_ms, "s": "ABCUSDT", "t": i, "p": "100.5", "q": "0.1", "T": t_ms, "m": True}
            f.write(f"{t_ms * 1_000_000} {json.dumps({'stream': 'abcusdt@trade', 'data': trade})}\n")


def test_a_recording_is_read_in_memory_that_does_not_grow_with_its_length(tmp_path):
    def peak_while_reading(lines: int) -> tuple[int, int]:
        path = tmp_path / f"day{lines}.gz"
        _hft_day(path, lines)
        tracemalloc.start()
        try:
            recording = recordings.Recording.open([path])
            kept = sum(1 for _ in recording.events(validate=False))
            return kept, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short_kept, short_peak = peak_while_reading(5_000)
    long_kept, long_peak = peak_while_reading(30_000)  # 6x as long: ~1,600 bytes a diff, 47 MB as a list
    assert (short_kept, long_kept) == (5_000, 30_000)
    assert long_peak < short_peak + 2_000_000, (short_peak, long_peak)


def test_corrupt_data_late_in_a_recording_ends_the_replay_with_its_cause(tmp_path, run_virtual, monkeypatch):
    monkeypatch.setattr(recordings, "PRESCAN_LINES", 1_000)
    path = tmp_path / "late.gz"
    _hft_day(path, 3_000)  # corrupt past the pre-scan's first 1,000 lines: found while serving
    data = bytearray(path.read_bytes())
    for i in range(len(data) * 9 // 10, len(data) * 9 // 10 + 64):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    cfg = _replay([path], tmp_path / "logs", "direct", duration_s=400, feeds={"binance": {"symbol": "ABCUSDT"}})
    result = run_virtual(cfg, SessionPaths(tmp_path / "logs", "late"))
    assert result.kpi["status"] == "failed" and result.exit_code == 1
    (fatal,) = [e for e in result.kpi["fatal_errors"] if e.startswith("replay:")]
    assert "corrupt gzip data" in fatal and str(path) in fatal
    assert result.kpi["fill_events"] == result.kpi["fill_events_written"]  # nothing produced was lost


def test_a_bad_upbit_subscription_on_the_direct_path_gets_upbit_s_error_frame(tmp_path):
    path = tmp_path / "day.gz"
    _hft_day(path, 50)
    market = ReplayMarket(
        recordings.Recording.open([path]),
        SimConfig(),
        7,
        upbit_market="KRW-BTC",
        fx_market="KRW-USDT",
        binance_symbol="ABCUSDT",
        direct=True,
    )
    replay = DirectReplay(market, ReplayPacer(market, 1.0, "test"))

    async def main() -> list:
        async with replay.connect_ws(ENDPOINTS.upbit_url) as conn:
            await conn.send('[{"ticket":"t"},{"type":"orderbook"}]')  # no codes
            with trio.fail_after(1):
                return upbit.decode(await conn.receive())

    (event,) = trio.run(main)
    assert isinstance(event, upbit.ErrorFrame) and event.name == "NO_CODES"
