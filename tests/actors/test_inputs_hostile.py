"""Hostile input files: one line naming the file and the problem, the documented exit status, no traceback.

Replays (``actors.session --replay``, ``actors.sim.recordings.load``), ``actors.tools.calibrate``,
``actors.tools.report`` and ``actors.tools.decode`` are each given damaged, wrongly shaped,
endless, huge and deeply nested files.
The endless and huge ones run under an address-space limit, so a reader that slurps fails fast. Each command
is forked from a process that imported the project once (tests/forked_cli.py), one replay on a fresh interpreter.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import resource
import subprocess
import sys
import zlib
from functools import partial
from pathlib import Path

import pytest

from actors.sim import recordings
from actors.sim.recordings import RecordingError

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
NESTED = "[" * 100_000
DEEP_OBJECT = '{"a":' * 100_000


def _limit_memory() -> None:  # runs in the child: 2 GiB of address space is plenty for one honest run
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _cli(forked_cli, module: str, *args: str, bounded: bool = False) -> subprocess.CompletedProcess:
    """``python -m module ARGS``, forked from a process that imported the project once (tests/forked_cli.py: the
    same status and output as a fresh interpreter)."""
    return forked_cli.run(module, *args, memory_limit=(2 << 30) if bounded else None)


def _fresh_cli(module: str, *args: str, bounded: bool = False) -> subprocess.CompletedProcess:
    """The same on a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        preexec_fn=_limit_memory if bounded else None,
    )


def _one_line(proc: subprocess.CompletedProcess, *parts: str) -> str:
    """The one stderr line of a refused input, holding every one of ``parts``."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.fixture
def sparse_gib(tmp_path) -> Path:
    """1 GiB of zero bytes and no newline, taking no disk space."""
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    return path


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _not_regular(kind: str, tmp_path: Path, fifo_path: Path | None = None) -> tuple[Path, str]:
    """A path that is not a regular file, and the words its error must hold."""
    if kind == "device":
        return Path("/dev/zero"), "not a regular file"
    if kind == "folder":
        return tmp_path, "is a folder"
    assert fifo_path is not None
    return fifo_path, "not a regular file"


# -- recordings ------------------------------------------------------------------------------------

SNAPSHOT_ID = 1000


def _diff(i: int, rng: random.Random) -> str:
    data = {
        "e": "depthUpdate",
        "E": 1_700_000_000_000 + 50 * i,
        "s": "BTCUSDT",
        "U": SNAPSHOT_ID + i,
        "u": SNAPSHOT_ID + i,
        "b": [[f"{60000 - rng.randint(1, 50) / 100:.2f}", f"{rng.random():.5f}"]],
        "a": [[f"{60000 + rng.randint(1, 50) / 100:.2f}", f"{rng.random():.5f}"]],
    }
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data})


def _snapshot() -> str:
    bids = [[f"{60000 - k:.2f}", "1.00000"] for k in range(1, 21)]
    asks = [[f"{60000 + k:.2f}", "1.00000"] for k in range(1, 21)]
    return json.dumps({"lastUpdateId": SNAPSHOT_ID, "bids": bids, "asks": asks})


def _our_lines(n: int = 2000) -> list[str]:
    """Our recording format: a Binance REST snapshot, then n - 1 chained BTCUSDT diffs, 50 ms apart."""
    rng = random.Random(5)
    out = []
    for i in range(n):
        t_s = round(0.05 * i, 3)
        kind, frame = ("rest", _snapshot()) if i == 0 else ("ws", _diff(i, rng))
        out.append(
            json.dumps(
                {
                    "t_s": t_s,
                    "wall_ns": 1_700_000_000_000_000_000 + int(t_s * 1e9),
                    "venue": "binance",
                    "kind": kind,
                    "frame": frame,
                }
            )
        )
    return out


def _hft_lines(n: int = 50) -> list[str]:
    """The hftbacktest format: ``<ns> <json>``, the bare REST body first."""
    rng = random.Random(6)
    ns = 1_700_000_000_000_000_000
    return [f"{ns} {_snapshot()}"] + [f"{ns + 50_000_000 * i} {_diff(i, rng)}" for i in range(1, n)]


def _cryptofeed_lines(n: int = 50) -> list[str]:
    """A cryptofeed raw file: the connection header, then received frames ``<ts>: <payload>``."""
    rng = random.Random(7)
    url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    head = [
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms <-> 1700000000.0",
        f"{url} -> 1700000000.01: {_snapshot()}",
    ]
    return head + [f"{1700000000 + 0.05 * i:.3f}: {_diff(i, rng)}" for i in range(1, n)]


def _gzip(path: Path, lines: list[str]) -> bytes:
    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    path.write_bytes(data)
    return data


def _corrupted(data: bytes, error: type[Exception]) -> bytes:
    """``data`` with 16 bytes flipped somewhere after its middle, so that gunzip raises ``error``."""
    for start in range(len(data) // 2, len(data) - 40, 7):
        bad = bytearray(data)
        for i in range(start, start + 16):
            bad[i] ^= 0x5A
        try:
            gzip.decompress(bytes(bad))
        except error:
            return bytes(bad)
        except Exception:  # another kind of damage: try the next place
            continue
    raise AssertionError(f"no flip gives {error.__name__}")


@pytest.mark.parametrize("error", [zlib.error, gzip.BadGzipFile], ids=["deflate", "crc"])
def test_corrupt_gzip_recording_is_a_recording_error(tmp_path, error):
    path = tmp_path / "recording_x.jsonl.gz"
    path.write_bytes(_corrupted(_gzip(path, _our_lines()), error))
    with pytest.raises(RecordingError, match=f"{path}: corrupt gzip data"):
        recordings.load([path])


def _complete_lines_before_cut(cut: bytes) -> int:
    text = zlib.decompressobj(wbits=31).decompress(cut)
    return text.count(b"\n")


def test_gzip_recording_cut_short_keeps_every_whole_line(tmp_path):
    path = tmp_path / "recording_x.jsonl.gz"
    data = _gzip(path, _our_lines())
    cut = data[: len(data) * 6 // 10]
    path.write_bytes(cut)
    rec = recordings.load([path])
    assert len(rec.events) == _complete_lines_before_cut(cut) > 100
    assert rec.skipped == {"truncated tail": 1}
    assert "truncated tail 1" in rec.describe()


@pytest.mark.parametrize("fmt", ["ours", "hftbacktest", "cryptofeed"])
def test_torn_last_line_of_a_plain_recording_is_counted(tmp_path, fmt):
    lines = {"ours": _our_lines(50), "hftbacktest": _hft_lines(), "cryptofeed": _cryptofeed_lines()}[fmt]
    path = tmp_path / "rec.txt"
    text = "\n".join(lines)
    path.write_text(text[:-25])  # the last line is torn in its middle; no newline
    rec = recordings.load([path])
    assert rec.skipped == {"truncated tail": 1}
    assert len(rec.events) == len(lines) - 1 - (fmt == "cryptofeed")  # (the cryptofeed header is no event)


def test_an_unterminated_last_line_that_is_whole_is_kept(tmp_path):
    path = tmp_path / "rec.txt"
    path.write_text("\n".join(_hft_lines()))
    rec = recordings.load([path])
    assert len(rec.events) == 50 and not rec.skipped


def test_an_over_long_line_is_skipped_and_an_over_long_first_line_is_no_recording(tmp_path):
    lines = _hft_lines()
    path = tmp_path / "rec.txt"
    with open(path, "w") as f:
        f.write("\n".join(lines[:10]) + "\n")
        f.write("1700000000000000000 " + "x" * (17 * MIB) + "\n")
        f.write("\n".join(lines[10:]) + "\n")
    rec = recordings.load([path])
    assert len(rec.events) == 50 and rec.skipped == {"line over 16 MiB": 1}
    first = tmp_path / "first.txt"
    first.write_text("1700000000000000000 " + "x" * (17 * MIB) + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=f"{first}: not a recording.*longer than 16 MiB"):
        recordings.load([first])


def _nested(fmt: str) -> list[str]:
    """A recording of ``fmt`` with deeply nested frames between good ones."""
    if fmt == "ours":
        good = _our_lines(50)
        bad = [
            json.dumps({"t_s": 0.01, "wall_ns": 1, "venue": v, "kind": "ws", "frame": NESTED})
            for v in ("binance", "upbit")
        ]
        bad.append(json.dumps({"t_s": 0.01, "venue": "binance", "kind": "ws", "frame": DEEP_OBJECT}))
        bad.append(NESTED)  # the line itself
        bad.append('{"t_s": 1, "x": ' + NESTED)
    elif fmt == "hftbacktest":
        good = _hft_lines()
        bad = [f"1700000000000000000 {NESTED}", f"1700000000000000000 {DEEP_OBJECT}"]
    else:
        good = _cryptofeed_lines()
        bad = [
            f"1700000000.02: {NESTED}",
            f"1700000000.02: {DEEP_OBJECT}",
            f"1700000000.02: b'{DEEP_OBJECT}'",
            f"1700000000.02: b'x'{'(' * 100_000}",
            f"https://api.binance.com/api/v3/depth?symbol=BTCUSDT -> 1700000000.02: {DEEP_OBJECT}",
        ]
    return good[:5] + bad + good[5:]


@pytest.mark.parametrize("fmt", ["ours", "hftbacktest", "cryptofeed"])
def test_deeply_nested_frames_are_malformed_not_fatal(tmp_path, fmt):
    lines = _nested(fmt)
    path = tmp_path / "rec.txt"
    path.write_text("\n".join(lines) + "\n")
    rec = recordings.load([path])
    bad = {"ours": 5, "hftbacktest": 2, "cryptofeed": 5}[fmt]
    assert rec.skipped == {"malformed": bad}
    assert len(rec.events) == len(lines) - bad - (fmt == "cryptofeed")


def test_frames_with_values_of_the_wrong_type_are_malformed(tmp_path):
    good = _our_lines(20)
    bad = [
        '{"t_s": "soon", "venue": "binance", "kind": "ws", "frame": "{}"}',
        '{"t_s": 1, "venue": "binance", "kind": "ws", "frame": 42}',
        '{"t_s": 1e999, "venue": "binance", "kind": "ws", "frame": "{}"}',
        "42",
        "[]",
        "null",
    ]
    path = tmp_path / "rec.txt"
    path.write_text("\n".join(good[:3] + bad + good[3:]) + "\n")
    rec = recordings.load([path])
    assert rec.skipped == {"malformed": len(bad)} and len(rec.events) == len(good)


# -- replays on the command line -------------------------------------------------------------------


def _replay(
    cli, path: Path, tmp_path: Path, *, bounded: bool = False, duration_s: float = 5
) -> subprocess.CompletedProcess:
    run = _fresh_cli if cli is None else partial(_cli, cli)
    return run(
        "actors.session",
        "--config",
        "config/demo.toml",
        "--replay",
        str(path),
        "--as-fast-as-possible",
        "--duration",
        str(duration_s),
        "--logs-dir",
        str(tmp_path / "logs"),
        bounded=bounded,
    )


def test_replay_of_a_corrupt_gzip_is_one_line_and_status_2(tmp_path):
    """On a fresh interpreter, as a user runs it; the other commands here are forked."""
    path = tmp_path / "recording_x.jsonl.gz"
    path.write_bytes(_corrupted(_gzip(path, _our_lines()), zlib.error))
    proc = _replay(None, path, tmp_path)
    assert proc.returncode == 2
    assert _one_line(proc, str(path), "corrupt gzip data").startswith("replay error: ")


def test_replay_of_a_recording_cut_short_runs_and_says_so(forked_cli, tmp_path):
    path = tmp_path / "recording_x.jsonl.gz"
    data = _gzip(path, _our_lines())
    path.write_bytes(data[: len(data) * 6 // 10])
    proc = _replay(forked_cli, path, tmp_path, duration_s=120)  # the recording is read as it is served: up to the cut
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (log,) = (tmp_path / "logs").glob("session_*.log")
    assert "end of the recording" in log.read_text() and "truncated tail 1" in log.read_text()


@pytest.mark.parametrize("kind", ["device", "folder", "fifo", "sparse"])
def test_replay_of_what_is_no_recording_is_one_line_and_status_2(forked_cli, tmp_path, fifo, sparse_gib, kind):
    if kind == "sparse":
        path, problem = sparse_gib, "longer than 16 MiB"
    else:
        path, problem = _not_regular(kind, tmp_path, fifo)
    proc = _replay(forked_cli, path, tmp_path, bounded=True)
    assert proc.returncode == 2
    assert _one_line(proc, str(path), problem).startswith("replay error: ")


# -- calibrate -------------------------------------------------------------------------------------


def _fill(side: str = "BUY", ratio: float = 0.5, **more) -> dict:
    return {"t_s": 1.0, "leg": "entry", "side": side, "fill_ratio": ratio, "entry_bps": 5, "tp_bps": 5, **more}


def _fills_file(path: Path, extra: str | None = None, at: int = 4) -> Path:
    lines = [json.dumps(_fill(side, 0.5 + i / 100)) for i in range(6) for side in ("BUY", "SELL")]
    if extra is not None:
        lines.insert(at - 1, extra)
    path.write_text("\n".join(lines) + "\n")
    return path


WRONG_SHAPE = {
    "number": ("42", "Expected `object`"),
    "empty object": ("{}", "missing required field `leg`"),
    "null ratio": (json.dumps(_fill(fill_ratio=None)), "$.fill_ratio"),
    "string ratio": (json.dumps(_fill(fill_ratio="0.5")), "$.fill_ratio"),
    "ratio above 1": (json.dumps(_fill(fill_ratio=1.5)), "$.fill_ratio"),
    "hold": (json.dumps(_fill(side="HOLD")), "$.side"),
    "unknown leg": (json.dumps(_fill(leg="maybe")), "$.leg"),
    "zero tp": (json.dumps(_fill(tp_bps=0)), "$.tp_bps"),
    "string entry": (json.dumps(_fill(entry_bps="5")), "$.entry_bps"),
    "infinite entry": (json.dumps(_fill()).replace('"entry_bps": 5', '"entry_bps": 1e999'), "$.entry_bps"),
    "nested": ('{"leg": "entry", "x": ' + NESTED, "not a fill event"),
    "deep object": ('{"leg": "entry", "x": ' + DEEP_OBJECT, "not a fill event"),
}


@pytest.mark.parametrize("name", list(WRONG_SHAPE))
def test_calibrate_names_the_line_that_is_not_a_fill_event(forked_cli, tmp_path, name):
    line, problem = WRONG_SHAPE[name]
    events = _fills_file(tmp_path / "fill_events_x.jsonl", line)
    proc = _cli(forked_cli, "actors.tools.calibrate", str(events), "--out", str(tmp_path / "cal.json"))
    assert proc.returncode == 2  # bad input
    _one_line(proc, f"{events}:4: not a fill event", problem)
    assert not (tmp_path / "cal.json").exists()


def test_calibrate_of_good_fill_events_still_works(forked_cli, tmp_path):
    events = _fills_file(tmp_path / "fill_events_x.jsonl", json.dumps({"leg": "hedge", "side": "BUY"}))
    proc = _cli(forked_cli, "actors.tools.calibrate", str(events), "--out", str(tmp_path / "cal.json"))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and json.loads((tmp_path / "cal.json").read_text())["zones"]


@pytest.mark.parametrize("kind", ["device", "folder", "fifo", "over-long line"])
def test_calibrate_input_that_is_no_fill_event_file(forked_cli, tmp_path, fifo, kind):
    if kind == "over-long line":
        path, problem = tmp_path / "fill_events_x.jsonl", "longer than 16 MiB"
        path.write_text(json.dumps(_fill()) + "\n" + '{"leg": "' + "x" * (17 * MIB) + '"}\n')
    else:
        path, problem = _not_regular(kind, tmp_path, fifo)
    proc = _cli(forked_cli, "actors.tools.calibrate", str(path), "--out", str(tmp_path / "cal.json"), bounded=True)
    assert proc.returncode == 2  # bad input
    _one_line(proc, str(path), problem)


@pytest.mark.parametrize("kind", ["under a file", "a folder"])
def test_calibrate_to_an_unwritable_out(forked_cli, tmp_path, kind):
    events = _fills_file(tmp_path / "fill_events_x.jsonl")
    (tmp_path / "plain").write_text("x")
    out = tmp_path / "plain" / "cal.json" if kind == "under a file" else tmp_path
    proc = _cli(forked_cli, "actors.tools.calibrate", str(events), "--out", str(out))
    assert proc.returncode == 2  # bad input
    _one_line(proc, str(out), "cannot write")


@pytest.mark.parametrize("content", ["device", "sparse", "[]", "42", "nested"])
def test_calibrate_keep_from_a_bad_calibration(forked_cli, tmp_path, sparse_gib, content):
    events = _fills_file(tmp_path / "fill_events_x.jsonl")
    if content == "device":
        base, problem = Path("/dev/zero"), "not a regular file"
    elif content == "sparse":
        base, problem = sparse_gib, "too large"
    else:
        base, problem = tmp_path / "base.json", "calibration"
        base.write_text(NESTED if content == "nested" else content)
    proc = _cli(
        forked_cli,
        "actors.tools.calibrate",
        str(events),
        "--out",
        str(tmp_path / "cal.json"),
        "--keep-from",
        str(base),
        "--keep",
        "10/12",
        bounded=True,
    )
    assert proc.returncode == 2  # bad input
    _one_line(proc, str(base), problem)


@pytest.mark.parametrize("keep", ["10", "10/x", "a/b/c"])
def test_calibrate_keep_that_is_no_zone(forked_cli, tmp_path, keep):
    events = _fills_file(tmp_path / "fill_events_x.jsonl")
    proc = _cli(
        forked_cli,
        "actors.tools.calibrate",
        str(events),
        "--out",
        str(tmp_path / "cal.json"),
        "--keep-from",
        str(ROOT / "config" / "calibration" / "d84_1.json"),
        "--keep",
        keep,
    )
    assert proc.returncode == 2  # bad input
    _one_line(proc, "--keep", repr(keep))


# -- report ----------------------------------------------------------------------------------------

SAMPLE_KPI = ROOT / "tests" / "actors" / "kpi_sample.json"
SID = "20260101_000000"


def _good_fill_lines(n: int = 8) -> list[str]:
    out = []
    for i in range(n):
        side = ("BUY", "SELL")[i % 2]
        out.append(
            json.dumps(
                {
                    "t_s": 1.0 + i,
                    "leg": "entry" if i < 4 else "exit",
                    "side": side,
                    "fill_ratio": 1.0,
                    "available_volume": 1.0 + i / 10,
                    "filled_qty": 0.1,
                    "slippage_bps": 0.5,
                    "decided_t_s": 0.9 + i,
                    "premium_bps": 10.0,
                    "trade_pnl_usdt": 1.0 if i == 7 else None,
                    "entry_bps": 5,
                    "tp_bps": 5,
                }
            )
        )
    return out


def _logs(folder: Path, kpi: str | None = None, fill_lines: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"kpi_{SID}.json").write_text(SAMPLE_KPI.read_text() if kpi is None else kpi)
    (folder / f"fill_events_{SID}.jsonl").write_text("\n".join(fill_lines or _good_fill_lines()) + "\n")
    return folder


def _sample_without(key: str) -> str:
    kpi = json.loads(SAMPLE_KPI.read_text())
    del kpi[key]
    return json.dumps(kpi)


BAD_KPI = {
    "list": ("[]", "Expected `object`"),
    "number": ("42", "Expected `object`"),
    "empty": ("{}", "missing required field"),
    "no feeds": (_sample_without("feeds"), "`feeds`"),
    "no pnl": (_sample_without("pnl_usdt"), "`pnl_usdt`"),
    "nested": (NESTED, "not a KPI file"),
    "not json": ("{oops", "not a KPI file"),
}


@pytest.mark.parametrize("compare", [False, True], ids=["report", "compare"])
@pytest.mark.parametrize("name", list(BAD_KPI))
def test_report_of_a_file_that_is_not_a_kpi_file(forked_cli, tmp_path, name, compare):
    content, problem = BAD_KPI[name]
    good = _logs(tmp_path / "good")
    folder = _logs(tmp_path / "bad", content)
    args = ("--compare", str(good), str(folder)) if compare else (str(folder),)
    proc = _cli(forked_cli, "actors.tools.report", *args)
    assert proc.returncode == 2  # bad input
    line = _one_line(proc, f"{folder / f'kpi_{SID}.json'}: not a KPI file (", problem)
    assert line.startswith("report: ")


@pytest.mark.parametrize("kind", ["device", "folder", "sparse"])
def test_report_of_a_kpi_file_that_is_not_a_regular_small_file(forked_cli, tmp_path, sparse_gib, kind):
    folder = tmp_path / "logs"
    folder.mkdir()
    kpi = folder / f"kpi_{SID}.json"
    problem = {"device": "not a regular file", "folder": "is a folder", "sparse": "too large"}[kind]
    if kind == "folder":
        kpi.mkdir()
    else:
        kpi.symlink_to("/dev/zero" if kind == "device" else sparse_gib)
    proc = _cli(forked_cli, "actors.tools.report", str(folder), bounded=True)
    assert proc.returncode == 2  # bad input
    _one_line(proc, str(kpi), problem)


def test_report_skips_and_counts_fill_lines_of_the_wrong_shape(forked_cli, tmp_path):
    bad = ["42", "{}", json.dumps({"side": "HOLD"}), '{"side": "BUY", "x": ' + NESTED, "not json"]
    good = _good_fill_lines()
    folder = _logs(tmp_path / "logs", fill_lines=good[:3] + bad + good[3:])
    proc = _cli(forked_cli, "actors.tools.report", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    text = (folder / f"report_{SID}.md").read_text()
    assert "5 lines of fill_events_20260101_000000.jsonl skipped" in text
    assert "| BUY | available_volume | 4 |" in text  # the good lines all count
    proc = _cli(forked_cli, "actors.tools.report", "--compare", str(_logs(tmp_path / "other")), str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "5 lines of fill_events_20260101_000000.jsonl skipped" in proc.stdout


# -- decode ----------------------------------------------------------------------------------------

TICKER = '{"u":1,"s":"X","b":"1.0","B":"2","a":"1.5","A":"3"}'


@pytest.mark.parametrize("frame", [NESTED, DEEP_OBJECT], ids=["array", "object"])
def test_decode_a_deeply_nested_frame(forked_cli, tmp_path, frame):
    lines = tmp_path / "frames.txt"
    lines.write_text(f"{TICKER}\n{frame}\n{TICKER}\n")
    proc = _cli(forked_cli, "actors.tools.decode", "--venue", "binance", str(lines))
    assert proc.returncode == 2  # bad input
    _one_line(proc, f"{lines}:2: cannot decode: ")
    assert [json.loads(x)["event"] for x in proc.stdout.splitlines()] == ["BookTicker", "BookTicker"]
    whole = tmp_path / "frame.json"
    whole.write_text(frame)
    proc = _cli(forked_cli, "actors.tools.decode", "--venue", "upbit", str(whole))
    assert proc.returncode == 2  # bad input
    _one_line(proc, f"{whole}:1: cannot decode: ")


@pytest.mark.parametrize("kind", ["device", "folder", "fifo", "sparse"])
def test_decode_a_file_that_is_not_a_frame_file(forked_cli, tmp_path, fifo, sparse_gib, kind):
    if kind == "sparse":
        path, problem = sparse_gib, "too large"
    else:
        path, problem = _not_regular(kind, tmp_path, fifo)
    proc = _cli(forked_cli, "actors.tools.decode", "--venue", "binance", str(path), bounded=True)
    assert proc.returncode == 2  # bad input
    _one_line(proc, str(path), problem)


def test_decode_into_a_pipe_closed_early_stops_quietly(fixtures, tmp_path):
    """`decode ... | head -1`: the reader closing the pipe is its choice, not an error (no traceback)."""
    frames = tmp_path / "frames.txt"
    line = (fixtures / "binance" / "depth_diff_100ms_combined_BTCUSDT_hftbacktest_2024_1.json").read_text().strip()
    frames.write_text((line + "\n") * 20_000)  # more output than a pipe buffer holds
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.tools.decode", "--venue", "binance", str(frames)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err and err == b""
