"""Half a simulated day: chaos kills and exchange faults all along, and memory that does not grow."""

import pytest

from bench.soak import run_soak, slope


def test_half_a_simulated_day_with_chaos_and_faults_does_not_grow(tmp_path):
    # 12 h of virtual time (`python -m bench.soak` and `make bench` run the whole day); the market steps every 30 s
    # to keep the run short, every other timer (pings, stale checks, KPI snapshots, chaos every 30 min, faults every
    # ~20 min) as usual
    out = run_soak(12, 30_000, tmp_path, use_tracemalloc=False)
    assert out["status"] == "completed" and out["fatal_exceptions"] == 0
    assert out["chaos_kills"] >= 15 and sum(out["reconnects"].values()) >= out["chaos_kills"]
    # on the market fitted to the real one the demo strategy trades a few times an hour (50 fill events here)
    assert out["fill_events"] == out["fill_events_written"] > 25
    blocks = [s["blocks"] for s in out["samples"]]
    assert len(blocks) == 49  # at the start, then every 15 minutes from 7.5 minutes on
    # After a two-hour warm-up, live Python objects stay flat: Theil-Sen slopes over the 40 samples from hour 2
    # on. Containers the collector tracks (views, trades, events, dicts and lists holding objects): measured
    # +7.5 a simulated hour (+4.5 over 24 h); keeping one market view in 60 gave +484 over 24 h and fails here too.
    # Allocated blocks, which also count floats and strings, vary with the books (a Binance book widens between
    # resyncs, up to 9,000 blocks for hours): measured +51 a hour (+85 to +88 over 24 h, +41 to +67 over any
    # 10-12 h of it); keeping one float in 60 views (about 120 a hour) gave +213 over 24 h.
    warm = [s for s in out["samples"] if s["hour"] >= 2]
    assert len(warm) == 40
    # the figure is the slope rounded to 4 decimals (34.4444 for a slope of 34.44444...: within 5e-5)
    assert out["blocks_per_hour"] == pytest.approx(slope([(s["hour"], s["blocks"]) for s in warm]), abs=5e-5)
    assert out["objects_per_hour"] < 40, [s["objects"] for s in out["samples"]]
    assert out["blocks_per_hour"] < 150, blocks


def test_the_growth_is_a_robust_slope_over_every_sample():
    """A few samples far above their neighbours (caught with a book at its widest, an actor restarting) do not
    decide the figure: four spikes of 3,000 to 6,000 blocks among 23 hourly samples, as seen on the hour, gave a
    least-squares slope of +90 to +134 a hour over a flat line; the robust slope reads the line. A steady leak
    still shows in full, and so does a slow one under the noise of a book."""
    hours = list(range(2, 25))
    spikes = {4: 3000.0, 18: 3000.0, 19: 6000.0, 22: 4000.0}
    assert slope([(h, 1000.0 + spikes.get(h, 0.0)) for h in hours]) == pytest.approx(0.0)
    assert slope([(h, 141.0 * h + (500 if h % 2 else -500)) for h in hours]) == pytest.approx(141.0, abs=10)
    assert slope([(h, 60.0 * h + spikes.get(h, 0.0)) for h in hours]) == pytest.approx(60.0)
