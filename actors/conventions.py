"""The project's conventions, each spelled in one place: exit codes, actor names, seed streams."""

from __future__ import annotations

import enum
import errno
from pathlib import Path

from actors.core.vocabulary import Venue


class ExitCode(enum.IntEnum):
    """Exit status of ``python -m actors.session`` and of every other command (docs/reliability.md, "Exit
    status": 0 done, 1 failed while running, 2 bad input, 130 a second Ctrl-C)."""

    OK = 0  # completed, or interrupted by a first Ctrl-C / SIGTERM
    FAILED = 1  # startup deadline, an actor given up on, no drain, a disk error, an unexpected error
    USAGE = 2  # bad config, command line or input file; nothing started
    INTERRUPTED = 130  # a second Ctrl-C / SIGTERM

    @property
    def meaning(self) -> str:
        """What the code says, in words (``--help`` lists them; docs/reliability.md too)."""
        return _EXIT_MEANINGS[self]


_EXIT_MEANINGS = {
    ExitCode.OK: "completed, or interrupted by a first Ctrl-C / SIGTERM (files and report written)",
    ExitCode.FAILED: "failed: a feed could not connect or get ready in time, an actor was given up on, the "
    "pipeline did not drain, a disk error, an unexpected error (the reason is printed; the KPI file is written)",
    ExitCode.USAGE: "bad input: config, command line, recording, taken session id, unwritable logs_dir "
    "(one line on stderr; nothing started)",
    ExitCode.INTERRUPTED: "a second Ctrl-C / SIGTERM: exited at once (fill events complete up to their last line)",
}


# a write that failed because of the disk (full, quota, I/O error), not because of the place it was asked to go
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def write_failure_status(exc: OSError) -> ExitCode:
    """The exit status of a command whose output could not be written: FAILED (1) when the disk failed the
    write, USAGE (2, bad input) when the place given cannot take it (a folder, a path under a file, no
    permission)."""
    cause = getattr(exc, "cause", exc)  # a records.files.DataWriteError carries the OSError it wraps
    return ExitCode.FAILED if getattr(cause, "errno", None) in DISK_ERRNOS else ExitCode.USAGE


# supervised actors, in start order; feeds are producers, the rest consumers
COLLECTOR, EXECUTOR, AGGREGATOR, FEED_UPBIT, FEED_BINANCE = (
    "collector",
    "executor",
    "aggregator",
    "feed:upbit",
    "feed:binance",
)
ACTORS = (COLLECTOR, EXECUTOR, AGGREGATOR, FEED_UPBIT, FEED_BINANCE)
FEED_ACTORS: dict[str, str] = {Venue.UPBIT: FEED_UPBIT, Venue.BINANCE: FEED_BINANCE}  # by venue (its word)


def feed_key(venue: str, connection: int) -> str:
    """The name of a venue's ``connection``-th feed (from 0) in statistics and the KPI: the venue's word for the
    first ("binance"), then "binance-2", "binance-3"... (a market of many pairs spreads Binance's books over
    several connections, issue 26)."""
    return str(venue) if connection == 0 else f"{venue}-{connection + 1}"


def feed_actor(key: str) -> str:
    """The supervised actor of the feed named ``key`` ("binance-2" -> "feed:binance-2")."""
    return f"feed:{key}"


def feed_venue(key: str) -> Venue:
    """The venue of the feed named ``key`` ("binance-2" -> binance)."""
    return Venue(key.split("-", 1)[0])


class SeedStream(enum.IntEnum):
    """Offsets from ``session.seed``: each random stream of a session has its own, so adding one never
    shifts another (same seed, same market and decisions)."""

    MARKET = 0  # the simulated market; the supervisors' jitter; the orders' latency jitter (the trader's seed)
    FILL_MODEL = 1  # calibrated fill model, stochastic mode
    CHAOS = 2  # which actor chaos kills
    FAULTS = 3  # the simulator's random faults
    MOCK_BOOK = 7  # l2_source = "mock"
    REST_JITTER = 8  # the Binance REST weight budget's jitter (a request that has to wait)


# The market model a [sim] table's market_model = "default" selects: the fit to ../shared's real data
# (python -m actors.calibrate --market; docs/simulator.md), found from the project folder
DEFAULT_MARKET_MODEL_NAME = "upbit_binance_btc_2024h2"
DEFAULT_MARKET_MODEL = Path(__file__).resolve().parents[1] / "config" / "market" / f"{DEFAULT_MARKET_MODEL_NAME}.json"
