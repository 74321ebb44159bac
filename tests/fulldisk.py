"""A full disk for tests: ``FullDisk.open`` stands in for ``actors.records.files.open_data`` (the one place
data files are opened) and lets only ``free`` bytes more be written to the files it is told about.

Import it as ``from fulldisk import FullDisk``: pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``;
a subprocess adds ``tests`` to ``PYTHONPATH``.
"""

from __future__ import annotations

import errno
from pathlib import Path

from actors.records import files


class FullDisk:
    """``files.open_data`` on a disk that has ``free`` bytes left for the files whose names contain one of
    ``names``: the write that crosses it is cut short, then every write fails with ENOSPC (truncation frees
    space, as on a real file system)."""

    def __init__(self, free: int, names: tuple[str, ...]) -> None:
        self.free, self.names, self.refused = free, names, 0
        self._open = files.open_data

    def open(self, path: Path, mode: str, buffering: int = -1):
        f = self._open(path, mode, buffering)
        return _Limited(f, self, raw=buffering == 0) if any(n in path.name for n in self.names) else f


class _Limited:
    def __init__(self, f, disk: FullDisk, raw: bool) -> None:
        self._f, self._disk, self._raw = f, disk, raw

    def write(self, data) -> int:
        data = bytes(data)
        if self._disk.free <= 0:
            self._disk.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        part = data[: self._disk.free]
        self._f.write(part)
        self._disk.free -= len(part)
        if len(part) < len(data) and not self._raw:
            raise OSError(errno.ENOSPC, "No space left on device")  # a buffered file cannot say "partly"
        return len(part)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()
