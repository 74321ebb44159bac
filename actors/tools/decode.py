"""Decode raw exchange frames: ``python -m actors.tools.decode --venue upbit|binance FILE...``.

A file holds one frame, or one frame per line; a line may start with a receive timestamp in
nanoseconds followed by a space (the hftbacktest recording format). Every decoded event is printed
as one JSON line: ``{"venue":…,"event":<type>,…fields}``. A frame that cannot be decoded (whatever
the decoder raises: deeply nested JSON is a ``RecursionError``) prints ``FILE:LINE: cannot decode:
reason`` on stderr and the exit status is 1 (after the other frames). A FILE that is not a regular
file of at most 64 MiB is one line ``FILE: problem`` and counts as a failure too.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Iterator

import attrs
import msgspec

from actors.core.venues import FrameError, binance, upbit
from actors.inputs import MIB, InputError, read_bounded
from actors.tools import piped

MAX_FILE_BYTES = 64 * MIB
_TIMESTAMP_PREFIX = re.compile(rb"^\d{10,20} ")
_encoder = msgspec.json.Encoder()


def frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, frame) pairs: the whole file if it is one JSON value, else each non-empty line."""
    stripped = data.strip()
    if not stripped:
        return
    try:
        msgspec.json.decode(stripped)
        yield 1, stripped
        return
    except Exception:  # not one JSON value (deeply nested JSON raises RecursionError)
        pass
    for number, line in enumerate(data.splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, _TIMESTAMP_PREFIX.sub(b"", line, count=1)


def decode_frame(venue: str, frame: bytes) -> list[dict]:
    events = upbit.decode(frame) if venue == "upbit" else [binance.decode(frame)]
    return [{"venue": venue, "event": type(e).__name__, **attrs.asdict(e, recurse=True)} for e in events]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.tools.decode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue", required=True, choices=("upbit", "binance"))
    parser.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    failures = 0
    out = sys.stdout.buffer
    for name in args.files:
        try:
            data = read_bounded(name, MAX_FILE_BYTES)
        except InputError as exc:
            print(exc, file=sys.stderr)
            failures += 1
            continue
        for number, frame in frames(data):
            try:
                decoded = [_encoder.encode(event) + b"\n" for event in decode_frame(args.venue, frame)]
            except FrameError as exc:
                print(f"{name}:{number}: cannot decode: {exc}", file=sys.stderr)
                failures += 1
                continue
            except Exception as exc:  # one frame's damage, whatever the decoder raised
                print(f"{name}:{number}: cannot decode: {type(exc).__name__}: {exc}", file=sys.stderr)
                failures += 1
                continue
            out.writelines(decoded)
    out.flush()
    return 1 if failures else 0


def run() -> int:
    """The command (``python -m``, or the installed script): output into a pipe closed early is fine."""
    return piped(main)


if __name__ == "__main__":
    sys.exit(run())
