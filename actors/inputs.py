"""Reading files a person hands us (configs, calibrations, recordings, fill events) with limits.

A path can name anything: a character device that never ends (``/dev/zero``), a FIFO that never
answers, a directory, a 1 GB sparse file. Every reader of user input goes through here, so each of
those is one clear ``InputError`` naming the file and the problem, found before any large read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB


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
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
