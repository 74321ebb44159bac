"""bench/pipeline.py's harness: the real session fed pre-encoded frames consumes all of them, in order.

Not a speed test (speed goes in `make bench`): it checks that the figure the benchmark prints
measures what it says, every frame through the feeds and decisions and fill events at the end.
"""

from __future__ import annotations

import pytest

from bench.pipeline import build_script, run_once
from bench.run import RECORDING, recorded_binance_frames


def _recording(fixtures, n_diffs: int) -> tuple[str, list[str]]:
    if not RECORDING.exists():
        pytest.skip(f"needs the recorded stream at {RECORDING}")
    snapshot, diffs = recorded_binance_frames()
    return snapshot, diffs[:n_diffs]


@pytest.mark.parametrize("window", [1, 64])
def test_every_scripted_frame_goes_through_the_session(fixtures, window):
    snapshot, diffs = _recording(fixtures, 400)
    script = build_script(snapshot, diffs)
    assert [venue for venue, _ in script[2:5]] == ["binance", "upbit", "upbit"]
    out = run_once(script, snapshot, window)
    assert out["status"] == "completed" and out["updates"] == len(script) - 2 == 3 * len(diffs)
    # every frame was read; each published book or superseded one is accounted for
    assert (
        out["books_published"] + out["books_superseded_in_batches"] + out["books_dropped_aggregator_full"]
        >= out["updates"] - 10
    )  # the Binance diffs older than the snapshot change no book
    assert out["decisions"] > 0
    if window == 1:
        assert out["frames_per_batch"] < 2
    else:
        assert out["frames_per_batch"] > 5  # frames queued behind the first are read in the same wake-up
