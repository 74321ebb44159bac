"""python -m bench.soak with too few simulated hours for a growth slope says how many it needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_soak_too_short_for_a_slope_says_how_many_hours_it_needs(tmp_path):
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--hours", "2", "--step-ms", "60000"]
        + ["--logs-dir", str(tmp_path / "logs"), "--results", str(results)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "None" not in proc.stdout
    assert (
        "growth after warm-up: not measured: the slope needs at least 3 simulated hours (the first 2 are "
        "warm-up), this run simulated 2; run with --hours 3 or more"
    ) in proc.stdout.splitlines()
    soak = json.loads(results.read_text())["soak"]  # the figures go where --results says, not bench/
    assert soak["simulated_hours"] == 2 and soak["rss_mb_per_hour"] is None
