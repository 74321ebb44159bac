"""The session's files: their names (this module is the one place they are spelled), the claim of a
session id, and the ``latest/`` links. Readers find sessions and their files here too
(``SessionPaths.find_ids``, ``file_pattern``)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import attrs

# what each session file is called: <prefix><session id><suffix>
_NAMES = {
    "fill_events": ("fill_events_", ".jsonl"),
    "kpi": ("kpi_", ".json"),
    "log": ("session_", ".log"),
    "premium": ("premium_", ".csv"),
    "report": ("report_", ".md"),
    "recording": ("recording_", ".jsonl.gz"),
    "trades": ("trades_", ".csv"),
    "pairs": ("pairs_", ".csv"),
    "pair_table": ("pair_table_", ".csv"),
}
SESSION_FILES = tuple(_NAMES)
_PLOT = ("report_", ".png")  # report_<id>_<name>.png beside the report


def file_pattern(kind: str) -> str:
    """A glob pattern matching that kind of file of every session: ``file_pattern("log") == "session_*.log"``."""
    prefix, suffix = _NAMES[kind]
    return f"{prefix}*{suffix}"


@attrs.frozen
class SessionPaths:
    logs_dir: Path
    session_id: str

    def _file(self, kind: str) -> Path:
        prefix, suffix = _NAMES[kind]
        return self.logs_dir / f"{prefix}{self.session_id}{suffix}"

    @property
    def fill_events(self) -> Path:
        return self._file("fill_events")

    @property
    def kpi(self) -> Path:
        return self._file("kpi")

    @property
    def log(self) -> Path:
        return self._file("log")

    @property
    def premium(self) -> Path:
        return self._file("premium")

    @property
    def report(self) -> Path:
        return self._file("report")

    @property
    def recording(self) -> Path:
        return self._file("recording")

    @property
    def trades(self) -> Path:
        """One row per trade, written by the report."""
        return self._file("trades")

    @property
    def pairs(self) -> Path:
        """The premium of every pair over time (several pairs only), written by the collector."""
        return self._file("pairs")

    @property
    def pair_table(self) -> Path:
        """One row per pair (several pairs only), written by the report."""
        return self._file("pair_table")

    def plot(self, name: str) -> Path:
        """One of the report's plots: ``report_<id>_<name>.png``."""
        prefix, suffix = _PLOT
        return self.logs_dir / f"{prefix}{self.session_id}_{name}{suffix}"

    def written(self) -> list[Path]:
        """This session's files that exist, in the order of ``SESSION_FILES``, then the report's plots."""
        prefix, suffix = _PLOT
        files = [getattr(self, kind) for kind in SESSION_FILES]
        plots = sorted(self.logs_dir.glob(f"{prefix}{glob.escape(self.session_id)}_*{suffix}"))
        return [p for p in files if p.exists()] + plots

    @staticmethod
    def find_ids(logs_dir: Path, kind: str = "kpi") -> list[str]:
        """The ids of the sessions in ``logs_dir`` that have that kind of file, sorted (ids are start times:
        the latest is last)."""
        prefix, suffix = _NAMES[kind]
        return sorted(p.name[len(prefix) : -len(suffix)] for p in logs_dir.glob(file_pattern(kind)))

    @staticmethod
    def of_file(path: Path, kind: str) -> SessionPaths | None:
        """The session a file of that kind belongs to, by its name (``premium_<id>.csv`` in a folder: that
        folder's session ``<id>``); None if the name is not one of that kind."""
        prefix, suffix = _NAMES[kind]
        name = path.name
        if not (name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix)):
            return None
        return SessionPaths(path.parent, name[len(prefix) : -len(suffix)])


class SessionIdTaken(Exception):
    """A session id whose files already exist in the logs folder."""


def claim_session(logs_dir: Path, wanted: str | None, default: str) -> SessionPaths:
    """The session's paths, with an id no other session in ``logs_dir`` has or can get.

    The claim is the exclusive creation of the fill-event file. ``wanted`` (``--session-id``) is refused
    with SessionIdTaken when any file of that id exists; ``default`` (the start time, one-second
    resolution) gets a ``_2``, ``_3``, ... suffix when another session took it. OSError when the folder
    cannot be created or written."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    candidates = [wanted] if wanted is not None else [default] + [f"{default}_{n}" for n in range(2, 1000)]
    for session_id in candidates:
        paths = SessionPaths(logs_dir, session_id)
        existing = [getattr(paths, name).name for name in SESSION_FILES if getattr(paths, name).exists()]
        if not existing:
            try:
                with open(paths.fill_events, "xb"):
                    return paths
            except FileExistsError:
                existing = [paths.fill_events.name]  # another session claimed it just now
        if wanted is not None:
            raise SessionIdTaken(
                f"session id {wanted!r} already has files in {logs_dir}: {', '.join(existing)}; "
                "choose another --session-id or remove them"
            )
    raise SessionIdTaken(f"{logs_dir}: ids {default} to {candidates[-1]} are all taken")


LATEST = {
    "session.log": "log",
    "fill_events.jsonl": "fill_events",
    "kpi.json": "kpi",
    "premium.csv": "premium",
    "report.md": "report",
    "recording.jsonl.gz": "recording",
    "trades.csv": "trades",
}


def point_latest(paths: SessionPaths) -> Path:
    """Make ``<logs_dir>/latest/`` hold links to this session's files that exist (replaced atomically): at
    its start, the log and the fill events; ``complete_latest`` adds the others at its end. No link ever
    points at a file that was not written. Two sessions starting together race for it: the loser tries
    again, then leaves it to the winner."""
    for attempt in range(3):
        try:
            return _point_latest(paths)
        except (FileNotFoundError, FileExistsError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _linked_by_report(paths: SessionPaths) -> list[Path]:
    """The files the report links (its plots, the trades CSV, the pair table) and the pairs' premium panel, that
    exist."""
    prefix, suffix = _PLOT
    plots = sorted(paths.logs_dir.glob(f"{prefix}{glob.escape(paths.session_id)}_*{suffix}"))
    return plots + [p for p in (paths.trades, paths.pair_table, paths.pairs) if p.exists()]


def complete_latest(paths: SessionPaths) -> bool:
    """At the session's end (after the report): if ``latest/`` is still this session's, point it again, so
    it links every file the session wrote (KPI, premium series, report, trades...) and none it did not. A
    newer session's ``latest/`` is left alone. True if it was updated."""
    latest = paths.logs_dir / "latest"
    mine = Path("..") / paths.fill_events.name  # linked from the start: the claim created the file
    try:
        current = os.readlink(latest / "fill_events.jsonl")
    except OSError:  # no latest/ (it could not be made at the start), or not ours in any readable way
        current = None
    if latest.exists() and current != str(mine):
        return False
    point_latest(paths)
    return True


def _point_latest(paths: SessionPaths) -> Path:
    latest = paths.logs_dir / "latest"
    fresh = paths.logs_dir / f".latest.{paths.session_id}"
    fresh.mkdir(exist_ok=True)
    for link in fresh.iterdir():  # left by a run that was stopped while making it
        link.unlink()
    for name, attr in LATEST.items():
        target = getattr(paths, attr)
        if target.exists():
            (fresh / name).symlink_to(Path("..") / target.name)
    # the report links its plots and the trades CSV by their own names: the same names here, so that
    # latest/report.md's links resolve from latest/ too
    for target in _linked_by_report(paths):
        (fresh / target.name).symlink_to(Path("..") / target.name)
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        old = paths.logs_dir / f".latest.old.{paths.session_id}"
        latest.rename(old)
        fresh.rename(latest)
        for link in old.iterdir():
            link.unlink()
        old.rmdir()
        return latest
    fresh.rename(latest)
    return latest
