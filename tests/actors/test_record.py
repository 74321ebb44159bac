"""--record keeps every raw frame a feed received, enough to rebuild the books from the file alone."""

import gzip
import json
from pathlib import Path

from actors import config
from actors.core.venues import binance, upbit
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]


def test_a_recording_holds_every_frame_and_rebuilds_the_binance_book(tmp_path, run_virtual):
    cfg = config.load(
        ROOT / "config" / "demo.toml",
        {
            "session": {"logs_dir": str(tmp_path), "duration_s": 20, "record": True},
            "sim": {"faults": [{"at_s": 10, "venue": "binance", "kind": "gap"}]},
        },
    )
    paths = SessionPaths(tmp_path, "20260101_000050")
    kpi = run_virtual(cfg, paths).kpi
    with gzip.open(paths.recording, "rt") as f:
        lines = [json.loads(line) for line in f]
    ws = {venue: [r for r in lines if r["venue"] == venue and r["kind"] == "ws"] for venue in ("upbit", "binance")}
    assert len(ws["upbit"]) == kpi["feeds"]["upbit"]["messages"]
    assert len(ws["binance"]) == kpi["feeds"]["binance"]["messages"]
    rest = [r for r in lines if r["kind"] == "rest"]
    assert len(rest) == kpi["feeds"]["binance"]["resyncs"] == 2  # the start, and after the gap
    assert [r["t_s"] for r in lines] == sorted(r["t_s"] for r in lines)
    for r in ws["upbit"]:
        upbit.decode(r["frame"])
    sync, gaps = binance.BookSync("BTCUSDT"), 0
    for r in lines:
        if r["venue"] != "binance":
            continue
        if r["kind"] == "rest":
            if sync.state is binance.SyncState.NEEDS_SNAPSHOT:
                sync.on_snapshot(binance.decode_snapshot(r["frame"]))
            continue
        event = binance.decode(r["frame"])
        if isinstance(event, binance.DepthDiff) and sync.on_diff(event) is binance.Outcome.GAP:
            gaps += 1
    assert gaps == kpi["feeds"]["binance"]["gaps"] == 1 and sync.synced and not sync.book.crossed
