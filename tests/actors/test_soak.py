"""A simulated day: chaos kills and exchange faults all along, and memory that does not grow."""

import pytest

from bench.soak import run_soak, slope


def test_a_simulated_day_with_chaos_and_faults_does_not_grow(tmp_path):
    # 24 h of virtual time; the market steps every 30 s to keep the run short, every other timer
    # (pings, stale checks, KPI snapshots, chaos every 30 min, faults every ~20 min) as usual
    out = run_soak(24, 30_000, tmp_path, use_tracemalloc=False)
    assert out["status"] == "completed" and out["fatal_exceptions"] == 0
    assert out["chaos_kills"] >= 30 and sum(out["reconnects"].values()) >= out["chaos_kills"]
    # on the market fitted to the real one the demo strategy trades a few times an hour (92 fill events here)
    assert out["fill_events"] == out["fill_events_written"] > 50
    blocks = [s["blocks"] for s in out["samples"]]
    assert len(blocks) == 25
    # after a two-hour warm-up, live Python objects stay flat: the least-squares slope over all 23 samples
    # from hour 2 on. Measured: about +33 allocated blocks a simulated hour (bounded books fluctuating); a leak
    # of one object per market view gave +141
    assert out["blocks_per_hour"] == pytest.approx(slope([(s["hour"], s["blocks"]) for s in out["samples"][2:]]))
    assert out["blocks_per_hour"] < 80, blocks


def test_the_growth_is_a_slope_over_every_sample_not_the_first_and_last():
    """One high last sample (a book that happened to be wide at that instant) no longer decides the figure: the
    first-to-last slope of these samples is +91 a hour (over the bound of 80, the failure once seen at 122);
    the fitted one +22. A steady leak still shows in full."""
    hours = range(2, 25)
    assert slope([(h, 2000.0 if h == 24 else 0.0) for h in hours]) == pytest.approx(2000 * 11 / 1012)
    assert slope([(h, 141.0 * h + (50 if h % 2 else -50)) for h in hours]) == pytest.approx(141.0, abs=10)
