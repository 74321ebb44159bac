"""A long hftbacktest recording made of copies of a short one laid back to back (for the replay memory bench).

``python -m bench.longday [--hours 24] [--out PATH] [--depth-only]`` writes a gzip recording in the
hftbacktest collector's format (``<local_receive_ns> <raw JSON>`` a line) that lasts ``hours``, built
from the 346 s Binance recording in ``../shared/fixtures`` so that the benchmark can show that replay
memory does not grow with the length of the recording. It prints a summary as JSON.

**Copies.** The source spans ``span`` from its first to its last line's receive time; copies follow
each other every ``period`` = ``span`` + 1 s (rounded up to a whole millisecond, and never shorter
than the source's spread of exchange times ``E``/``T`` plus 1 s), and ``ceil(hours * 3600 / period)``
of them are written. Copy ``k`` is the source with

- every receive time shifted by ``k * period`` (ns) and every exchange time ``E`` and trade time
  ``T`` by ``k * period`` (ms), so both clocks keep running forward across the seams;
- every order-book update id (``U`` and ``u`` of the depth diffs, bookTicker's ``u``, the REST
  snapshot's ``lastUpdateId``) shifted by ``k * id_offset``, where ``id_offset`` = the source's
  largest update id - its smallest + 1000, so that each copy's ids are all above the previous
  copy's; trade ids ``t`` likewise by their own offset (largest - smallest + 1000).

**The seam.** Each copy keeps its own REST depth snapshot. At a seam the diff ids jump (by about
1000 past the previous copy's last ``u``): to a client that is a gap in the sequence, which it
handles as it would live, by dropping its book and resyncing from a fresh snapshot, and the copy's
recorded snapshot (received shortly after the copy's first diffs, as in the source) is what it gets.
So a long recording exercises one resync per copy (about 250 a day) on top of the steady flow.

**Speed and memory.** The source (11 MB of text) is parsed once into one template: its bytes with
every shifted number replaced by ``%d``, plus the numbers and the unit each moves by. A copy is
then one ``template % numbers`` (C speed) written through gzip at level 1; memory is the source's
size, whatever ``hours`` is, and a day (about 10 M lines, 2.8 GB of text) takes a minute or so.
Apart from the shifted numbers the output is the source byte for byte (copy 0 is the source).
``--depth-only`` keeps only the REST snapshot and the depth diffs (what the replay uses).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

import attrs
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "fixtures" / "recorded" / "hftbacktest" / "btcusdt_20240808.gz"

GAP_NS = 1_000_000_000  # between one copy's last line and the next copy's first
ID_MARGIN = 1000  # the ids jump by about this much at a seam
NS_PER_MS = 1_000_000

_LINE = re.compile(rb"(\d+) ")  # the receive time that starts every line
# the numbers that move: exchange times, order-book update ids, trade ids (none occurs inside a JSON string)
_FIELD = re.compile(rb'"(E|T|U|u|lastUpdateId|t)":(\d+)')
_TIME_MS_FIELDS = {b"E", b"T"}
_UPDATE_ID_FIELDS = {b"U", b"u", b"lastUpdateId"}
_TRADE_ID_FIELDS = {b"t"}
_DEPTH_STREAM = re.compile(rb'^\{"stream":"[^"]*@depth(@\d+ms)?","data":\{"e":"depthUpdate"')
_SNAPSHOT = re.compile(rb'^\{"lastUpdateId":\d+,')

# what each number moves by per copy: an index into the per-copy units (see ``_Template.units``)
_LOCAL_NS, _EXCHANGE_MS, _UPDATE_ID, _TRADE_ID = range(4)


@attrs.frozen
class _Template:
    """A source recording as one ``%``-template: ``text % tuple(numbers + k * shift)`` is copy ``k``."""

    text: bytes  # the kept lines, every shifted number replaced by %d (and a literal % by %%)
    numbers: np.ndarray  # int64, the source's numbers in template order
    kinds: np.ndarray  # int64, which unit each number moves by (_LOCAL_NS ...)
    lines: int  # kept lines
    source_lines: int
    first_ns: int
    last_ns: int
    period_ms: int
    id_offset: int
    trade_id_offset: int

    @property
    def period_ns(self) -> int:
        return self.period_ms * NS_PER_MS

    def shift(self, copy: int) -> np.ndarray:
        """What each number moves by in copy ``copy``."""
        units = np.array([self.period_ns, self.period_ms, self.id_offset, self.trade_id_offset], dtype=np.int64)
        return units[self.kinds] * copy

    def render(self, copy: int) -> bytes:
        return self.text % tuple((self.numbers + self.shift(copy)).tolist())


def _is_depth(payload: bytes) -> bool:
    """A REST depth snapshot or a depth diff (what ``depth_only`` keeps)."""
    return _SNAPSHOT.match(payload) is not None or _DEPTH_STREAM.match(payload) is not None


def _spread(values: list[int]) -> int:
    return max(values) - min(values) if values else 0


def parse_source(source: Path, *, depth_only: bool = False) -> _Template:
    """Read ``source`` once into a template; the period and the offsets come from every line, kept or not."""
    parts: list[bytes] = []
    numbers: list[int] = []
    kinds: list[int] = []
    local_ns: list[int] = []
    exchange_ms: list[int] = []
    update_ids: list[int] = []
    trade_ids: list[int] = []
    kept = 0
    with gzip.open(source, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            m = _LINE.match(line)
            if m is None:
                raise ValueError(f"{source}:{n}: not '<local_receive_ns> <json>': {line[:80]!r}")
            ns = _number(m.group(1), source, n)
            if local_ns and ns < local_ns[-1]:
                raise ValueError(f"{source}:{n}: receive time goes back ({ns} < {local_ns[-1]})")
            local_ns.append(ns)
            payload = line[m.end() :]
            keep = not depth_only or _is_depth(payload)
            if keep:
                kept += 1
                parts.append(b"%d ")
                numbers.append(ns)
                kinds.append(_LOCAL_NS)
            at = 0
            for field in _FIELD.finditer(payload):
                name, value = field.group(1), _number(field.group(2), source, n)
                if name in _TIME_MS_FIELDS:
                    kind, seen = _EXCHANGE_MS, exchange_ms
                elif name in _UPDATE_ID_FIELDS:
                    kind, seen = _UPDATE_ID, update_ids
                else:
                    kind, seen = _TRADE_ID, trade_ids
                seen.append(value)
                if keep:
                    parts.append(payload[at : field.start(2)].replace(b"%", b"%%"))
                    parts.append(b"%d")
                    numbers.append(value)
                    kinds.append(kind)
                    at = field.end(2)
            if keep:
                parts.append(payload[at:].replace(b"%", b"%%"))
    if not local_ns:
        raise ValueError(f"{source}: empty")
    span_ns = local_ns[-1] - local_ns[0]
    period_ms = max(math.ceil((span_ns + GAP_NS) / NS_PER_MS), _spread(exchange_ms) + GAP_NS // NS_PER_MS)
    return _Template(
        text=b"".join(parts),
        numbers=np.array(numbers, dtype=np.int64),
        kinds=np.array(kinds, dtype=np.int64),
        lines=kept,
        source_lines=len(local_ns),
        first_ns=local_ns[0],
        last_ns=local_ns[-1],
        period_ms=period_ms,
        id_offset=_spread(update_ids) + ID_MARGIN,
        trade_id_offset=_spread(trade_ids) + ID_MARGIN,
    )


def _number(digits: bytes, source: Path, n: int) -> int:
    """An integer as spelled in the source; a leading zero would not survive the round trip through %d."""
    if len(digits) > 1 and digits.startswith(b"0"):
        raise ValueError(f"{source}:{n}: number with a leading zero: {digits!r}")
    return int(digits)


def copies_for(hours: float, period_ms: int) -> int:
    return max(1, math.ceil(hours * 3600 * 1000 / period_ms))


def write_long_recording(source: Path, out: Path, hours: float, *, depth_only: bool = False) -> dict:
    """Write ``ceil(hours * 3600 / period)`` shifted copies of ``source`` to ``out`` (gzip) and return a summary.

    The file appears at ``out`` only once complete (written to ``out.part`` first, then renamed)."""
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    started = time.perf_counter()
    template = parse_source(source, depth_only=depth_only)
    copies = copies_for(hours, template.period_ms)
    largest = int(template.numbers.max()) + (copies - 1) * max(template.period_ns, template.id_offset)
    if largest >= 2**63:  # numpy's int64 would wrap silently
        raise ValueError(f"{copies} copies overflow a 64-bit integer")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    text_bytes = 0
    with gzip.open(partial, "wb", compresslevel=1) as f:
        for k in range(copies):
            chunk = template.render(k)
            f.write(chunk)
            text_bytes += len(chunk)
    os.replace(partial, out)
    span_ns = (copies - 1) * template.period_ns + template.last_ns - template.first_ns
    return {
        "source": str(source),
        "out": str(out),
        "hours": hours,
        "depth_only": depth_only,
        "copies": copies,
        "source_lines": template.source_lines,
        "lines": copies * template.lines,
        "period_s": template.period_ms / 1000,
        "span_s": round(span_ns / 1e9, 3),
        "id_offset": template.id_offset,
        "trade_id_offset": template.trade_id_offset,
        "text_bytes": text_bytes,
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.longday", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="length of the recording (default 24)")
    parser.add_argument("--out", type=Path, default=None, help="output .gz (default: under the system temp dir)")
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"recording to copy (default {SOURCE})")
    parser.add_argument("--depth-only", action="store_true", help="keep only the REST snapshot and depth diffs")
    args = parser.parse_args(argv)
    out = args.out
    if out is None:
        suffix = "_depth" if args.depth_only else ""
        out = Path(tempfile.gettempdir()) / f"longday_{args.hours:g}h{suffix}.gz"
    summary = write_long_recording(args.source, out, args.hours, depth_only=args.depth_only)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
