"""The session's files: their names (this module is the one place they are spelled), the claim of a
session id, and the ``latest/`` links."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class SessionPaths:
    logs_dir: Path
    session_id: str

    @property
    def fill_events(self) -> Path:
        return self.logs_dir / f"fill_events_{self.session_id}.jsonl"

    @property
    def kpi(self) -> Path:
        return self.logs_dir / f"kpi_{self.session_id}.json"

    @property
    def log(self) -> Path:
        return self.logs_dir / f"session_{self.session_id}.log"

    @property
    def premium(self) -> Path:
        return self.logs_dir / f"premium_{self.session_id}.csv"

    @property
    def report(self) -> Path:
        return self.logs_dir / f"report_{self.session_id}.md"

    @property
    def recording(self) -> Path:
        return self.logs_dir / f"recording_{self.session_id}.jsonl.gz"


SESSION_FILES = ("fill_events", "kpi", "log", "premium", "report", "recording")


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
            raise SessionIdTaken(f"session id {wanted!r} already has files in {logs_dir}: {', '.join(existing)}; "
                                 "choose another --session-id or remove them")
    raise SessionIdTaken(f"{logs_dir}: ids {default} to {candidates[-1]} are all taken")


LATEST = {"session.log": "log", "fill_events.jsonl": "fill_events", "kpi.json": "kpi", "premium.csv": "premium",
          "report.md": "report", "recording.jsonl.gz": "recording"}


def point_latest(paths: SessionPaths) -> Path:
    """Make ``<logs_dir>/latest/`` hold links to this session's files (replaced atomically). Two sessions
    starting together race for it: the loser tries again, then leaves it to the winner."""
    for attempt in range(3):
        try:
            return _point_latest(paths)
        except (FileNotFoundError, FileExistsError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _point_latest(paths: SessionPaths) -> Path:
    latest = paths.logs_dir / "latest"
    fresh = paths.logs_dir / f".latest.{paths.session_id}"
    fresh.mkdir(exist_ok=True)
    for name, attr in LATEST.items():
        link = fresh / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / getattr(paths, attr).name)
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
