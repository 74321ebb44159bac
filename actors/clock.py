"""The market's wall time: what fill events, the premium series and the log say happened when.

Live it is the system clock. On the simulator it is the simulated market's own: the system clock when
the session started plus the Trio time since (``simulate``), so a virtual-time session's 1,200 s read as
1,200 s in its fill events and report, not as the dozen seconds of wall time they took. In a replay it is
the recording's time: held at the end of the pre-roll while the session starts, then ``start_epoch +
(now - t0) * speed`` from the replay's first served instant ``t0`` (Trio time: virtual in
``--as-fast-as-possible``), so two replays of the same recording give the same timestamps, and fills line
up with the recorded market data.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import trio


class MarketClock:
    def __init__(self) -> None:
        self._held: float | None = None
        self._origin: tuple[float, float, float] | None = None  # (Trio time, epoch seconds, speed)
        self._recorded = False

    @property
    def recorded(self) -> bool:
        """Whether this clock tells a recording's time (a replay) rather than the system's or a simulation's."""
        return self._recorded

    def hold(self, epoch_s: float) -> None:
        """Stand at ``epoch_s`` until ``follow``: a replay that has not started yet."""
        self._held, self._recorded = epoch_s, True

    def follow(self, trio_t0: float, epoch_s: float, speed: float) -> None:
        """From Trio time ``trio_t0`` on, tell ``epoch_s`` plus ``speed`` recorded seconds per second."""
        self._origin, self._recorded = (trio_t0, epoch_s, speed), True

    def simulate(self, trio_t0: float, epoch_s: float) -> None:
        """A simulated market's time: ``epoch_s`` at Trio time ``trio_t0``, then one second per Trio second (the
        real clock's pace on the real clock, the virtual clock's in virtual time)."""
        self._origin = (trio_t0, epoch_s, 1.0)

    def epoch_s(self, now: float) -> float:
        """Seconds since the Unix epoch at Trio time ``now``."""
        if self._origin is not None:
            t0, epoch_s, speed = self._origin
            return epoch_s + (now - t0) * speed
        if self._held is not None:
            return self._held
        return time.time()

    def utc(self, now: float) -> str:
        """ISO 8601 UTC with microseconds, as fill events write it."""
        return datetime.fromtimestamp(self.epoch_s(now), timezone.utc).isoformat(timespec="microseconds")


_shown: MarketClock | None = None  # the clock the log shows next to its own time (a replay's)


def show_in_log(clock: MarketClock | None) -> None:
    """Let each log line carry ``clock``'s time as ``extra[market_time]`` (a replay's recording time;
    ``configure_logging`` puts it in the line); None: no market time."""
    global _shown
    _shown = clock


def patch_record(record: Any) -> None:
    """loguru patcher: "rec HH:MM:SS.mmm | " in a replay, "" otherwise (and outside a Trio run)."""
    text = ""
    clock = _shown
    if clock is not None and clock.recorded:
        try:
            now = trio.current_time()
        except RuntimeError:
            now = None
        if now is not None:
            stamp = datetime.fromtimestamp(clock.epoch_s(now), timezone.utc).strftime("%H:%M:%S.%f")[:-3]
            text = f"rec {stamp} | "
    record["extra"]["market_time"] = text
