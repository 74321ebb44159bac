"""1-minute closes of both venues from the files ``calibrate --market`` and the realism tool read.

What a file is, is told by its first line (gzip or plain):

- the paired file of ``../shared/fixtures/market`` (``unix_ts_utc,upbit_krw_close,binance_usdt_close,...,
  block_id``): Upbit KRW-BTC and Binance BTCUSDT closes with the day's Upbit USDT/KRW close; ``block_id``
  separates runs of consecutive minutes;
- a session's premium series (``premium_<id>.csv``, ``t_s,premium_bps,...``): with the columns
  ``binance_mid,upbit_mid,krw_per_usdt`` it gives both venues' prices; older files, the premium alone;
- plain candles, one venue each, named by a role: ``upbit=FILE`` (KRW-BTC), ``binance=FILE`` (BTCUSDT) and
  ``fx=FILE`` (KRW-USDT, any interval: the last close at or before each minute applies), columns
  ``timestamp,open,high,low,close,volume`` (a header line is optional; the time in epoch seconds or
  milliseconds, or ISO 8601);
- a recording (ours, hftbacktest, cryptofeed: ``actors.sim.recordings``): the Binance book's mid, which
  says how often the price moves within a second, and 1-minute closes where both venues are recorded.

Every run of consecutive minutes becomes a ``Span``; bad input is a ``MarketDataError`` naming the file
(and line) and the problem.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import attrs
import numpy as np

from actors.core import realism
from actors.core.vocabulary import Venue
from actors.inputs import KIB, InputError, LineReader
from actors.tools.market_moments import Span

MAX_CSV_LINE = 64 * KIB
MAX_ROWS = 20_000_000  # about 38 years of minutes
ROLES = (Venue.UPBIT, Venue.BINANCE, "fx")  # the files of plain candles: upbit=FILE binance=FILE fx=FILE
SHARED_COLUMNS = ("unix_ts_utc", "upbit_krw_close", "binance_usdt_close", "upbit_usdtkrw_daily_close", "block_id")


class MarketDataError(ValueError):
    """Input the market tools cannot use; str() names the file and the problem."""


@attrs.frozen
class MarketData:
    spans: tuple[Span, ...]
    fx_daily_bps: tuple[float, ...]  # day-to-day log changes of USDT/KRW (bps), where the FX changes daily
    binance_moves_per_s: float | None  # from recordings
    sources: tuple[str, ...]  # what each file was, in words

    @property
    def minutes(self) -> int:
        return sum(len(s.stretch) for s in self.spans)


def _rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    reader = LineReader(path, MAX_CSV_LINE)
    count = 0
    try:
        for number, line, _ in reader:
            if line is None:
                raise MarketDataError(f"{path}:{number}: line over {MAX_CSV_LINE // KIB} KiB: not a CSV of prices")
            count += 1
            if count > MAX_ROWS:
                raise MarketDataError(f"{path}: more than {MAX_ROWS:,} lines")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise MarketDataError(f"{path}:{number}: not text (not a CSV of prices)") from None
            yield number, [c.strip() for c in text.split(",")]
    except InputError as exc:
        raise MarketDataError(str(exc)) from None


def _float(path: str | Path, number: int, text: str, what: str, positive: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MarketDataError(f"{path}:{number}: {what}: expected a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise MarketDataError(
            f"{path}:{number}: {what}: expected a {'positive ' if positive else ''}number, got {text}"
        )
    return value


def _first_line(path: str | Path) -> list[str]:
    for _, cells in _rows(path):
        return cells
    raise MarketDataError(f"{path}: empty")


def _spans_of(minutes: np.ndarray, columns: Sequence[np.ndarray], breaks: np.ndarray | None = None) -> list[Span]:
    """Runs of consecutive minutes (``breaks[i]``: a new run starts at row i whatever the minutes say)."""
    out: list[Span] = []
    if len(minutes) == 0:
        return out
    new = np.ones(len(minutes), dtype=bool)
    new[1:] = np.diff(minutes) != 1
    if breaks is not None:
        new |= breaks
    starts = list(np.flatnonzero(new)) + [len(minutes)]
    for a, b in zip(starts[:-1], starts[1:]):
        if b - a < 2:
            continue
        premium, binance, upbit = (None if c is None else c[a:b] for c in columns)
        assert premium is not None
        out.append(Span(float(minutes[a]), realism.Stretch(premium, binance, upbit)))
    return out


def _premium(upbit_krw: np.ndarray, binance: np.ndarray, fx: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.log(upbit_krw / fx) - np.log(binance)) * 1e4
    return out


def _daily_changes(days: np.ndarray, fx: np.ndarray) -> list[float]:
    """Log changes (bps) between consecutive calendar days' last FX value."""
    if len(days) == 0:
        return []
    last = np.flatnonzero(np.diff(days, append=days[-1] + 1))
    d, v = days[last], fx[last]
    keep = np.diff(d) == 1
    return list((np.diff(np.log(v)) * 1e4)[keep])


def read_shared(path: str | Path) -> tuple[list[Span], list[float]]:
    header: list[str] | None = None
    cols: dict[str, list[float]] = {c: [] for c in SHARED_COLUMNS}
    for number, cells in _rows(path):
        if header is None:
            header = cells
            missing = [c for c in SHARED_COLUMNS if c not in header]
            if missing:
                raise MarketDataError(f"{path}: no column {missing[0]!r}")
            index = [header.index(c) for c in SHARED_COLUMNS]
            continue
        if len(cells) != len(header):
            raise MarketDataError(f"{path}:{number}: expected {len(header)} columns, got {len(cells)}")
        for c, i in zip(SHARED_COLUMNS, index):
            cols[c].append(_float(path, number, cells[i], c, positive=c not in ("unix_ts_utc", "block_id")))
    if not cols["unix_ts_utc"]:
        raise MarketDataError(f"{path}: no rows")
    ts = np.array(cols["unix_ts_utc"])
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    block = np.array(cols["block_id"])[order]
    upbit, binance, fx = (np.array(cols[c])[order] for c in SHARED_COLUMNS[1:4])
    minutes = np.floor(ts / 60)
    breaks = np.zeros(len(ts), dtype=bool)
    breaks[1:] = block[1:] != block[:-1]
    spans = _spans_of(minutes, (_premium(upbit, binance, fx), binance, upbit), breaks)
    return spans, _daily_changes(np.floor(ts / 86_400), fx)


def read_premium_csv(path: str | Path) -> tuple[list[Span], list[float]]:
    header: list[str] | None = None
    t, p, b, u, x = [], [], [], [], []
    start_epoch: float | None = None
    for number, cells in _rows(path):
        if header is None:
            header = cells
            has_mids = all(c in header for c in ("binance_mid", "upbit_mid", "krw_per_usdt"))
            it, ip = header.index("t_s"), header.index("premium_bps")
            iu = header.index("ts_utc") if "ts_utc" in header else None
            mids = [header.index(c) for c in ("binance_mid", "upbit_mid", "krw_per_usdt")] if has_mids else []
            continue
        if len(cells) < len(header):
            continue  # a torn last line, or a row written before a column existed
        if start_epoch is None and iu is not None and cells[iu]:
            try:
                start_epoch = datetime.fromisoformat(cells[iu].replace("Z", "+00:00")).timestamp() - float(cells[it])
            except ValueError:
                raise MarketDataError(f"{path}:{number}: ts_utc: not an ISO 8601 time: {cells[iu][:40]!r}") from None
        if not cells[ip]:
            continue  # no premium at that second (a book missing)
        t.append(_float(path, number, cells[it], "t_s", positive=False))
        p.append(_float(path, number, cells[ip], "premium_bps", positive=False))
        if mids:
            values = [cells[i] for i in mids]
            if all(values):
                b.append(_float(path, number, values[0], "binance_mid"))
                u.append(_float(path, number, values[1], "upbit_mid"))
                x.append(_float(path, number, values[2], "krw_per_usdt"))
            else:
                b.append(math.nan)
                u.append(math.nan)
                x.append(math.nan)
    if not t:
        raise MarketDataError(f"{path}: no premium samples")
    base = math.floor((start_epoch or 0.0) / 60)
    log_p = list(1e4 * np.log1p(np.array(p) / 1e4))  # the premium as a log, as the model and the shared file have it
    columns = [log_p] if not b else [log_p, b, u]
    minutes, closes = realism.minute_closes(t, *columns)
    valid = np.all([np.isfinite(c) for c in closes], axis=0)
    for c in closes[1:]:
        valid &= c > 0
    spans = [
        Span(float(base + minutes[run.start]), realism.Stretch(*(c[run] for c in closes)))
        for run in realism.runs(minutes, valid)
    ]
    fx_changes: list[float] = []
    if x and start_epoch is not None:
        xs = np.array(x)
        ok = np.isfinite(xs)
        days = np.floor((start_epoch + np.array(t)[ok]) / 86_400)
        fx_changes = _daily_changes(days, xs[ok])
    return spans, fx_changes


def _epoch_s(path: str | Path, number: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MarketDataError(
                f"{path}:{number}: timestamp: expected epoch seconds or ms or ISO 8601, got {text[:40]!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    if not math.isfinite(value) or value <= 0:
        raise MarketDataError(f"{path}:{number}: timestamp: expected a positive time, got {text}")
    return value / 1000 if value > 1e11 else value


def read_candles(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, close) of a ``timestamp,open,high,low,close,volume`` file, in time order."""
    times, closes = [], []
    for number, cells in _rows(path):
        if number == 1 and cells and cells[0].lower() in ("timestamp", "time", "open_time", "date"):
            continue
        if len(cells) < 5:
            raise MarketDataError(
                f"{path}:{number}: expected timestamp,open,high,low,close[,volume], got {len(cells)} columns"
            )
        times.append(_epoch_s(path, number, cells[0]))
        closes.append(_float(path, number, cells[4], "close"))
    if not times:
        raise MarketDataError(f"{path}: no candles")
    t, c = np.array(times), np.array(closes)
    order = np.argsort(t, kind="stable")
    return t[order], c[order]


def read_candle_set(files: dict[str, str]) -> tuple[list[Span], list[float]]:
    missing = [r for r in (Venue.UPBIT, Venue.BINANCE) if r not in files]
    if missing:
        raise MarketDataError(f"candles: {missing[0]}=FILE missing (plain candles need upbit=, binance= and fx=)")
    if "fx" not in files:
        raise MarketDataError("candles: fx=FILE missing: Upbit KRW-USDT candles give the USDT/KRW rate")
    (tu, cu), (tb, cb), (tx, cx) = (read_candles(files[r]) for r in ROLES)
    mu, mb = np.floor(tu / 60), np.floor(tb / 60)
    common, iu, ib = np.intersect1d(mu, mb, return_indices=True)
    if len(common) < 2:
        raise MarketDataError(f"{files[Venue.UPBIT]} and {files[Venue.BINANCE]}: no minutes in common")
    at = np.searchsorted(tx, common * 60 + 59, side="right") - 1
    ok = at >= 0
    if not ok.any():
        raise MarketDataError(f"{files['fx']}: no USDT/KRW close before the first common minute")
    common, upbit, binance, fx = common[ok], cu[iu][ok], cb[ib][ok], cx[at[ok]]
    spans = _spans_of(common, (_premium(upbit, binance, fx), binance, upbit))
    return spans, _daily_changes(np.floor(tx / 86_400), cx)


UPBIT_MARKET, UPBIT_FX = "KRW-BTC", "KRW-USDT"


def _recording(path: str) -> tuple[list[Span], float | None]:
    """Binance's sub-second moves (how often its mid changes), and 1-minute closes where the recording holds
    both venues' books and the FX book (Upbit KRW-BTC and KRW-USDT beside Binance: what ``--record`` saves)."""
    from actors.core.venues import binance as binance_codec
    from actors.core.venues import upbit as upbit_codec
    from actors.sim.recordings import Recording, RecordingError
    from actors.tools.market_fit import moves_per_s

    try:
        recording = Recording.open([path])
    except (RecordingError, InputError) as exc:
        raise MarketDataError(str(exc)) from None
    symbols = sorted(recording.symbols(Venue.BINANCE))
    if not symbols:
        return [], None
    sync = binance_codec.BookSync(symbols[0])
    mids: list[tuple[float, float]] = []
    upbit_mids: dict[str, float] = {}
    samples: list[tuple[float, float, float, float]] = []  # (t, binance, upbit KRW, USDT/KRW)
    try:
        for r in recording.events():
            event = r.event
            if isinstance(event, upbit_codec.Orderbook):
                if event.bids and event.asks and r.symbol in (UPBIT_MARKET, UPBIT_FX):
                    upbit_mids[r.symbol] = (event.bids[0][0] + event.asks[0][0]) / 2
            elif r.symbol == symbols[0]:
                if isinstance(event, binance_codec.DepthSnapshot):
                    sync.on_snapshot(event)
                elif isinstance(event, binance_codec.DepthDiff):
                    sync.on_diff(event)
                if sync.synced:
                    bids, asks = sync.book.top(1)
                    if bids and asks:
                        mids.append((r.at_s, (bids[0][0] + asks[0][0]) / 2))
            if mids and len(upbit_mids) == 2:
                samples.append((r.at_s, mids[-1][1], upbit_mids[UPBIT_MARKET], upbit_mids[UPBIT_FX]))
    except RecordingError as exc:
        raise MarketDataError(str(exc)) from None
    spans: list[Span] = []
    if samples:
        t, b, u, fx = (np.array(c) for c in zip(*samples))
        start = recording.start_epoch_ms / 1000
        minutes, closes = realism.minute_closes(list(start + t), list(_premium(u, b, fx)), list(b), list(u))
        valid = np.all([np.isfinite(c) for c in closes], axis=0)
        spans = [
            Span(float(minutes[run.start]), realism.Stretch(*(c[run] for c in closes)))
            for run in realism.runs(minutes, valid)
        ]
    return spans, moves_per_s(mids)


def detect(path: str) -> str:
    """``shared``, ``premium``, ``recording`` or a ``MarketDataError``."""
    from actors.sim.recordings import RecordingError, detect_format

    try:
        cells = _first_line(path)
    except MarketDataError:
        cells = []
    if all(c in cells for c in SHARED_COLUMNS):
        return "shared"
    if cells[:2] == ["t_s", "premium_bps"]:
        return "premium"
    try:
        detect_format(Path(path))
        return "recording"
    except (RecordingError, InputError, ValueError):
        pass
    first = cells[0] if cells else "nothing"
    raise MarketDataError(
        f"{path}: not market data this tool reads (first line starts {first[:40]!r}): expected the shared "
        "1-minute file, a premium_<id>.csv, a recording, or plain candles given as upbit=FILE binance=FILE fx=FILE"
    )


def read(arguments: Sequence[str]) -> MarketData:
    spans: list[Span] = []
    fx: list[float] = []
    sources: list[str] = []
    moves: list[float] = []
    candles: dict[str, str] = {}
    for arg in arguments:
        role, sep, rest = arg.partition("=")
        if sep and role in ROLES:
            if role in candles:
                raise MarketDataError(f"{arg}: {role}= given twice")
            candles[role] = rest
            continue
        kind = detect(arg)
        if kind == "shared":
            s, f = read_shared(arg)
            sources.append(
                f"{arg}: paired 1-minute closes, {sum(len(x.stretch) for x in s):,} minutes in {len(s)} runs"
            )
        elif kind == "premium":
            s, f = read_premium_csv(arg)
            has = any(x.stretch.binance is not None for x in s)
            sources.append(
                f"{arg}: a session's premium series, {sum(len(x.stretch) for x in s):,} minutes"
                + ("" if has else " (premium only)")
            )
        else:
            s, m = _recording(arg)
            f = []
            if m is not None:
                moves.append(m)
            sources.append(
                f"{arg}: a recording" + (f", Binance's mid moves {m:.2f} times a second" if m else ", no Binance book")
            )
        spans += s
        fx += f
    if candles:
        s, f = read_candle_set(candles)
        sources.append(
            f"candles {', '.join(f'{r}={p}' for r, p in candles.items())}: {sum(len(x.stretch) for x in s):,} minutes"
        )
        spans += s
        fx += f
    spans.sort(key=lambda s: s.start_min)
    return MarketData(tuple(spans), tuple(fx), float(np.mean(moves)) if moves else None, tuple(sources))
