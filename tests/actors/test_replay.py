"""Record & replay: importers for the public formats, the replay market, and whole replayed sessions."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from markets import on_ou

from actors import config
from actors.core.venues import binance
from actors.records.paths import SessionPaths
from actors.sim import recordings
from actors.sim.recordings import RecordingError
from actors.sim.replay import ReplayMarket
from actors.sim.settings import SimConfig

ROOT = Path(__file__).resolve().parents[2]
HFT = "recorded/hftbacktest/btcusdt_20240808.gz"
CF = "recorded/cryptofeed"


def _forked(forked_cli, module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module ARGS`` forked from a process that imported the project once (tests/forked_cli.py: the
    same status and output as a fresh interpreter); the real-time replay below runs a fresh one."""
    return forked_cli.run(module, *args, timeout=120)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


def _market(paths, **kw) -> ReplayMarket:
    names = {"upbit_market": "KRW-BTC", "fx_market": "KRW-USDT", "binance_symbol": "BTCUSDT", **kw}
    return ReplayMarket(recordings.Recording.open(paths), SimConfig(), 7, **names)


# -- importers -------------------------------------------------------------------------------------


def test_hftbacktest_import_keeps_the_book_events_and_counts_the_rest(fixtures):
    rec = recordings.load([fixtures / HFT])
    kinds = [type(r.event).__name__ for r in rec.events]
    assert kinds.count("DepthDiff") == 3451 and kinds.count("DepthSnapshot") == 1
    assert rec.skipped == {"binance:BookTicker": 28040, "binance:Trade": 9757}
    assert rec.symbols("binance") == {"BTCUSDT"} and rec.symbols("upbit") == set()
    # paced by exchange time E: diffs 100 ms apart (200 at most), the whole file ~346 s
    diff_times = [r.at_s for r in rec.events if isinstance(r.event, binance.DepthDiff)]
    steps = [round(b - a, 3) for a, b in zip(diff_times, diff_times[1:])]
    assert min(steps) >= 0.099 and max(steps) <= 0.2 and 345 < rec.duration_s < 347
    snapshot = next(r for r in rec.events if isinstance(r.event, binance.DepthSnapshot))
    assert snapshot.symbol == "BTCUSDT" and snapshot.event.last_update_id == 50093239218


def test_cryptofeed_import_reads_both_venues_and_the_http_file(fixtures):
    rec = recordings.load([fixtures / CF / "BINANCE.ws.1.0", fixtures / CF / "BINANCE.http.0.0"])
    snapshots = {r.symbol: r.event.last_update_id for r in rec.events if isinstance(r.event, binance.DepthSnapshot)}
    assert snapshots["NKNUSDT"] == 499869752 and set(snapshots) == {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}
    assert sum(1 for r in rec.events if r.symbol == "NKNUSDT" and isinstance(r.event, binance.DepthDiff)) == 150
    assert rec.skipped["binance:unsupported"] == 2 and rec.skipped["malformed"] == 0  # kline frames
    up = recordings.load([fixtures / CF / "UPBIT.ws.62.0"])
    assert len(up.events) == 145 and up.skipped["upbit:Trade"] == 304  # the README's 145 order books
    assert up.symbols("upbit") >= {"KRW-LAMB", "KRW-WAVES"}


def test_unreadable_recordings_are_clear_errors(tmp_path, fixtures):
    bad = tmp_path / "bad.txt"
    bad.write_text("hello world\n")
    with pytest.raises(RecordingError, match="not a recording this tool reads"):
        recordings.load([bad])
    with pytest.raises(RecordingError, match="file not found"):
        recordings.load([tmp_path / "missing.gz"])
    with pytest.raises(RecordingError, match="no order-book data"):
        recordings.load([fixtures / CF / "UPBIT.0"])
    # a WebSocket file without its REST snapshots cannot start a Binance book
    with pytest.raises(RecordingError, match="BINANCE.http"):
        _market([fixtures / CF / "BINANCE.ws.1.0"], binance_symbol="NKNUSDT")
    with pytest.raises(RecordingError, match="has neither KRW-BTC .* nor ETHUSDT"):
        _market([fixtures / HFT], binance_symbol="ETHUSDT")


def test_a_malformed_line_is_counted_and_skipped(tmp_path):
    snap = '{"lastUpdateId":10,"bids":[["100.0","1.0"]],"asks":[["101.0","1.0"]]}'
    diff = (
        '{"stream":"abcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000100,"s":"ABCUSDT",'
        '"U":11,"u":12,"b":[["100.5","2.0"]],"a":[]}}'
    )
    path = tmp_path / "rec.txt"
    path.write_text(f"1700000000000000000 {snap}\n1700000000050000000 {{not json\n1700000000100000000 {diff}\n")
    rec = recordings.load([path])
    assert rec.skipped["malformed"] == 1 and len(rec.events) == 2 and rec.symbols("binance") == {"ABCUSDT"}


# -- the replay market -----------------------------------------------------------------------------


def test_replay_serves_the_recorded_diffs_in_order_and_synthesises_upbit(fixtures):
    market = _market([fixtures / HFT])
    assert market.synthesised == ["KRW-BTC", "KRW-USDT"] and market.recorded == {"BTCUSDT"}
    assert market.binance_ready and market.update_id == 50093239224  # snapshot + the diff straddling it
    previous, diffs, ratios = market.update_id, 0, []
    for _, _, step in market.steps():
        if step is None:
            continue
        if step.binance_diff is not None:
            assert step.binance_diff.first_id == previous + 1  # chained, as recorded
            previous, diffs = step.binance_diff.final_id, diffs + 1
        if "KRW-BTC" in step.upbit_changed:
            (bid, _), (ask, _) = market.books["KRW-BTC"].top(1)[0][0], market.books["KRW-BTC"].top(1)[1][0]
            (fx_bid, _), (fx_ask, _) = market.books["KRW-USDT"].top(1)[0][0], market.books["KRW-USDT"].top(1)[1][0]
            (bb, _), (ba, _) = market.books["BTCUSDT"].top(1)[0][0], market.books["BTCUSDT"].top(1)[1][0]
            ratios.append((bid + ask) / 2 / ((fx_bid + fx_ask) / 2) / ((bb + ba) / 2))
    assert diffs == 3448 and market.gaps_seen == 0  # 3451 minus the three recorded before the snapshot
    # the synthesised KRW-BTC sits at the recorded Binance mid x FX x (1 + the model's premium), which wanders
    # slowly: within a few bps a second, as the fitted model's premium does over 346 s
    premiums_bps = [(r - 1) * 1e4 for r in ratios]
    assert len(ratios) > 3000 and max(premiums_bps) - min(premiums_bps) < 60


def test_replay_of_a_gap_waits_for_the_next_recorded_snapshot(tmp_path):
    def diff(first: int, final: int, t_ms: int, price: str) -> str:
        data = {"e": "depthUpdate", "E": t_ms, "s": "ABCUSDT", "U": first, "u": final, "b": [[price, "1.0"]], "a": []}
        return json.dumps({"stream": "abcusdt@depth@100ms", "data": data})

    snap = lambda uid: json.dumps({"lastUpdateId": uid, "bids": [["100.0", "1.0"]], "asks": [["101.0", "1.0"]]})  # noqa: E731
    lines = [
        (0, diff(11, 12, 100, "100.1")),
        (1, snap(12)),
        (2, diff(13, 14, 200, "100.2")),
        (3, diff(20, 21, 300, "100.3")),  # ids 15-19 were lost by the recorder
        (4, snap(21)),
        (5, diff(22, 23, 500, "100.5")),
    ]
    path = tmp_path / "gap.txt"
    path.write_text("".join(f"{1_700_000_000_000_000_000 + i * 100_000_000} {text}\n" for i, text in lines))
    market = _market([path], binance_symbol="ABCUSDT")
    readiness = []
    for _, _, step in market.steps():
        if step is not None and step.binance_diff is not None:  # (the others are synthesised Upbit steps)
            readiness.append((market.binance_ready, market.update_id))
    assert readiness[1][0] is False and market.gaps_seen == 1  # after the gap
    assert readiness[-1] == (True, 23) and market.books["ABCUSDT"].top(1)[0][0][0] == 100.5


# -- whole sessions --------------------------------------------------------------------------------


def _replay_cfg(fixtures, folder: Path, **strategy) -> config.Config:
    return config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {"logs_dir": str(folder), "duration_s": 90, "market": "replay"},
            "replay": {"files": [str(fixtures / HFT)], "as_fast_as_possible": True},
            **({"strategy": strategy} if strategy else {}),
            # the synthesised Upbit on the OU premium: trades within the recording's 346 s
            "sim": on_ou()["sim"],
        },
    )


def test_two_replays_give_identical_fill_events_and_compare_by_l2_source(forked_cli, tmp_path, fixtures, run_virtual):
    runs = {}
    for name, source in (("a", "multi"), ("b", "multi"), ("upbit", "upbit"), ("binance", "binance")):
        folder = tmp_path / name
        result = run_virtual(_replay_cfg(fixtures, folder, l2_source=source), SessionPaths(folder, "replay1"))
        runs[name] = result
        kpi = result.kpi
        assert kpi["status"] == "completed" and kpi["market"] == "replay"
        assert kpi["replay"]["synthesised"] == ["KRW-BTC", "KRW-USDT"]
        assert kpi["reconnects"] == {"upbit": 0, "binance": 0}
    a, b = (runs[k].paths.fill_events for k in ("a", "b"))
    assert runs["a"].kpi["fill_events"] >= 5
    assert a.read_bytes() == b.read_bytes()  # ts_utc included: the recording's time (2024-08-08)
    first = json.loads(a.read_text().splitlines()[0])
    assert first["ts_utc"].startswith("2024-08-08T23:5") and runs["a"].kpi["replay"]["via"] == "direct"
    # the comparison report over three sessions of one recording with different L2 sources
    proc = _forked(
        forked_cli, "actors.tools.report", "--compare", *(str(tmp_path / k) for k in ("a", "upbit", "binance"))
    )
    assert proc.returncode == 0, proc.stderr
    for source in ("multi", "upbit", "binance"):
        assert f"| {source} |" in proc.stdout
    assert "with upbit" in proc.stdout and "with binance" in proc.stdout


def test_replaying_our_own_recording_serves_every_recorded_diff(tmp_path, run_virtual):
    source = tmp_path / "source"
    cfg = config.load(
        ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(source), "duration_s": 20, "record": True}}
    )
    recorded = run_virtual(cfg, SessionPaths(source, "rec1"))
    with gzip.open(recorded.paths.recording, "rt") as f:
        diffs = sum(1 for line in f if '"depthUpdate' in json.loads(line)["frame"])
    replay_dir = tmp_path / "replay"
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {"logs_dir": str(replay_dir), "duration_s": 60, "market": "replay"},
            "replay": {"files": [str(recorded.paths.recording)], "as_fast_as_possible": True},
        },
    )
    kpi = run_virtual(cfg, SessionPaths(replay_dir, "rep1")).kpi
    assert kpi["replay"]["synthesised"] == [] and kpi["status"] == "completed"
    # every diff after the pre-roll (which consumes the ones up to the first snapshot) reaches the feed
    assert diffs - 3 <= kpi["feeds"]["binance"]["messages"] <= diffs
    assert kpi["feeds"]["binance"]["gaps"] == 0 and kpi["reconnects"] == {"upbit": 0, "binance": 0}
    assert kpi["duration_s"] == pytest.approx(20, abs=1.5)  # the recording's length, not duration_s


def test_replay_cli_errors(forked_cli, tmp_path, fixtures):
    proc = _forked(
        forked_cli, "actors.session", "--config", "config/demo.toml", "--market", "replay", "--logs-dir", str(tmp_path)
    )
    assert proc.returncode == 2 and "$.replay.files: expected at least one recording file" in proc.stderr
    proc = _forked(
        forked_cli,
        "actors.session",
        "--config",
        "config/demo.toml",
        "--replay",
        str(tmp_path / "nope.gz"),
        "--logs-dir",
        str(tmp_path),
    )
    assert proc.returncode == 2 and "replay error:" in proc.stderr and "file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _forked(
        forked_cli,
        "actors.session",
        "--config",
        "config/demo.toml",
        "--replay",
        str(fixtures / HFT),
        "--speed",
        "2",
        "--as-fast-as-possible",
    )
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr
    proc = _forked(forked_cli, "actors.session", "--config", "config/demo.toml", "--session-id", "../x")
    assert proc.returncode == 2 and "--session-id expected" in proc.stderr


@pytest.mark.realtime
def test_replay_in_real_time_at_speed(tmp_path, fixtures):
    """The real clock and real loopback sockets: 30 s of recording at 15x."""
    proc = _cli(
        "actors.session",
        "--config",
        "config/demo.toml",
        "--replay",
        str(fixtures / HFT),
        "--speed",
        "15",
        "--duration",
        "2",
        "--logs-dir",
        str(tmp_path),
        "--session-id",
        "fast1",
    )
    assert proc.returncode == 0, proc.stderr
    kpi = json.loads((tmp_path / "kpi_fast1.json").read_text())
    assert kpi["replay"]["speed"] == 15 and kpi["feeds"]["binance"]["messages"] >= 200  # ~300 diffs in 30 s
    assert kpi["duration_s"] == pytest.approx(2, abs=0.5)


def test_the_synthesised_upbit_follows_the_recorded_binance_with_the_fitted_lag(fixtures):
    """Issue 22 item 4: the Upbit a Binance-only recording lacks follows the recorded Binance through the fitted
    model, not an independent process around it. At every step the model's Binance is the recorded mid, every
    recorded move enters Upbit's lag (the premium first takes up all of it, then gives it back over lag_s),
    and the synthesised KRW-BTC book sits at recorded Binance x FX x (1 + the model's premium)."""
    market = _market([fixtures / HFT])
    synth = market._synth
    assert synth is not None and synth.process is not None
    lag = synth.process.c
    moves, lag_changes = [], []
    before = None
    for _, _, step in market.steps():
        if step is None or "KRW-BTC" not in step.upbit_changed:
            continue
        (bb, _), (ba, _) = market.books["BTCUSDT"].top(1)[0][0], market.books["BTCUSDT"].top(1)[1][0]
        assert synth.btc_usdt == pytest.approx((bb + ba) / 2, rel=1e-12)  # pinned to the recording
        bids, asks = market.books["KRW-BTC"].top(1)
        model_mid = synth.mids()["KRW-BTC"]
        assert bids[0][0] < model_mid < asks[0][0] + 1e-9  # the book around the model's Upbit price
        state = synth.process.state
        if before is not None:
            moves.append(state.b - before[0])
            # what the lag did beyond its own decay and its pull toward the premium's slow and medium parts
            lag_changes.append(state.d - lag.lag_decay * before[1] - (1 - lag.lag_decay) * (state.s + state.x))
        before = (state.b, state.d)
    moves_a, changes_a = np.array(moves), np.array(lag_changes)
    assert np.count_nonzero(moves_a) > 250  # the recording moves its mid in 284 of 3,455 steps
    assert changes_a == pytest.approx(-lag.lag_move * moves_a, abs=1e-9)
