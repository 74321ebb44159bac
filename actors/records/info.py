"""What a session is, fixed before it starts: ``SessionInfo`` (its id, config, paths, when it opened, the
calibrations and the recording it runs on), typed from the start and frozen. Everything that changes while it
runs has one owner each and is read through snapshots (``actors.records.sources``)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

import attrs
import msgspec

from actors.config import Config
from actors.records.paths import SessionPaths


class SessionStatus(enum.StrEnum):
    """The session's status in the KPI file and the summary (written as these words)."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class CalibrationInfo(msgspec.Struct, frozen=True):
    """``calibration`` (fill_model = "calibrated" only): which calibration the fill model used."""

    version: str
    path: str
    mode: Literal["deterministic", "stochastic"]
    zones: tuple[str, ...]  # the zones it calibrates ("entry/tp" bps); others use its fallback


@attrs.frozen
class SlippageInfo:
    """The slippage drift model a session loaded (strategy.slippage_calibration): its version and file."""

    version: str
    path: str


@attrs.frozen
class ReplayDescription:
    """What a replay serves, known once its recording is pre-rolled (the KPI's ``replay`` block adds how far
    it got: ``actors.sim.replay.ReplayProgress``)."""

    files: tuple[str, ...]
    sources: tuple[str, ...]  # "path (format)"
    speed: float | str  # x the recorded pace, or "as fast as possible"
    via: Literal["direct", "exchange"]
    recorded: tuple[str, ...]  # the codes the recording has
    synthesised: tuple[str, ...]  # the codes the model makes up
    start_epoch_ms: int | None  # the recording's first event
    start_epoch_s: float  # the recording's time where the replay starts (the end of the pre-roll)
    pace: float  # recorded seconds per session second


@attrs.frozen
class SessionInfo:
    """What the session is: the same from its first instant to its last."""

    config: Config
    paths: SessionPaths
    opened_at: float  # Trio time when the session began starting up
    started: datetime  # the wall clock then (UTC): what "newest session" means
    calibration: CalibrationInfo | None = None  # the calibrated fill model's calibration
    slippage: SlippageInfo | None = None  # the slippage drift model, when one is loaded
    replay: ReplayDescription | None = None  # market = "replay": the recording it serves

    @property
    def session_id(self) -> str:
        return self.paths.session_id

    @property
    def market(self) -> str:
        return self.config.session.market

    @property
    def requested_duration_s(self) -> float:
        return self.config.session.duration_s

    @property
    def started_utc(self) -> str:
        """ISO 8601 with milliseconds, as the KPI file writes it."""
        return self.started.isoformat(timespec="milliseconds")
