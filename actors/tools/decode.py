"""Decode raw exchange frames: ``python -m actors.tools.decode --venue upbit|binance [--all] PATH...``.

A PATH is a file holding one frame, or one frame per line (a line may start with a receive timestamp in
nanoseconds followed by a space: the hftbacktest recording format), or a folder: its ``.json``, ``.jsonl``
and ``.txt`` files in name order (not its subfolders). Every order-book event (Binance depth diffs, depth
snapshots and book tickers; Upbit order books) is printed as one JSON line:
``{"venue":…,"event":<type>,…fields}``. The venue's other messages (trades, subscription acks, status
frames, error replies, tickers, klines, a client's own requests...) are recognised and skipped, and one
line on stderr counts them by kind: ``decode: skipped 12 trade frames, 3 subscription acks (not order
books; --all prints those the codec decodes)``. ``--all`` prints every event the codec decodes, trades and
replies included, and skips only the kinds it does not decode.

Exit status (the rule of every command: docs/reliability.md) 0 when at least one frame was printed and
every other one was a recognised message; 2, bad input, when nothing was printed (``decode: no order-book
frame ...``), when a frame cannot be decoded, or when a PATH cannot be read: one line ``PATH: problem`` for
a file that is not a regular file of at most 64 MiB, or a folder without frame files.

Frames that cannot be decoded (whatever the decoder raises: deeply nested JSON is a ``RecursionError``) are
reported per file, after its frames: the first ``SHOW_BAD`` as ``FILE:LINE: cannot decode: reason``, then
one line counting the rest. A file in which no frame decodes at all (random bytes, the other venue's
frames) is one line: ``FILE: not a file of binance frames: none of its 7,650 frames decodes (line 1: ...;
line 2: ...; line 3: ...)``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import attrs
import msgspec

from actors.conventions import ExitCode
from actors.core.venues import FrameError, binance, upbit
from actors.core.vocabulary import Venue
from actors.inputs import MIB, InputError, read_bounded
from actors.tools import piped
from supervision import most_frequent_first

MAX_FILE_BYTES = 64 * MIB
SHOW_BAD = 3  # frames that cannot be decoded shown per file; the rest are counted
REASON_CHARS = 160
FRAME_SUFFIXES = (".json", ".jsonl", ".txt")
_TIMESTAMP_PREFIX = re.compile(rb"^\d{10,20} ")
_encoder = msgspec.json.Encoder()

BOOK_EVENTS = (binance.DepthDiff, binance.DepthSnapshot, binance.BookTicker, upbit.Orderbook)
# what a skipped message is called, by the event the codec decoded it to
_KINDS: dict[type, str] = {
    binance.ControlReply: "control reply",
    binance.ErrorReply: "error reply",
    binance.ServerShutdown: "serverShutdown notice",
    upbit.Trade: "trade frame",
    upbit.Status: "status frame",
    upbit.ErrorFrame: "error frame",
}
# message types each codec decodes: one of these that the codec refuses is malformed, not skipped
_DECODED_TYPES = {
    Venue.BINANCE: {"depthUpdate", "trade", "aggTrade", "serverShutdown"},
    Venue.UPBIT: {"orderbook", "trade"},
}


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


def decode_events(venue: Venue, frame: bytes) -> Sequence[upbit.Event | binance.Event]:
    """The codec's events of one frame; FrameError (or whatever the decoder raises) when it cannot."""
    return upbit.decode(frame) if venue == Venue.UPBIT else [binance.decode(frame)]


def as_document(venue: Venue, event: upbit.Event | binance.Event) -> dict[str, Any]:
    return {"venue": venue, "event": type(event).__name__, **attrs.asdict(event, recurse=True)}


def decode_frame(venue: Venue, frame: bytes) -> list[dict[str, Any]]:
    return [as_document(venue, e) for e in decode_events(venue, frame)]


def kind_of(event: upbit.Event | binance.Event) -> str | None:
    """What a decoded event that is not an order book is called ("trade frame", "subscription ack");
    None for an order-book event."""
    if isinstance(event, BOOK_EVENTS):
        return None
    if isinstance(event, binance.Trade):
        return f"{event.kind} frame"
    if isinstance(event, binance.ControlReply) and event.result is None:
        return "subscription ack"  # the answer to SUBSCRIBE and UNSUBSCRIBE
    return _KINDS.get(type(event), f"{type(event).__name__} message")


class _BinancePeek(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    e: object = None
    method: object = None


class _UpbitPeek(msgspec.Struct):
    type: object = None
    ty: object = None
    ticket: object = None


def unsupported_kind(venue: Venue, frame: bytes) -> str | None:
    """What a frame the codec refused is called, when it is a well-formed message of a kind the codec does
    not decode (an Upbit ticker, a Binance kline, a client's subscription request); None when it is
    malformed, or of a kind the codec decodes (then its refusal says what is wrong with it)."""
    try:
        if venue == Venue.BINANCE:
            peek = msgspec.json.decode(frame, type=_BinancePeek)
            if peek.stream is not None and len(peek.data):
                peek = msgspec.json.decode(peek.data, type=_BinancePeek)
            if isinstance(peek.method, str):
                return "client request"
            kind = peek.e
        else:
            if frame.lstrip()[:1] == b"[":
                peeks = msgspec.json.decode(frame, type=list[_UpbitPeek])
            else:
                peeks = [msgspec.json.decode(frame, type=_UpbitPeek)]
            if any(p.ticket is not None for p in peeks):
                return "client request"
            kinds = {p.type if p.type is not None else p.ty for p in peeks}
            kind = kinds.pop() if len(kinds) == 1 else None
    except Exception:  # not JSON, not an object, nested too deeply: malformed
        return None
    if not isinstance(kind, str) or not kind or kind in _DECODED_TYPES[venue]:
        return None
    return f"{kind} frame"


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"


def skipped_line(skipped: Counter[str], *, everything: bool) -> str:
    """``decode: skipped 12 trade frames, 3 subscription acks (...)``: most frequent kind first."""
    counts = ", ".join(_plural(kind, n) for kind, n in most_frequent_first(skipped))
    why = "kinds the codec does not decode" if everything else "not order books; --all prints those the codec decodes"
    return f"decode: skipped {counts} ({why})"


@attrs.define
class _BadFrames:
    """The frames of one file that cannot be decoded: the first few in words, and how many."""

    path: Path
    shown: list[tuple[int, str]] = attrs.field(factory=list)
    count: int = 0
    good: int = 0  # frames that decoded, or were recognised and skipped

    def add(self, number: int, exc: Exception) -> None:
        self.count += 1
        if len(self.shown) < SHOW_BAD:
            reason = str(exc) if isinstance(exc, FrameError) else f"{type(exc).__name__}: {exc}"
            if len(reason) > REASON_CHARS:
                reason = reason[:REASON_CHARS] + "..."
            self.shown.append((number, reason))

    def lines(self, venue: str) -> list[str]:
        """What stderr says about them: nothing, one line for a file where nothing decodes, or the first few
        and a count of the rest."""
        if not self.count:
            return []
        if not self.good and self.count > SHOW_BAD:
            first = "; ".join(f"line {n}: {reason}" for n, reason in self.shown)
            return [f"{self.path}: not a file of {venue} frames: none of its {self.count:,} frames decodes ({first})"]
        out = [f"{self.path}:{n}: cannot decode: {reason}" for n, reason in self.shown]
        more = self.count - SHOW_BAD
        if more > 0:
            out.append(
                f"{self.path}: {more:,} more {'frame' if more == 1 else 'frames'} cannot be decoded "
                f"({self.count:,} of {self.count + self.good:,})"
            )
        return out


def frame_files(name: str) -> list[Path]:
    """The files a PATH names: itself, or a folder's frame files; InputError for a folder without any."""
    path = Path(name)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in FRAME_SUFFIXES and not p.is_dir())
    if not files:
        raise InputError(f"{name}: is a folder without frame files ({', '.join(FRAME_SUFFIXES)})")
    return files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors.tools.decode",
        description="Decode raw exchange frames (files, one frame per file or per line, or folders of them) "
        "and print each order-book event as a JSON line; other messages are counted on stderr.",
    )
    parser.add_argument(
        "--venue", required=True, choices=[venue.value for venue in Venue], help="whose frames (required)"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="print every event the codec decodes (trades, acks, status and error replies), not only books",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a frame file, or a folder of .json, .jsonl and .txt frame files"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    failures = printed = 0
    skipped: Counter[str] = Counter()
    out = sys.stdout.buffer
    for name in args.paths:
        try:
            files = frame_files(name)
        except InputError as exc:
            print(exc, file=sys.stderr)
            failures += 1
            continue
        for path in files:
            try:
                data = read_bounded(path, MAX_FILE_BYTES)
            except InputError as exc:
                print(exc, file=sys.stderr)
                failures += 1
                continue
            bad = _BadFrames(path)
            for number, frame in frames(data):
                try:
                    events = decode_events(args.venue, frame)
                except Exception as exc:  # one frame's damage, whatever the decoder raised
                    kind = unsupported_kind(args.venue, frame)
                    if kind is not None:
                        skipped[kind] += 1
                        bad.good += 1
                        continue
                    bad.add(number, exc)
                    continue
                bad.good += 1
                lines = []
                for event in events:
                    kind = kind_of(event)
                    if kind is not None and not args.all:
                        skipped[kind] += 1
                    else:
                        lines.append(_encoder.encode(as_document(args.venue, event)) + b"\n")
                out.writelines(lines)
                printed += len(lines)
            out.flush()
            for line in bad.lines(args.venue):
                print(line, file=sys.stderr)
            failures += bad.count
    out.flush()
    if skipped:
        print(skipped_line(skipped, everything=args.all), file=sys.stderr)
    if not printed and not failures:
        wanted = "frame the codec decodes" if args.all else "order-book frame"
        print(f"decode: no {wanted} in {' '.join(args.paths)}", file=sys.stderr)
    return ExitCode.OK if printed and not failures else ExitCode.USAGE


def run() -> int:
    """The command (``python -m``, or the installed script): output into a pipe closed early is fine."""
    return piped(main)


if __name__ == "__main__":
    sys.exit(run())
