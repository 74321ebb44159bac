"""How much a market behaved like the real one: ``python -m actors.tools.realism FILE... [--reference MODEL_JSON]
[--json]`` (also ``arb-realism``; docs/realism.md).

A FILE is a session's ``premium_<id>.csv`` (any of its versions: with ``binance_mid,upbit_mid,krw_per_usdt``
the Binance and Upbit statistics are measured too; the older 4- and 5-column files give the premium's) or
the shared market file (``unix_ts_utc,upbit_krw_close,binance_usdt_close,...,premium_usdt_bps,block_id``,
gzip or plain; ``block_id`` separates stretches: on the real data this prints the real figures). Several
files are pooled, each contributing its own stretches (a statistic never spans two files). The figures are
``actors.core.realism``'s, beside the reference of a market model file (``--reference``; default the
shipped model, ``config/market/upbit_binance_btc_2024h2.json``; without one, the figures alone).

A premium file's minutes are the session's clock (``t_s``), except a replay's (the KPI file beside it says
so), whose minutes are the recording's (``ts_utc``), as the session's own KPI measured them.

Exit status 0 with the table; 2 with one line ``realism: FILE: problem`` for input it cannot use (not a
regular file, empty, not text, a line over 4 KiB, wrong columns, a row that does not parse or holds a price
that is not a positive finite number, times going backwards, corrupt gzip data, a bad reference file, or
too short for any statistic). A torn last row (a session killed mid-write) is skipped.

This module also writes the report's parts about the market: the sentence that says where the market came
from (``market_sentence``) and the Realism section (``section``); the label of each plot is
``actors.records.summary.market_label``.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal, Sequence

import attrs
import msgspec

from actors.core import realism
from actors.inputs import KIB, InputError, LineReader
from actors.records.kpi import Kpi, ReplayInfo
from actors.records.paths import SessionPaths
from actors.records.realism import (
    DEFAULT_MODEL,
    OU,
    MarketModelInfo,
    ModelReference,
    RealismKpi,
    RealismStat,
    default_model_path,
    figures,
    load_model_reference,
)
from actors.records.status import PREMIUM_COLUMNS
from actors.tools import piped
from actors.tools.session_files import read_kpi

MAX_LINE_BYTES = 4 * KIB  # a row of either format is under 200 bytes
MARKET_COLUMNS = (
    "unix_ts_utc",
    "upbit_krw_close",
    "binance_usdt_close",
    "usdkrw_daily",
    "upbit_usdtkrw_daily_close",
    "premium_fx_bps",
    "premium_usdt_bps",
    "block_id",
)
PREMIUM_WIDTHS = (4, 5, len(PREMIUM_COLUMNS))  # the premium file's versions
DESCRIPTION = (
    "Measure the statistics of the real Upbit/Binance market (premium changes, their autocorrelations, "
    "Binance and Upbit returns, Upbit following Binance) on premium CSVs of sessions or on the shared market "
    "file, beside a market model's real references."
)


class RealismInputError(InputError):
    """A file the realism figures cannot be measured on; str() names the file and the problem."""


@attrs.frozen
class Series:
    """One file's 1-minute closes."""

    path: str
    kind: Literal["premium", "market"]
    clock: Literal["session", "recording"]  # whose minutes: a session's t_s, or timestamps of the market
    rows: int
    stretches: tuple[realism.Stretch, ...]
    prices: bool  # Binance's and Upbit's closes too (else the premium alone)


# -- reading ---------------------------------------------------------------------------------------


def _cells(line: bytes) -> list[str]:
    return line.decode("utf-8", errors="replace").strip().split(",")


def _number(cell: str, column: str, *, price: bool = False) -> float:
    try:
        x = float(cell)
    except ValueError:
        raise ValueError(f"{column} {cell[:20]!r} is not a number") from None
    if not math.isfinite(x) or (price and x <= 0):
        raise ValueError(f"{column} {cell[:20]!r} is not a {'positive ' if price else ''}finite number")
    return x


def _rows(path: str | Path, reader: Iterator[tuple[int, bytes | None, bool]]) -> Iterator[tuple[int, bytes, bool]]:
    for number, line, terminated in reader:
        if line is None:
            raise RealismInputError(f"{path}: line {number} is longer than {MAX_LINE_BYTES // KIB} KiB")
        yield number, line, terminated


def read_series(path: str | Path) -> Series:
    """The 1-minute closes of a premium CSV or of the market file; RealismInputError says what is wrong."""
    lines = _rows(path, iter(LineReader(path, MAX_LINE_BYTES)))
    first = next(lines, None)
    if first is None:
        raise RealismInputError(f"{path}: empty")
    header = _cells(first[1])
    if tuple(header) == MARKET_COLUMNS:
        return _market(path, lines)
    if len(header) in PREMIUM_WIDTHS and tuple(header) == PREMIUM_COLUMNS[: len(header)]:
        return _premium(path, len(header), lines)
    shown = ",".join(header)[:100]
    raise RealismInputError(
        f"{path}: wrong columns: expected a premium CSV ({','.join(PREMIUM_COLUMNS[:4])},...) or the market file "
        f"({','.join(MARKET_COLUMNS[:3])},...), got {shown!r}"
    )


def _recorded(path: str | Path) -> bool:
    """Whether a premium file's session was a replay (its KPI file beside it says so): its minutes are then
    the recording's (``ts_utc``)."""
    paths = SessionPaths.of_file(Path(path), "premium")
    if paths is None or not paths.kpi.is_file():
        return False
    try:
        return read_kpi(paths.kpi).market == "replay"
    except Exception:  # not a KPI file: the session clock, as for a file alone
        return False


def _premium(path: str | Path, width: int, lines: Iterator[tuple[int, bytes, bool]]) -> Series:
    recorded = _recorded(path)
    prices = width == len(PREMIUM_COLUMNS)
    closes = realism.MinuteCloses()
    rows, last_t = 0, -math.inf
    for number, line, terminated in lines:
        cells = _cells(line)
        try:
            if len(cells) != width:
                raise ValueError(f"{len(cells)} cells where the header has {width}")
            if recorded:
                t = _utc_seconds(cells[3])
            else:
                t = _number(cells[0], "t_s")
            premium = _number(cells[1], "premium_bps")
            binance = _number(cells[5], "binance_mid", price=True) if prices else None
            upbit = _number(cells[6], "upbit_mid", price=True) if prices else None
            if prices:
                _number(cells[7], "krw_per_usdt", price=True)  # checked, not measured
        except ValueError as exc:
            if not terminated:  # a torn last row: the session was killed while writing it
                break
            raise RealismInputError(f"{path}: line {number}: {exc}") from None
        if t < last_t:
            raise RealismInputError(f"{path}: line {number}: the time goes backwards ({t:g} after {last_t:g})")
        last_t = t
        closes.add(t, premium, binance, upbit)
        rows += 1
    if not rows:
        raise RealismInputError(f"{path}: no rows after the header")
    clock: Literal["session", "recording"] = "recording" if recorded else "session"
    return Series(str(path), "premium", clock, rows, tuple(closes.stretches()), prices)


def _utc_seconds(cell: str) -> float:
    try:
        return datetime.fromisoformat(cell).timestamp()
    except ValueError:
        raise ValueError(f"ts_utc {cell[:40]!r} is not an ISO 8601 time") from None


def _market(path: str | Path, lines: Iterator[tuple[int, bytes, bool]]) -> Series:
    stretches: list[realism.Stretch] = []
    closes, block = realism.MinuteCloses(), None
    rows, last_t = 0, -math.inf
    for number, line, terminated in lines:
        cells = _cells(line)
        try:
            if len(cells) != len(MARKET_COLUMNS):
                raise ValueError(f"{len(cells)} cells where the header has {len(MARKET_COLUMNS)}")
            t = _number(cells[0], "unix_ts_utc")
            upbit = _number(cells[1], "upbit_krw_close", price=True)
            binance = _number(cells[2], "binance_usdt_close", price=True)
            premium = _number(cells[6], "premium_usdt_bps")
        except ValueError as exc:
            if not terminated:
                break
            raise RealismInputError(f"{path}: line {number}: {exc}") from None
        if cells[7] != block:  # a new block: never a change across two
            stretches += closes.stretches()
            closes, block, last_t = realism.MinuteCloses(), cells[7], -math.inf
        if t < last_t:
            raise RealismInputError(f"{path}: line {number}: the time goes backwards ({t:g} after {last_t:g})")
        last_t = t
        closes.add(t, premium, binance, upbit)
        rows += 1
    if not rows:
        raise RealismInputError(f"{path}: no rows after the header")
    stretches += closes.stretches()
    return Series(str(path), "market", "recording", rows, tuple(stretches), True)


# -- the table -------------------------------------------------------------------------------------


def _g(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{round(x, 10) + 0.0:.3g}"


def _yes(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "no")


def _windows(stat: RealismStat) -> str:
    if stat.p10 is None or stat.p90 is None:
        return "-"
    return f"{_g(stat.p10)} to {_g(stat.p90)}" + ("" if stat.p50 is None else f" (median {_g(stat.p50)})")


def rows(block: RealismKpi) -> list[list[str]]:
    """One row per statistic measured: label, measured, real (whole data), real windows, the two verdicts."""
    return [
        [
            stat.label,
            _g(stat.measured),
            _g(stat.reference),
            _windows(stat),
            _yes(stat.in_window_range),
            _yes(stat.agrees),
        ]
        for stat in block.stats.values()
        if stat.measured is not None
    ]


def not_measured(block: RealismKpi) -> str:
    """ "Not measured: X (needs ...), ...", or "" when everything was."""
    missing = [f"{stat.label} (needs {stat.needs})" for stat in block.stats.values() if stat.measured is None]
    if not missing:
        return ""
    return f"Not measured, too short (the longest stretch here is {block.longest_min} min): " + "; ".join(missing) + "."


def _reference_words(block: RealismKpi) -> str:
    if block.reference is None:
        note = (block.reference_note or "").split("no reference: ")[-1]
        return f"no real reference ({note})" if note else "no real reference"
    windows = f"; its windows are {block.window_min} min long" if block.window_min else ""
    return f"{block.reference_source} (the reference of {block.reference}, {block.reference_path}{windows})"


def spread_sentence(block: RealismKpi) -> str:
    """Why the real windows' spread, not the whole data's value, is the fair comparison for one session."""
    if not block.window_min:
        return ""
    hours = f"{block.window_min / 60:g}-hour" if block.window_min % 60 == 0 else f"{block.window_min}-minute"
    return (
        f"A single {hours} window of the real market varies a lot: the 10-90 % range of the real windows of "
        f"{block.window_min} min is the fair comparison for one run ('in range'); 'within' compares with the whole "
        f"data's value (within a factor {realism.RATIO_TOLERANCE:g} for sizes, "
        f"{realism.CORR_TOLERANCE:g} for correlations)."
    )


_HEAD = ["statistic", "measured", "real, whole data", "real windows 10-90 %", "in range", "within"]


def text_table(block: RealismKpi, series: Sequence[Series]) -> str:
    out = []
    for s in series:
        minutes = sum(len(x) for x in s.stretches)
        what = "premium CSV" if s.kind == "premium" else "market file"
        prices = "" if s.prices else "; no binance_mid/upbit_mid columns: the premium's statistics only"
        clock = "session clock" if s.clock == "session" else "market timestamps"
        out.append(
            f"{s.path}: {what} ({clock}), {s.rows:,} rows, {minutes:,} one-minute closes in "
            f"{len(s.stretches):,} stretch{'es' if len(s.stretches) != 1 else ''}{prices}"
        )
    out.append(f"real: {_reference_words(block)}")
    out.append("")
    table = [_HEAD] + rows(block)
    if block.reference is None:  # the figures alone
        table = [r[:2] for r in table]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    out.append("")
    for sentence in (spread_sentence(block), not_measured(block)):
        if sentence:
            out.append(sentence)
    return "\n".join(out) + "\n"


def measure_files(
    files: Sequence[str], reference: ModelReference | None, note: str | None
) -> tuple[RealismKpi, list[Series]]:
    """The figures of ``files`` pooled; RealismInputError for a file it cannot use or a pool too short."""
    series = [read_series(f) for f in files]
    stretches = [s for x in series for s in x.stretches]
    clocks = {x.clock for x in series}
    block = figures(
        stretches,
        reference,
        clock=clocks.pop() if len(clocks) == 1 else "mixed",
        reference_note=note,
    )
    if not block.measured:
        names = ", ".join(files)
        together = " together" if len(files) > 1 else ""
        raise RealismInputError(
            f"{names}: too short for any statistic{together} ({block.minutes} one-minute closes, the longest "
            f"stretch {block.longest_min} min; the shortest statistic needs "
            f"{realism.requirement(realism.STATISTICS[0].key)})"
        )
    return block, series


# -- the report's parts ----------------------------------------------------------------------------


def _model_words(model: MarketModelInfo | None) -> str:
    if model is None:
        return "a market model the KPI file does not name (files before the realism block: the old OU model)"
    if model.name == OU:
        return 'the old Ornstein-Uhlenbeck model (`[sim] market_model = "ou"`), which is not fitted to real data'
    where = f" ({model.path})" if model.path else ""
    if model.fitted_to:
        return f"model {model.name}{where}, fitted to {model.fitted_to}"
    return f"model {model.name}{where}, whose file gave no reference to real data when the session started"


def market_sentence(kpi: Kpi) -> str:
    """The report's first line: where the session's market came from and what its PnL measures."""
    block = kpi.realism
    model = block.model if block is not None else None
    if kpi.market == "live":
        return (
            "**Live market**: the exchanges' own books; the fills are simulated against them (paper trading), so "
            "its PnL is what the strategy would have made there, with fills as the fill model has them."
        )
    if kpi.market == "replay" and isinstance(kpi.replay, ReplayInfo):
        r = kpi.replay
        text = f"**Replayed market**: {', '.join(r.recorded) or 'no book'} recorded ({', '.join(r.files or r.sources)})"
        if r.synthesised:
            text += f"; {', '.join(r.synthesised)} synthesised by {_model_words(model)}"
        return text + (
            ". Its PnL measures the strategy against that recording"
            + (" and, where books were synthesised, that model." if r.synthesised else ".")
        )
    if kpi.market == "replay":
        return (
            "**Replayed market** (the KPI file does not say what was recorded). Its PnL measures the strategy "
            "against that recording."
        )
    return (
        f"**Simulated market**: {_model_words(model)}. Its PnL measures the strategy against that model, not "
        "against the real market."
    )


def section(kpi: Kpi) -> list[str]:
    """The report's Realism section (simulated and replayed sessions; nothing for a live one or a KPI file
    written before the realism block)."""
    block = kpi.realism
    if kpi.market == "live" or block is None:
        return []
    which = "simulated" if kpi.market == "sim" else "replayed"
    lines = [
        "## Realism",
        "",
        f"The statistics of the real Upbit/Binance market measured on this session's own {which} market: "
        f"{block.minutes} one-minute closes of its premium and mids in {block.stretches} "
        f"stretch{'es' if block.stretches != 1 else ''} (docs/realism.md). Real: {_reference_words(block)}.",
        "",
    ]
    measured = rows(block)
    windows = f" of {block.window_min} min" if block.window_min else ""
    if measured and block.reference is None:  # nothing to compare with: the figures alone
        lines += ["| statistic | this session |", "|---|---|"] + [f"| {r[0]} | {r[1]} |" for r in measured] + [""]
    elif measured:
        lines += [
            f"| statistic | this session | real, whole data | real windows{windows}, 10-90 % "
            "| agrees? (in range / within) |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} / {r[5]} |" for r in measured]
        lines.append("")
    else:
        lines += ["No statistic measured: the run is too short.", ""]
    notes = [spread_sentence(block)]
    if block.window_min and kpi.duration_s < 0.9 * 60 * block.window_min:
        notes.append(
            f"This run traded {kpi.duration_s / 60:.0f} min, the real windows are {block.window_min} min: a shorter "
            "run's figures spread wider than that range."
        )
    notes.append(not_measured(block))
    lines += [" ".join(n for n in notes if n), ""]
    return lines


# -- the command -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m actors.tools.realism", description=DESCRIPTION)
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="premium_<id>.csv files of sessions, or the shared market file (gzip or plain); several are pooled",
    )
    p.add_argument(
        "--reference",
        metavar="MODEL_JSON",
        help=f"a market model file whose reference the figures are compared to (default: {DEFAULT_MODEL}, "
        "when it exists)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON (default: off, a table)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    note = None
    try:
        if args.reference is not None:
            reference: ModelReference | None = load_model_reference(args.reference)
        else:
            try:
                reference = load_model_reference(default_model_path(), DEFAULT_MODEL)
            except InputError as exc:
                reference, note = None, f"{exc}; give one with --reference MODEL_JSON"
        block, series = measure_files(args.files, reference, note)
    except InputError as exc:
        print(f"realism: {exc}", file=sys.stderr)
        return 2
    if args.json:
        files = [
            {"path": s.path, "kind": s.kind, "clock": s.clock, "rows": s.rows, "stretches": len(s.stretches)}
            for s in series
        ]
        print(msgspec.json.encode({"files": files, "realism": block}).decode())
    else:
        sys.stdout.write(text_table(block, series))
    return 0


def run() -> int:
    """The command (``python -m``, or the installed script): output into a pipe closed early is fine."""
    return piped(main)


if __name__ == "__main__":
    sys.exit(run())
