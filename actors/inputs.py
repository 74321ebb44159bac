"""Reading files a person hands us (configs, calibrations, recordings, fill events) with limits.

A path can name anything: a character device that never ends (``/dev/zero``), a FIFO that never
answers, a directory, a 1 GB sparse file. Every reader of user input goes through here, so each of
those is one clear ``InputError`` naming the file and the problem, found before any large read.
JSON-lines files (fill events, sweep rows) are read with ``read_jsonl``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

KIB = 1024
MIB = 1024 * KIB
MAX_LINE_BYTES = 16 * MIB  # a line of any input: a REST snapshot of 5000 levels is well under 1 MiB
_CHUNK_BYTES = 1 * MIB
_GZIP_MAGIC = b"\x1f\x8b"


class InputError(ValueError):
    """A file that cannot be used as input; str() names the file and the problem."""


def _size(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= KIB:
        return f"{n / KIB:.1f} KiB"
    return f"{n} bytes"


def check_regular(path: str | Path) -> int:
    """The size of ``path`` if it is a regular file (symbolic links followed); InputError otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file (a device, FIFO or socket cannot be read as input)")
    return st.st_size


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes; InputError otherwise.

    The size is checked before reading, and the read itself stops at ``limit + 1`` bytes in case the
    file grows (or lies about its size) meanwhile."""
    size = check_regular(path)
    if size > limit:
        raise InputError(f"{path}: too large ({_size(size)}; at most {_size(limit)} expected here)")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise InputError(f"{path}: too large (more than {_size(limit)}; at most {_size(limit)} expected here)")
    return data


def read_text_bounded(path: str | Path, limit: int) -> str:
    """``read_bounded`` decoded as UTF-8; InputError if it is not text."""
    data = read_bounded(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})") from None


class LineReader:
    """The non-empty lines of a file, gzip or plain (told by its first bytes), read in bounded chunks.

    Iterating yields ``(number, line, terminated)``: ``line`` is the bytes without the newline, or None
    for a line longer than ``max_line_bytes`` (skipped unread: at most that much of it is ever held);
    ``terminated`` is False for a last line without its newline (a writer killed mid-line, or simply
    no final newline). A gzip stream that ends before its end-of-stream marker ends the iteration
    early and sets ``truncated``; the incomplete line at the cut is dropped. Anything else that
    makes the file unusable (not a regular file, corrupt gzip data, an I/O error) is an
    ``InputError`` naming the file. Fill-event files are read with it too.
    """

    def __init__(self, path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.truncated = False

    def __iter__(self) -> Iterator[tuple[int, bytes | None, bool]]:
        check_regular(self.path)
        self.truncated = False
        with contextlib.ExitStack() as stack:
            f = self._open(stack)
            pending: list[bytes] = []
            number, pending_bytes, skipping = 0, 0, False
            while chunk := self._read(f):
                pieces = chunk.split(b"\n")
                for piece in pieces[:-1]:  # each of these ends a line
                    number += 1
                    if skipping:  # the end of an over-long line, already reported
                        skipping = False
                        continue
                    if pending:
                        piece, pending, pending_bytes = b"".join(pending) + piece, [], 0
                    if len(piece) > self.max_line_bytes:
                        yield number, None, True
                    elif piece := piece.removesuffix(b"\r"):
                        yield number, piece, True
                tail = pieces[-1]
                if tail and not skipping:
                    pending.append(tail)
                    pending_bytes += len(tail)
                    if pending_bytes > self.max_line_bytes:
                        pending, pending_bytes, skipping = [], 0, True
                        yield number + 1, None, True
            if self.truncated:
                return
            if pending and (line := b"".join(pending).removesuffix(b"\r")):
                yield number + 1, line, False

    def _open(self, stack: contextlib.ExitStack[bool | None]) -> io.BufferedReader | gzip.GzipFile:
        try:
            raw = stack.enter_context(open(self.path, "rb"))
            gzipped = raw.peek(2)[:2] == _GZIP_MAGIC
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")) if gzipped else raw

    def _read(self, f: io.BufferedReader | gzip.GzipFile) -> bytes:
        """The next chunk; b"" at the end, or where a gzip stream was cut short (``truncated``)."""
        try:
            return f.read1(_CHUNK_BYTES)  # read1: a cut stream loses no byte decompressed before the cut
        except EOFError:
            self.truncated = True
            return b""
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"{self.path}: corrupt gzip data ({exc})") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror or exc})") from None


class BadLine(InputError):
    """A line of a JSON-lines file that is not a value of the type asked for; str() names the file and the line.

    ``cause`` is the decoder's exception (None for a line over the length limit); ``torn`` is True for a last
    line without its newline that is not complete JSON: a writer killed mid-line, not bad data."""

    def __init__(self, path: str | Path, number: int, problem: str, cause: Exception | None, torn: bool) -> None:
        super().__init__(f"{path}:{number}: {problem}")
        self.path, self.number, self.problem, self.cause, self.torn = path, number, problem, cause, torn


def read_jsonl(
    path: str | Path,
    into: Any = Any,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_bad: Callable[[BadLine], None] | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON-lines file (gzip or plain, read with
    ``LineReader``), decoded strictly as ``into`` (a msgspec type; ``Any``: plain JSON values).

    A line that does not decode, or is longer than ``max_line_bytes``, is a ``BadLine``: handed to ``on_bad``
    (which may raise it, or anything else, to stop) and skipped. Without ``on_bad`` a bad line is raised,
    except a torn last line, which is skipped: a file written line by line can end in one after a crash.
    Files that cannot be read at all raise ``InputError`` as ``LineReader`` does."""
    decoder = msgspec.json.Decoder(into)
    for number, line, terminated in LineReader(path, max_line_bytes):
        if line is None:
            bad = BadLine(path, number, f"line longer than {_size(max_line_bytes)}", None, False)
        elif not line.strip():
            continue
        else:
            try:
                yield number, decoder.decode(line)
                continue
            except Exception as exc:  # a decode or validation error, or RecursionError on deeply nested JSON
                torn = (
                    not terminated
                    and isinstance(exc, msgspec.DecodeError)
                    and not isinstance(exc, msgspec.ValidationError)
                )
                bad = BadLine(path, number, f"{type(exc).__name__}: {exc}", exc, torn)
        if on_bad is not None:
            on_bad(bad)
        elif not bad.torn:
            raise bad
