"""What a trader reads about many pairs at once (issue 26): one row per pair, the KPI's ``pairs`` block, and
the premium panel file ``pairs_<id>.csv``.

- ``PairRow``: one pair's figures over the session (its premium's mean and std, its latest deviation from the
  baseline, views, trades, fills, PnL, refusals, resyncs, untrusted time). The session hands these to the KPI
  builder (``pairs_block``), the live view and the report; the report reads them back (``read_pairs_block``).
- ``PairPanelWriter``: appends the premium of every pair at one instant, one line per pair (long format:
  ``t_s,ts_utc,pair,premium_bps,deviation_bps``); a failed write is reported to ``DiskWatch`` once, and the
  writer then writes nothing more, as the premium series does.
- ``read_panel``: the panel file, read with limits (``actors.inputs``): a file too large, a file that is not
  a panel, too many pairs are each one ``InputError`` naming the file; rows that do not parse (a torn last
  row after a crash) are counted and skipped. Values are held in ``array('d')``: 8 bytes each.
"""

from __future__ import annotations

import math
from array import array
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import attrs
import msgspec

from actors.core.kpi import FeedStatistics, SymbolStatistics
from actors.core.market import MarketView
from actors.core.pairs import Pair
from actors.core.trader_outputs import PairStatistics
from actors.inputs import MIB, InputError, LineReader, check_regular
from actors.records.files import DataWriteError, DiskWatch, append_text

BPS_DIGITS = 4  # premiums and deviations, as the premium series writes them
USDT_DIGITS = 8  # PnL, as the KPI's pnl_usdt
SECONDS_DIGITS = 6  # untrusted time, as the KPI's durations


def _name(pair: Pair | str) -> str:
    return pair.name if isinstance(pair, Pair) else pair


def _count(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, not {value}")


def _nonempty(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value or "," in value or "\n" in value:
        raise ValueError(f"{attribute.name} must be a coin's name (no comma, no newline), not {value!r}")


@attrs.frozen
class PairRow:
    """One pair's figures at one instant of the session (the KPI's table row, a line of the live panel).

    ``pair`` is the coin's name (``Pair.name``: "ETH"; a ``Pair`` is accepted and turned into its name). The
    premium's mean and std are over the views the pair had (None before its first); ``latest_deviation_bps``
    is its latest premium minus its baseline (None before a baseline); ``untrusted_s`` is the time its books
    were not trustworthy (disconnected, out of sync)."""

    pair: str = attrs.field(converter=_name, validator=_nonempty)
    premium_mean_bps: float | None = None
    premium_std_bps: float | None = None
    latest_deviation_bps: float | None = None
    views: int = attrs.field(default=0, validator=_count)
    entries: int = attrs.field(default=0, validator=_count)
    exits: int = attrs.field(default=0, validator=_count)
    fills: int = attrs.field(default=0, validator=_count)
    pnl_usdt: float = 0.0
    refusals: int = attrs.field(default=0, validator=_count)
    resyncs: int = attrs.field(default=0, validator=_count)
    untrusted_s: float = 0.0
    latest_premium_bps: float | None = None  # the latest mid premium (the live panel's "premium")

    @property
    def trades(self) -> int:
        """Trades opened on this pair (the report's and the live panel's "trades")."""
        return self.entries


# -- the KPI's "pairs" block --------------------------------------------------------------------------


class PairKpi(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the KPI's ``pairs.table`` (docs/kpis.md)."""

    premium_mean_bps: float | None = None
    premium_std_bps: float | None = None
    latest_premium_bps: float | None = None
    latest_deviation_bps: float | None = None
    views: int = 0
    entries: int = 0
    exits: int = 0
    fills: int = 0
    pnl_usdt: float = 0.0
    refusals: int = 0
    resyncs: int = 0
    untrusted_s: float = 0.0


class PairsBlock(msgspec.Struct, frozen=True):
    """The KPI's ``pairs`` block: how many pairs, and a row per pair keyed by its name."""

    count: int
    table: dict[str, PairKpi]


class _WithPairs(msgspec.Struct):
    """A KPI file read for its ``pairs`` block only (every other field is left alone)."""

    pairs: PairsBlock | None = None


_block_decoder = msgspec.json.Decoder(_WithPairs)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits) + 0.0  # + 0.0: -0.0 reads 0.0


def _kpi_row(row: PairRow) -> PairKpi:
    return PairKpi(
        premium_mean_bps=_round(row.premium_mean_bps, BPS_DIGITS),
        premium_std_bps=_round(row.premium_std_bps, BPS_DIGITS),
        latest_premium_bps=_round(row.latest_premium_bps, BPS_DIGITS),
        latest_deviation_bps=_round(row.latest_deviation_bps, BPS_DIGITS),
        views=row.views,
        entries=row.entries,
        exits=row.exits,
        fills=row.fills,
        pnl_usdt=round(row.pnl_usdt, USDT_DIGITS) + 0.0,
        refusals=row.refusals,
        resyncs=row.resyncs,
        untrusted_s=round(row.untrusted_s, SECONDS_DIGITS) + 0.0,
    )


def pairs_struct(rows: Iterable[PairRow]) -> PairsBlock:
    """The ``pairs`` block as a msgspec Struct (for a ``Kpi`` field ``pairs: PairsBlock | None = None``): rows
    keyed by pair name in the order given (a name given twice: ValueError), numbers rounded like the KPI's."""
    table: dict[str, PairKpi] = {}
    for row in rows:
        if row.pair in table:
            raise ValueError(f"pair {row.pair} given twice")
        table[row.pair] = _kpi_row(row)
    return PairsBlock(len(table), table)


def pairs_block(rows: Iterable[PairRow]) -> dict[str, Any]:
    """The KPI's ``pairs`` block as JSON values: ``{"count": n, "table": {"ETH": {...}, ...}}`` (None as null)."""
    return msgspec.to_builtins(pairs_struct(rows))  # type: ignore[no-any-return]


def rows_of_block(block: PairsBlock | Mapping[str, Any]) -> tuple[PairRow, ...]:
    """The rows of a ``pairs`` block (its Struct or its JSON values), in the block's order: ``pairs_block``'s
    inverse (up to its rounding). msgspec.ValidationError for a block of the wrong shape."""
    typed = block if isinstance(block, PairsBlock) else msgspec.convert(block, PairsBlock)
    if typed.count != len(typed.table):
        raise msgspec.ValidationError(f"pairs.count is {typed.count} but pairs.table has {len(typed.table)} rows")
    return tuple(PairRow(name, **msgspec.structs.asdict(row)) for name, row in typed.table.items())


def read_pairs_block(kpi_json: bytes) -> tuple[PairRow, ...]:
    """The pair rows of a KPI file's content: () if it has no ``pairs`` block (a one-pair session, or a file
    written before it). msgspec.DecodeError (a ValidationError naming the field) if the block is malformed."""
    block = _block_decoder.decode(kpi_json).pairs
    return () if block is None else rows_of_block(block)


# -- the premium panel: pairs_<id>.csv --------------------------------------------------------------------

PANEL_COLUMNS = ("t_s", "ts_utc", "pair", "premium_bps", "deviation_bps")
PANEL_HEADER = ",".join(PANEL_COLUMNS) + "\n"
PANEL_MAX_BYTES = 256 * MIB  # 150 pairs a second for about 11 hours; 24 bytes of memory a row when read
PANEL_MAX_PAIRS = 1000  # Upbit and Binance share about 100-200 coins
PANEL_MAX_LINE_BYTES = 256


@attrs.frozen
class PanelSample:
    """One pair's premium at one instant (``deviation_bps``: minus its baseline; None before one)."""

    pair: str = attrs.field(converter=_name, validator=_nonempty)
    premium_bps: float
    deviation_bps: float | None = None


def panel_lines(t_s: float, ts_utc: str, samples: Iterable[PanelSample]) -> str:
    """The panel's lines for one instant, one per sample with a finite premium (others are left out)."""
    out = []
    for s in samples:
        if not math.isfinite(s.premium_bps):
            continue
        dev = s.deviation_bps
        deviation = "" if dev is None or not math.isfinite(dev) else f"{dev:.{BPS_DIGITS}f}"
        out.append(f"{t_s:.3f},{ts_utc},{s.pair},{s.premium_bps:.{BPS_DIGITS}f},{deviation}\n")
    return "".join(out)


class PairPanelWriter:
    """Appends to ``pairs_<id>.csv`` (header first, if the file is new) the premium of each pair at one instant.

    ``write`` appends the lines of one instant together; a write that fails (disk full, I/O error) is
    reported to ``disk`` and the writer writes nothing more (nor once ``disk`` holds any error: the session
    is stopping on it). A killed session can leave a torn last line: the reader skips it."""

    def __init__(self, path: Path, disk: DiskWatch) -> None:
        self.path = path
        self.lines = 0
        self._disk = disk
        self._failed = False

    def write(self, t_s: float, ts_utc: str, samples: Iterable[PanelSample]) -> None:
        if self._failed or self._disk.error is not None:
            return
        text = panel_lines(t_s, ts_utc, samples)
        if not text:
            return
        try:
            append_text(self.path, text if self.path.exists() else PANEL_HEADER + text)
        except DataWriteError as exc:
            self._failed = True
            self._disk.report(exc)
            return
        self.lines += text.count("\n")


@attrs.frozen(eq=False)
class PairSeries:
    """One pair's samples in the panel, in file order: session seconds, premium and deviation (NaN: none)."""

    t_s: array[float] = attrs.field(factory=lambda: array("d"))
    premium_bps: array[float] = attrs.field(factory=lambda: array("d"))
    deviation_bps: array[float] = attrs.field(factory=lambda: array("d"))


@attrs.frozen(eq=False)
class PairPanel:
    """The panel file as read: each pair's series (first appearance order) and the rows that did not parse."""

    series: dict[str, PairSeries]
    rows: int
    skipped: int = 0  # rows that are not samples (a torn last row, a damaged one)

    def pairs(self) -> Sequence[str]:
        return tuple(self.series)


def _sample(line: bytes) -> tuple[float, str, float, float] | None:
    cells = line.split(b",")
    if len(cells) != len(PANEL_COLUMNS):
        return None
    try:
        t_s, premium = float(cells[0]), float(cells[3])
        deviation = float(cells[4]) if cells[4].strip() else math.nan
        pair = cells[2].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if not (pair and math.isfinite(t_s) and math.isfinite(premium)):
        return None
    return t_s, pair, premium, deviation


def read_panel(path: Path, max_bytes: int = PANEL_MAX_BYTES, max_pairs: int = PANEL_MAX_PAIRS) -> PairPanel:
    """``pairs_<id>.csv``, with limits: InputError naming the file if it is not a regular file, is over
    ``max_bytes``, does not start with the panel's header, or names more than ``max_pairs`` pairs."""
    size = check_regular(path)
    if size > max_bytes:
        raise InputError(f"{path}: too large ({size / MIB:.1f} MiB; at most {max_bytes / MIB:.0f} MiB expected here)")
    series: dict[str, PairSeries] = {}
    rows = skipped = 0
    header = False
    for number, line, _ in LineReader(path, PANEL_MAX_LINE_BYTES):
        if not header:
            header = True
            if line != PANEL_HEADER.rstrip("\n").encode():
                shown = "over-long" if line is None else repr(line[:60].decode("utf-8", "replace"))
                raise InputError(f"{path}: not a pairs panel file (first line {shown}, not {PANEL_HEADER.strip()!r})")
            continue
        sample = None if line is None else _sample(line)
        if sample is None:
            skipped += 1
            continue
        t_s, pair, premium, deviation = sample
        one = series.get(pair)
        if one is None:
            if len(series) == max_pairs:
                raise InputError(f"{path}: more than {max_pairs} pairs (line {number}): not a session's panel")
            one = series[pair] = PairSeries()
        one.t_s.append(t_s)
        one.premium_bps.append(premium)
        one.deviation_bps.append(deviation)
        rows += 1
    return PairPanel(series, rows, skipped)


def pair_rows(
    pairs: Iterable[PairStatistics], feeds: Mapping[str, FeedStatistics], views: Iterable[MarketView]
) -> tuple[PairRow, ...]:
    """A market's rows, from its trader's statistics per pair, its feeds' counters per book (resyncs of the Binance
    book, untrusted time of the pair's worse book) and each pair's last published view (its latest premium)."""
    books: dict[str, SymbolStatistics] = {}
    for feed in feeds.values():
        books.update(feed.per_symbol)
    latest = {view.pair: view.premium_bps for view in views}
    rows = []
    for s in pairs:
        pair = s.pair
        binance, upbit = books.get(pair.binance_symbol), books.get(pair.upbit_code)
        premium = latest.get(pair)
        dispersion = s.premium_bps
        worse = [b.untrusted_s for b in (binance, upbit) if b is not None]
        rows.append(
            PairRow(
                pair.name,
                premium_mean_bps=dispersion.mean,
                premium_std_bps=dispersion.std,
                latest_deviation_bps=None if premium is None or s.baseline_bps is None else premium - s.baseline_bps,
                views=s.views,
                entries=s.entries,
                exits=s.exits,
                fills=s.fills,
                pnl_usdt=s.realized_pnl_usdt + s.unrealized_pnl_usdt,
                refusals=sum(s.refusals.values()),
                resyncs=0 if binance is None else binance.resyncs,
                untrusted_s=max(worse, default=0.0),
                latest_premium_bps=premium,
            )
        )
    return tuple(rows)
