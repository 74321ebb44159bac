"""Replay figures: one ``--as-fast-as-possible`` replay session from the command line, measured.

``python -m bench.replay FILE [--via direct|exchange] [--duration S]`` runs ``actors.session`` in this
process, exactly as a user runs it (config/demo.toml: the demo strategy, fills, every file written),
and prints one JSON line:

- ``whole_s``: from the start of this process (interpreter start-up excluded) to the session's end,
  imports, pre-roll and the final report included;
- ``span_s``: the replay itself, from the log's ``replaying from`` line to its ``end of the recording``
  line (their wall-clock timestamps, milliseconds);
- ``recording_s``: seconds of recording served; ``x_real_time_span`` / ``x_real_time_whole``: recording
  seconds per second of each;
- ``peak_rss_replay_mb``: the highest resident memory sampled (every 50 ms) up to the end of the
  recording, i.e. the replay's own; ``peak_rss_mb``: the process's peak (``ru_maxrss``), which also
  takes in the report written at the end (matplotlib);
- ``fill_events`` and ``status`` from the KPI file, so a figure of a run that did nothing shows.

``bench/run.py`` runs it in a subprocess per figure, so each peak RSS is that replay's own.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()


class _RssSampler(threading.Thread):
    """Resident memory every ``period_s`` as (wall time, MB), from /proc/self/statm (Linux)."""

    def __init__(self, period_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()
        self._page_mb = resource.getpagesize() / 2**20

    def run(self) -> None:
        while not self.done.wait(self.period_s):
            with open("/proc/self/statm") as f:
                self.samples.append((time.time(), int(f.read().split()[1]) * self._page_mb))


def measure(recording: Path, via: str, duration_s: float) -> dict[str, Any]:
    from actors.cli import main as session_main

    sampler = _RssSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "--config",
            str(ROOT / "config" / "demo.toml"),
            "--replay",
            str(recording),
            "--as-fast-as-possible",
            "--market-model",  # the synthesised venue on the OU market: the demo strategy trades (bench/run.py)
            "ou",
            "--replay-via",
            via,
            "--duration",
            str(duration_s),
            "--logs-dir",
            tmp,
            "--session-id",
            "bench",
        ]
        code = session_main(args)
        whole_s = time.perf_counter() - PROCESS_START
        sampler.done.set()
        log = (Path(tmp) / "session_bench.log").read_text().splitlines()
        started = next(_log_time(x) for x in log if "replaying from" in x)
        ended = next((_log_time(x) for x in log if "replay: end of the recording" in x), None)
        kpi = json.loads((Path(tmp) / "kpi_bench.json").read_text())
    if ended is None:
        raise SystemExit("the replay did not reach the end of its recording (raise --duration)")
    recording_s = kpi["replay"]["recording_s"]
    span_s = ended - started
    return {
        "via": via,
        "exit": code,
        "status": kpi["status"],
        "recording_s": recording_s,
        "whole_s": round(whole_s, 3),
        "span_s": round(span_s, 3),
        "x_real_time_whole": round(recording_s / whole_s, 1),
        "x_real_time_span": round(recording_s / span_s, 1),
        "peak_rss_replay_mb": round(max(mb for t, mb in sampler.samples if t <= ended), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fill_events": kpi["fill_events"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--via", choices=("direct", "exchange"), default="direct")
    parser.add_argument("--duration", type=float, default=100_000.0, help="session.duration_s (default 100000)")
    args = parser.parse_args(argv)
    result = measure(args.recording, args.via, args.duration)
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
