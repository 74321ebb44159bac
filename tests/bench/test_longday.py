"""bench.longday: copies of the shared hftbacktest recording laid back to back, shifted in time and ids."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import msgspec
import pytest

from bench import longday

HFT = "recorded/hftbacktest/btcusdt_20240808.gz"
SOURCE_LINES = 41249  # 28040 bookTicker + 9757 trade + 3451 depth diffs + 1 REST snapshot
DEPTH_LINES = 3452
HOURS = 0.25  # 900 s of ~347 s copies: 3


@pytest.fixture(scope="module")
def source() -> Path:
    path = longday.ROOT.parent / "shared" / "fixtures" / HFT
    if not path.is_file():
        pytest.skip(f"needs ../shared/fixtures/{HFT} (absent on a fresh clone without ../shared)")
    return path


def _read(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return f.readlines()


class _Numbers(msgspec.Struct):
    """The numbers that move, wherever a line has them (a stream's data, or a bare REST snapshot)."""

    E: int | None = None
    T: int | None = None
    U: int | None = None
    u: int | None = None
    lastUpdateId: int | None = None
    t: int | None = None


class _Line(_Numbers):
    data: _Numbers | None = None


_LINE = msgspec.json.Decoder(_Line)
_UNQUOTED_INT = re.compile(rb'":\d+')  # an integer value (prices and sizes are quoted strings)


def _fields(line: bytes) -> dict[str, int]:
    """The numbers of a line that move: local ns, E, T, U, u, lastUpdateId, t (decoded as JSON)."""
    ns, payload = line.split(b" ", 1)
    doc = _LINE.decode(payload)
    numbers = doc.data or doc
    found = {key: getattr(numbers, key) for key in _Numbers.__struct_fields__}
    return {"ns": int(ns), **{key: value for key, value in found.items() if value is not None}}


def _masked(line: bytes) -> bytes:
    """The line with its receive time and every integer value blanked: what no shift may change."""
    return _UNQUOTED_INT.sub(b'":#', line.split(b" ", 1)[1])


def _update_ids(fields: dict[str, int]) -> list[int]:
    return [fields[key] for key in ("U", "u", "lastUpdateId") if key in fields]


def _is_snapshot(line: bytes) -> bool:
    return b' {"lastUpdateId":' in line


def _is_diff(line: bytes) -> bool:
    return b'"e":"depthUpdate"' in line


def test_copies_are_the_source_shifted_in_time_and_ids(source, tmp_path):
    out = tmp_path / "long.gz"
    summary = longday.write_long_recording(source, out, HOURS)
    src, lines = _read(source), _read(out)
    assert len(src) == SOURCE_LINES and summary["source_lines"] == SOURCE_LINES
    assert summary["copies"] == 3 and summary["lines"] == len(lines) == 3 * SOURCE_LINES
    assert summary["bytes"] == out.stat().st_size and summary["text_bytes"] == sum(map(len, lines))
    assert not out.with_name(out.name + ".part").exists()

    src_fields = [_fields(line) for line in src]
    src_span_ns = src_fields[-1]["ns"] - src_fields[0]["ns"]
    period_ms = round(summary["period_s"] * 1000)
    assert src_span_ns + 1e9 <= period_ms * 1e6 < src_span_ns + 1e9 + 1e6  # the span + 1 s, to the ms
    ids = [i for f in src_fields for i in _update_ids(f)]
    assert summary["id_offset"] == max(ids) - min(ids) + 1000
    assert summary["span_s"] == pytest.approx((2 * period_ms * 1e6 + src_span_ns) / 1e9, abs=1e-3)

    copies = [lines[k * SOURCE_LINES : (k + 1) * SOURCE_LINES] for k in range(3)]
    assert copies[0] == src  # copy 0 is the source byte for byte
    fields = [src_fields] + [[_fields(line) for line in copy] for copy in copies[1:]]
    shifts = {"ns": period_ms * 1_000_000, "E": period_ms, "T": period_ms, "t": summary["trade_id_offset"]}
    shifts |= dict.fromkeys(("U", "u", "lastUpdateId"), summary["id_offset"])
    src_masked = [_masked(line) for line in src]
    for k in (1, 2):
        assert [_masked(line) for line in copies[k]] == src_masked  # nothing but the integers changed
        for src_f, f in zip(src_fields, fields[k]):
            assert f == {key: value + k * shifts[key] for key, value in src_f.items()}

    for k in (0, 1):
        before, after, b, a = copies[k], copies[k + 1], fields[k], fields[k + 1]
        # both clocks run on across the seam
        assert b[-1]["ns"] < a[0]["ns"]
        assert max(f[key] for f in b for key in ("E", "T") if key in f) < min(f["E"] for f in a if "E" in f)
        # every update id of the next copy is above every one of this copy; the next snapshot is past the last diff
        assert max(i for f in b for i in _update_ids(f)) < min(i for f in a for i in _update_ids(f))
        last_diff_u = [f["u"] for x, f in zip(before, b) if _is_diff(x)][-1]
        (snapshot,) = [f["lastUpdateId"] for x, f in zip(after, a) if _is_snapshot(x)]
        assert snapshot > last_diff_u
    ns = [f["ns"] for copy in fields for f in copy]
    assert all(x <= y for x, y in zip(ns, ns[1:]))


def test_depth_only_keeps_the_snapshots_and_diffs_and_replays(source, tmp_path):
    from actors.sim.recordings import Kind, Recording

    full, depth = tmp_path / "full.gz", tmp_path / "depth.gz"
    longday.write_long_recording(source, full, HOURS)
    summary = longday.write_long_recording(source, depth, HOURS, depth_only=True)
    lines = _read(depth)
    assert summary["copies"] == 3 and summary["lines"] == len(lines) == 3 * DEPTH_LINES
    assert lines == [x for x in _read(full) if _is_snapshot(x) or _is_diff(x)]
    assert sum(map(_is_snapshot, lines)) == 3

    # the replay reads it as one recording: three snapshots, diffs in time order across the seams
    recording = Recording.open([depth])
    events = list(recording.events(validate=False))
    kinds = [e.kind for e in events]
    assert kinds.count(Kind.SNAPSHOT) == 3 and kinds.count(Kind.DIFF) == 3 * (DEPTH_LINES - 1)
    times = [e.at_s for e in events]
    assert all(x <= y for x, y in zip(times, times[1:]))
    assert times[-1] == pytest.approx(summary["span_s"], abs=3)


def test_copies_cover_the_hours(source, tmp_path):
    summary = longday.write_long_recording(source, tmp_path / "short.gz", 0.01)  # 36 s: one copy
    assert summary["copies"] == 1 and summary["lines"] == SOURCE_LINES
    assert _read(tmp_path / "short.gz") == _read(source)
    assert longday.copies_for(24, round(summary["period_s"] * 1000)) == 249
    with pytest.raises(ValueError):
        longday.write_long_recording(source, tmp_path / "none.gz", 0)
