"""The session's data files, written with explicit flushing, never through the logger.

- ``FillWriter``: one JSON object per line, written whole and flushed per line, fsynced at close. A
  crash can at worst leave the last line torn, never an earlier one; a failed write (disk full, I/O
  error) is cut back to the last whole line and reported as ``DataWriteError``.
- ``Recorder``: every raw frame a feed received (``--record``), gzip, flushed every second.
- ``write_json_atomic``: temp file, fsync, rename over the target, fsync the directory; a reader
  sees the old or the new KPI file, never a mix.
- ``replacing``: the same for any file written whole (the report, its plots, the trades CSV): a file
  that cannot be written completely is not there at all (the old one stays), never cut short.
- Every data file is opened through ``open_data`` (the seam tests use to fill the disk).
- Temporary files exist only while they are written, and ``remove_temporaries`` removes those of a
  write in progress (a second Ctrl-C exits at once, but first calls it).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import msgspec
import trio

from actors.core.trader_outputs import FillEvent

_encoder = msgspec.json.Encoder()
_temporaries: set[Path] = set()  # temporary files being written now


def _temporary(path: Path) -> Path:
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    _temporaries.add(tmp)
    return tmp


def _drop_temporary(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    _temporaries.discard(tmp)


def remove_temporaries() -> None:
    """Remove the temporary files of writes in progress (safe in a signal handler: unlink calls only)."""
    for tmp in list(_temporaries):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class DataWriteError(OSError):
    """A session data file could not be written (disk full, I/O error, read-only); says which and why."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot write {path}: {cause.strerror or cause}")
        self.path, self.cause = path, cause

    def __str__(self) -> str:
        return str(self.strerror)


class DiskWatch:
    """The session's data disk, as an event: the first data write that failed (disk full, I/O error).

    Every writer reports its failure here (``report``); the session reacts to ``failed`` (it logs the error,
    records it as fatal and stops) and the executor reads ``error`` before each decision (no new trade once
    a fill could not be recorded). Later failures (the disk is still full) add nothing."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.failed = trio.Event()

    def report(self, error: DataWriteError) -> None:
        if self.error is None:
            self.error = str(error)
            self.failed.set()


def open_data(path: Path, mode: str, buffering: int = -1) -> IO[bytes]:
    """Open a session data file; the one place data files are opened (tests replace it to fill the disk)."""
    return open(path, mode, buffering=buffering)


def _write_all(f: IO[bytes], data: bytes) -> None:
    """Write every byte to a raw (unbuffered) file, which may take several writes."""
    view = memoryview(data)
    while view:
        written = f.write(view)
        if not written:
            raise OSError(errno.EIO, "the file accepted no bytes")
        view = view[written:]


RECORDING_FLUSH_S = 1.0


class Recorder:
    """Every raw frame a feed received, with its receive time: recording_<id>.jsonl.gz.

    One JSON object a line: ``t_s`` (session clock), ``wall_ns`` (wall clock), ``venue``, ``kind``
    (``ws`` for a WebSocket frame, ``rest`` for a REST depth snapshot body) and ``frame`` (the text;
    Upbit's binary frames are UTF-8 JSON and are stored as text). The gzip stream is flushed every
    ``RECORDING_FLUSH_S`` of session time, so a killed session leaves a recording readable up to then.
    """

    def __init__(self, path: Path, started_at: float, disk: DiskWatch) -> None:
        self.path = path
        self.frames = 0
        self._started_at = started_at
        self._disk = disk
        self._flushed_at = started_at
        self._raw = open_data(path, "ab")
        self._file: gzip.GzipFile | None = gzip.GzipFile(fileobj=self._raw, mode="ab")

    def write(self, venue: str, kind: str, at: float, frame: bytes | str) -> None:
        """Record one frame; a write error stops the recording (reported once), never the feed."""
        if self._file is None:
            return
        text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
        try:
            self._file.write(
                _encoder.encode(
                    {
                        "t_s": round(at - self._started_at, 6),
                        "wall_ns": time.time_ns(),
                        "venue": venue,
                        "kind": kind,
                        "frame": text,
                    }
                )
                + b"\n"
            )
            if at - self._flushed_at >= RECORDING_FLUSH_S:  # a killed session loses at most this much
                self._file.flush()
                self._flushed_at = at
        except OSError as exc:
            self._fail(exc)
            return
        self.frames += 1

    def _fail(self, exc: OSError) -> None:
        self._file = None
        with contextlib.suppress(OSError):
            self._raw.close()
        self._disk.report(DataWriteError(self.path, exc))

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
            self._raw.close()
        except OSError as exc:
            self._fail(exc)


class FillWriter:
    """Appends fill events, one JSON line each, written whole and flushed per line.

    ``fsync``: "every_line" (each line on disk before the next), "interval" (at most
    ``fsync_interval_s`` of lines at risk on a power loss), or "close". Opening an existing file
    whose last line is torn (a crash mid-write) truncates that line and keeps every good one.

    A write that fails (ENOSPC, EIO, ...) is cut back to the last whole line, so every line on disk
    stays valid, and raises ``DataWriteError``; the writer is then ``failed`` and writes nothing more.
    ``close`` never raises: a failure there is reported to ``disk`` (``DiskWatch``).
    """

    def __init__(
        self,
        path: Path,
        fsync: str = "interval",
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        disk: DiskWatch | None = None,
    ) -> None:
        self.path = path
        self.count = 0
        self.failed: DataWriteError | None = None
        self.repaired_bytes = _repair_torn_tail(path)
        self._fsync = fsync
        self._interval = fsync_interval_s
        self._clock = clock
        self._last_sync = clock()
        self._disk = disk
        self._file = open_data(path, "ab", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size  # bytes of whole lines

    def write(self, event: FillEvent) -> None:
        if self.failed is not None:
            raise self.failed
        line = _encoder.encode(event.as_dict()) + b"\n"
        try:
            _write_all(self._file, line)
            if self._fsync == "every_line" or (
                self._fsync == "interval" and self._clock() - self._last_sync >= self._interval
            ):
                os.fsync(self._file.fileno())
                self._last_sync = self._clock()
        except OSError as exc:
            raise self._fail(exc) from None
        self._size += len(line)
        self.count += 1

    def _fail(self, exc: OSError) -> DataWriteError:
        if self.failed is None:
            self.failed = exc if isinstance(exc, DataWriteError) else DataWriteError(self.path, exc)
        with contextlib.suppress(OSError):  # cut a partly written line; truncating frees space, so it can work
            os.ftruncate(self._file.fileno(), self._size)
        return self.failed

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self.failed is None:
                os.fsync(self._file.fileno())
        except OSError as exc:
            failed = self._fail(exc)
            if self._disk is not None:
                self._disk.report(failed)
        finally:
            with contextlib.suppress(OSError):
                self._file.close()


def _repair_torn_tail(path: Path) -> int:
    """Cut an unterminated last line off ``path``; return how many bytes were removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep = 0
        block = 65536
        pos = size
        while pos > 0:  # find the last newline from the end
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def write_json_atomic(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` as indented JSON, atomically: a reader sees the old file or the new
    one. On an error the old file stays, the temporary file is removed and DataWriteError is raised.

    The temporary file is opened as every data file is (``open_data``: 0o666 less the umask, never
    ``mkstemp``'s 0o600), so the KPI file has the permissions of the fill events and the log beside it."""
    data = msgspec.json.format(_encoder.encode(document), indent=2) + b"\n"
    tmp = _temporary(path)
    try:
        with open_data(tmp, "xb", buffering=0) as f:
            _write_all(f, data)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        _drop_temporary(tmp)
        raise DataWriteError(path, exc) from None
    except BaseException:
        _drop_temporary(tmp)
        raise
    _temporaries.discard(tmp)


@contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` with, whole or not at all: a temporary file beside it (opened by
    ``open_data``: 0o666 less the umask), fsynced and renamed over ``path`` when the block ends. If anything
    fails (a full disk), the temporary file is removed, ``path`` stays as it was (absent, or the old file),
    and an OSError is raised as DataWriteError naming ``path``."""
    tmp = _temporary(path)
    try:
        with open_data(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _drop_temporary(tmp)
        raise DataWriteError(path, exc) from None
    except BaseException:
        _drop_temporary(tmp)
        raise
    _temporaries.discard(tmp)


def append_text(path: Path, text: str) -> None:
    """Append a few lines to a small data file (the premium series); DataWriteError on failure."""
    try:
        with open_data(path, "ab") as f:
            f.write(text.encode("utf-8"))
    except OSError as exc:
        raise DataWriteError(path, exc) from None
