"""Every fault the simulator can inject, in a short virtual-time session: the counted cause and the
recovery (books back, fill events intact, no fatal error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import config
from actors.records.paths import SessionPaths

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def session_with(tmp_path, run_virtual):
    def run(sub: str, faults: list[dict], **kw) -> dict:
        return _session(run_virtual, tmp_path / sub, faults, **kw)

    return run


def _session(
    run_virtual,
    tmp_path: Path,
    faults: list[dict],
    *,
    duration_s: float = 30,
    sim: dict | None = None,
    feeds: dict | None = None,
) -> dict:
    raw = config.unparse(config.load(ROOT / "config" / "demo.toml"))
    raw["session"].update(duration_s=duration_s, logs_dir=str(tmp_path))
    raw["sim"].update(faults=faults, **(sim or {}))
    for venue, values in (feeds or {}).items():
        raw["feeds"][venue].update(values)
    cfg = config.parse(raw)
    paths = SessionPaths(tmp_path, "20260101_000009")
    result = run_virtual(cfg, paths)
    kpi = result.kpi
    assert result.status == "completed" and kpi["fatal_exceptions"] == 0
    assert len(paths.fill_events.read_text().splitlines()) == kpi["fill_events"] == kpi["fill_events_written"]
    for feed in kpi["feeds"].values():
        assert feed["book_age_s"] is not None and feed["book_age_s"] < 1.0  # books flowing at the end
    return kpi


def fault(kind: str, venue: str, at_s: float = 12, duration_s: float = 5) -> dict:
    return {"at_s": at_s, "venue": venue, "kind": kind, "duration_s": duration_s}


@pytest.mark.parametrize("venue", ["upbit", "binance"])
@pytest.mark.parametrize("kind, cause", [("close", "closed"), ("drop", "dropped"), ("oversized", "overflow")])
def test_connection_faults_are_reconnected_with_their_cause(session_with, venue, kind, cause):
    kpi = session_with("s", [fault(kind, venue)])
    feed = kpi["feeds"][venue]
    assert feed["reconnect_causes"] == {cause: 1} and feed["connects"] == 2
    assert feed["untrusted_s"] > 0 and feed["downtime_s"] > 0
    other = kpi["feeds"]["binance" if venue == "upbit" else "upbit"]
    assert other["reconnects"] == 0


@pytest.mark.parametrize("venue", ["upbit", "binance"])
def test_a_stalled_stream_is_reconnected_as_stale(session_with, venue):
    kpi = session_with("s", [fault("stall", venue, duration_s=8)], feeds={venue: {"stale_after_s": 5}})
    assert kpi["feeds"][venue]["reconnect_causes"] == {"stale": 1}


@pytest.mark.parametrize("venue", ["upbit", "binance"])
@pytest.mark.parametrize("kind", ["garbage", "nan_level", "negative_level"])
def test_bad_frames_are_counted_and_skipped_without_reconnecting(session_with, venue, kind):
    kpi = session_with("s", [fault(kind, venue), fault(kind, venue, at_s=20)])
    feed = kpi["feeds"][venue]
    assert feed["bad_frames"] == 2 and feed["reconnects"] == 0 and feed["gaps"] == 0


def test_a_crossed_upbit_book_is_rejected(session_with):
    kpi = session_with("s", [fault("crossed_book", "upbit")])
    assert kpi["feeds"]["upbit"]["bad_frames"] == 1 and kpi["feeds"]["upbit"]["reconnects"] == 0


def test_a_crossed_binance_book_is_discarded_and_resynced(session_with):
    kpi = session_with("s", [fault("crossed_book", "binance")])
    feed = kpi["feeds"]["binance"]
    assert feed["crossed_books"] == 1 and feed["resyncs"] == 2 and feed["reconnects"] == 0
    assert 0 < feed["untrusted_s"] < 1


def test_a_sequence_gap_forces_a_resync(session_with):
    kpi = session_with("s", [fault("gap", "binance"), fault("stall", "binance", at_s=25, duration_s=2)])
    feed = kpi["feeds"]["binance"]
    assert feed["gaps"] == 2 and feed["resyncs"] == 3 and feed["reconnects"] == 0


def test_server_shutdown_and_the_scheduled_cut_are_scheduled_reconnects(session_with):
    kpi = session_with("a", [fault("shutdown", "binance")])
    assert kpi["feeds"]["binance"]["reconnect_causes"] == {"scheduled": 1}
    kpi = session_with("b", [], duration_s=70, sim={"max_connection_s": 30}, feeds={"binance": {"scheduled_cut_s": 30}})
    assert kpi["feeds"]["binance"]["reconnect_causes"] == {"scheduled": 2}


def test_an_upbit_error_frame_then_close_is_an_error_reconnect(session_with):
    kpi = session_with("s", [fault("error_frame", "upbit")])
    assert kpi["feeds"]["upbit"]["reconnect_causes"] == {"error": 1}


def test_a_slow_snapshot_delays_the_resync(session_with):
    kpi = session_with("s", [fault("rest_slow", "binance", at_s=11, duration_s=4), fault("drop", "binance")])
    feed = kpi["feeds"]["binance"]
    assert feed["reconnect_causes"] == {"dropped": 1} and feed["resyncs"] == 2
    assert feed["untrusted_s"] == pytest.approx(3.0, abs=0.6)  # from the drop at 12 s to the snapshot at 15 s


def test_a_failing_snapshot_endpoint_is_retried_until_it_answers(session_with):
    kpi = session_with("s", [fault("rest_fail", "binance", at_s=11, duration_s=3), fault("drop", "binance")])
    causes = kpi["feeds"]["binance"]["reconnect_causes"]
    assert causes["dropped"] == 1 and causes["snapshot"] >= 1


def test_a_feed_that_keeps_sending_garbage_is_reconnected(session_with):
    storm = [fault("garbage", "upbit", at_s=10 + i * 0.2) for i in range(6)]
    kpi = session_with("s", storm, feeds={"upbit": {"max_bad_frames_per_min": 4}})
    # the fifth bad frame within a minute reconnects; the sixth went to a connection being replaced
    assert kpi["feeds"]["upbit"]["reconnect_causes"] == {"error": 1} and kpi["feeds"]["upbit"]["bad_frames"] == 5


def test_random_faults_at_a_seeded_rate(session_with):
    kpi = session_with(
        "s",
        [],
        duration_s=120,
        sim={"fault_rate_per_min": 3, "fault_kinds": ["close", "drop", "gap"]},
        feeds={"binance": {"stale_after_s": 30}},
    )
    total = sum(f["reconnects"] + f["gaps"] for f in kpi["feeds"].values())
    assert total >= 2
