"""The ledger's arithmetic, pure: what each fill does to a venue's balances, the reconciliation of balances
after against balances before plus every fill, what every trade left on each venue (a closed trade must
leave nothing but dust), and the inventory sampled over time and marked to market.

It reads fills through a protocol (``FillFlows``: venue, side, quantity, price, fee), so the trader's own
fill events and the lines a report reads back from ``fill_events_<id>.jsonl`` go through the same sums: a
report recomputes the reconciliation from the file, independently of the trader's memory.

A fill of ``q`` BTC at ``p`` on a venue: a BUY adds ``q`` BTC and takes ``q * p`` of the quote, a SELL the
reverse (BTC, or the coin of the fill's pair: ``base_of``, issue 26); its fee is taken from the fee's
currency. So, per venue and asset,
``after = before + flows - fees`` up to float rounding: ``ReconciliationRow.residual`` is what is left, and
must be under ``ReconciliationRow.tolerance`` (a relative 1e-9 of the amounts involved).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from actors.core.fills import Lots
from actors.core.market import MarketView
from actors.core.vocabulary import Side, Venue

RELATIVE_TOLERANCE = 1e-9  # of the largest amount a row involves: float sums of a session's fills stay far below
Key = tuple[str, str]  # (venue, asset)


class FillFlows(Protocol):
    """What the ledger reads of a fill (``FillEvent`` and the report's ``FillLine`` both have it)."""

    @property
    def venue(self) -> Venue | None: ...
    @property
    def side(self) -> Side: ...
    @property
    def filled_qty(self) -> float: ...
    @property
    def avg_price(self) -> float | None: ...
    @property
    def quote_ccy(self) -> str: ...
    @property
    def fee(self) -> float: ...
    @property
    def fee_ccy(self) -> str: ...


class TradeFill(FillFlows, Protocol):
    @property
    def trade_id(self) -> int | None: ...


class LedgerError(ValueError):
    """A fill the ledger cannot account for (no venue, a fill without a price, an unknown currency)."""


def base_of(fill: FillFlows) -> str:
    """The coin ``fill`` traded: its ``base_ccy`` when it has one (a fill of a market's pair), else BTC (a line of
    a one-pair file, a report's line that does not read it)."""
    base = getattr(fill, "base_ccy", None)
    return base if isinstance(base, str) and base else "BTC"


def flows_of(fill: FillFlows) -> tuple[tuple[Key, float], ...]:
    """What ``fill`` moves on its venue, fees apart: ((venue, coin), +-q) and ((venue, quote), -+q * p), the coin
    being its pair's base (``base_of``: BTC for one pair)."""
    if fill.filled_qty == 0:
        return ()
    if fill.venue is None or fill.avg_price is None or fill.quote_ccy not in ("KRW", "USDT"):
        raise LedgerError(
            f"cannot account for a fill of {fill.filled_qty} BTC on {fill.venue!r} at {fill.avg_price!r} "
            f"{fill.quote_ccy!r}: a fill needs a venue, a price and a quote currency (KRW or USDT)"
        )
    sign = 1.0 if fill.side == Side.BUY else -1.0
    venue = str(fill.venue)
    return ((venue, base_of(fill)), sign * fill.filled_qty), (
        (venue, fill.quote_ccy),
        -sign * fill.filled_qty * fill.avg_price,
    )


@attrs.define
class FlowTotals:
    """Every fill's flows and fees summed per (venue, asset), in the order the fills came."""

    flows: dict[Key, float] = attrs.field(factory=dict)
    fees: dict[Key, float] = attrs.field(factory=dict)
    gross: dict[Key, float] = attrs.field(factory=dict)  # sum of |flow| and fees: the scale of float error
    fills: int = 0

    def add(self, fill: FillFlows) -> None:
        self.fills += 1
        for key, amount in flows_of(fill):
            self.flows[key] = self.flows.get(key, 0.0) + amount
            self.gross[key] = self.gross.get(key, 0.0) + abs(amount)
        if fill.fee:
            if fill.venue is None or fill.fee_ccy not in ("KRW", "USDT", base_of(fill)):
                raise LedgerError(f"cannot account for a fee of {fill.fee} {fill.fee_ccy!r} on {fill.venue!r}")
            key = (str(fill.venue), fill.fee_ccy)
            self.fees[key] = self.fees.get(key, 0.0) + fill.fee
            self.gross[key] = self.gross.get(key, 0.0) + abs(fill.fee)

    def copy(self) -> FlowTotals:
        return FlowTotals(dict(self.flows), dict(self.fees), dict(self.gross), self.fills)


def totals_of(fills: Iterable[FillFlows]) -> FlowTotals:
    totals = FlowTotals()
    for fill in fills:
        totals.add(fill)
    return totals


@attrs.frozen
class ReconciliationRow:
    venue: str
    asset: str
    before: float
    flows: float  # every fill's flow of this asset on this venue, fees apart
    fees: float  # fees paid in it
    after: float
    gross: float = 0.0  # sum of |flow| and fees

    @property
    def expected(self) -> float:
        return self.before + self.flows - self.fees

    @property
    def residual(self) -> float:
        """``after`` minus what the fills explain: 0 up to float rounding."""
        return self.after - self.expected

    @property
    def tolerance(self) -> float:
        return RELATIVE_TOLERANCE * max(1.0, abs(self.before), abs(self.after), self.gross)

    @property
    def ok(self) -> bool:
        return abs(self.residual) <= self.tolerance


@attrs.frozen
class Reconciliation:
    """Balances after against balances before plus every fill, per venue and asset (before's order)."""

    rows: tuple[ReconciliationRow, ...]
    fills: int

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def failures(self) -> tuple[ReconciliationRow, ...]:
        return tuple(row for row in self.rows if not row.ok)


def reconcile(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]], totals: FlowTotals
) -> Reconciliation:
    """One row per venue and asset held before, after or moved by a fill."""
    keys: dict[Key, None] = {}
    for balances in (before, after):
        for venue, assets in balances.items():
            keys.update(((str(venue), str(asset)), None) for asset in assets)
    keys.update(dict.fromkeys(totals.flows))
    keys.update(dict.fromkeys(totals.fees))
    rows = tuple(
        ReconciliationRow(
            venue,
            asset,
            before.get(venue, {}).get(asset, 0.0),
            totals.flows.get((venue, asset), 0.0),
            totals.fees.get((venue, asset), 0.0),
            after.get(venue, {}).get(asset, 0.0),
            totals.gross.get((venue, asset), 0.0),
        )
        for venue, asset in keys
    )
    return Reconciliation(rows, totals.fills)


def reconcile_fills(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]], fills: Iterable[FillFlows]
) -> Reconciliation:
    return reconcile(before, after, totals_of(fills))


# -- what trades leave -----------------------------------------------------------------------------


@attrs.frozen
class Left:
    """What a trade's fills left on one venue: BTC bought minus sold minus BTC fees, and its latest fill's price
    there (the price a minimum order is judged at)."""

    trade_id: int
    venue: str
    btc: float
    price: float


def left_by_trade(fills: Iterable[TradeFill]) -> dict[int, dict[str, Left]]:
    """Per trade and venue, what its fills left there (fills without a trade id are not any trade's)."""
    left: dict[int, dict[str, Left]] = {}
    for fill in fills:
        if fill.trade_id is None or fill.filled_qty == 0:
            continue
        venue, base = str(fill.venue), base_of(fill)
        btc = sum(amount for (_, asset), amount in flows_of(fill) if asset == base)
        if fill.fee_ccy == base:
            btc -= fill.fee
        held = left.setdefault(fill.trade_id, {}).get(venue)
        previous = 0.0 if held is None else held.btc
        left[fill.trade_id][venue] = Left(fill.trade_id, venue, previous + btc, fill.avg_price or 0.0)
    return left


def not_flat(left: Mapping[int, Mapping[str, Left]], closed: Iterable[int], lots: Lots) -> tuple[Left, ...]:
    """What the ``closed`` trades left on a venue that is not dust there: nothing, when every trade closed flat."""
    return tuple(
        held
        for trade_id in closed
        for held in left.get(trade_id, {}).values()
        if not lots.is_dust(Venue(held.venue), held.btc, held.price)
    )


def unexplained_btc(
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    open_btc: Mapping[str, float],
    dust_btc: Mapping[str, float],
    asset: str = "BTC",
) -> dict[str, float]:
    """Per venue, the change of the ``asset`` balance (a coin) that neither the open trades' positions nor the
    dust closed trades left explain: 0 up to float rounding when no trade lost track of what it holds."""
    return {
        venue: after.get(venue, {}).get(asset, 0.0)
        - assets.get(asset, 0.0)
        - open_btc.get(venue, 0.0)
        - dust_btc.get(venue, 0.0)
        for venue, assets in before.items()
    }


# -- inventory over time ---------------------------------------------------------------------------


@attrs.frozen
class InventorySample:
    """The balances' change since the start at ``t_s`` (session seconds), per venue and asset, and its value
    in USDT at that time's marks (KRW at the FX rate, each venue's BTC at its mid)."""

    t_s: float
    change: Mapping[str, Mapping[str, float]]
    value_usdt: float

    @property
    def net_btc(self) -> float:
        return sum(assets.get("BTC", 0.0) for assets in self.change.values())


def inventory_sample(
    t_s: float,
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    marks: Mapping[Key, float],
) -> InventorySample:
    """The change from ``before`` to ``after``, marked at ``marks`` (USDT per unit of each (venue, asset)); an
    asset without a mark is a LedgerError."""
    change: dict[str, Mapping[str, float]] = {}
    value = 0.0
    for venue, assets in after.items():
        moved = {asset: amount - before.get(venue, {}).get(asset, 0.0) for asset, amount in assets.items()}
        for asset, amount in moved.items():
            mark = marks.get((venue, asset))
            if mark is None:
                raise LedgerError(f"no mark for {asset} on {venue}: cannot value the inventory")
            value += amount * mark
        change[venue] = MappingProxyType(moved)
    return InventorySample(t_s, MappingProxyType(change), value)


def marks_of(view: MarketView) -> dict[Key, float] | None:
    """USDT per unit of each venue's assets at ``view``: KRW at its FX rate, each venue's coin (the view's pair's
    base) at its mid (the KRW venue's through the FX rate); None before both books and a rate."""
    krw, usdt, fx = view.krw_leg, view.usdt_leg, view.fx
    if krw is None or usdt is None or fx is None or krw.mid is None or usdt.mid is None:
        return None
    rate, base = fx.krw_per_usdt, view.pair.base
    return {
        (krw.venue, "KRW"): 1 / rate,
        (krw.venue, base): krw.mid / rate,
        (usdt.venue, "USDT"): 1.0,
        (usdt.venue, base): usdt.mid,
    }


@attrs.define
class InventoryLog:
    """Inventory samples at least ``interval_s`` apart, at most ``max_samples`` of them: when full, every second
    one is dropped and the interval doubles, so a day-long session keeps a bounded, evenly spaced series.

    Held as rows of numbers in one array allocated at the first sample (time, each venue's assets' change,
    value), not as objects: a session of days keeps the same memory whatever the thinning does
    (tests/actors/test_soak.py measures allocated blocks); ``samples`` builds the objects when asked, ``rows``
    copies the numbers."""

    interval_s: float = 10.0
    max_samples: int = 360
    _columns: tuple[Key, ...] = ()
    _rows: npt.NDArray[np.float64] | None = None
    _count: int = 0

    def due(self, t_s: float) -> bool:
        return self._rows is None or self._count == 0 or t_s >= float(self._rows[self._count - 1, 0]) + self.interval_s

    def add(self, sample: InventorySample) -> None:
        if self._rows is None:
            self._columns = tuple((venue, asset) for venue, assets in sample.change.items() for asset in assets)
            self._rows = np.zeros((self.max_samples + 1, len(self._columns) + 2))
        row = self._rows[self._count]
        row[0], row[-1] = sample.t_s, sample.value_usdt
        for i, (venue, asset) in enumerate(self._columns):
            row[i + 1] = sample.change.get(venue, {}).get(asset, 0.0)
        self._count += 1
        if self._count > self.max_samples:
            kept = self._rows[: self._count : 2].copy()
            self._rows[: len(kept)] = kept
            self._count = len(kept)
            self.interval_s *= 2

    @property
    def samples(self) -> tuple[InventorySample, ...]:
        return self.rows().samples()

    def rows(self) -> InventoryRows:
        """A read-only copy of the samples so far, as numbers (what a statistics snapshot holds: read every
        second, so it builds no object per sample)."""
        if self._rows is None:
            return NO_INVENTORY
        rows = self._rows[: self._count].copy()
        rows.flags.writeable = False
        return InventoryRows(self._columns, rows)


@attrs.frozen
class InventoryRows:
    """Inventory samples as ``InventoryLog`` holds them: per row the time, each (venue, asset)'s change in
    ``columns`` order and the value in USDT."""

    columns: tuple[Key, ...]
    rows: npt.NDArray[np.float64] = attrs.field(eq=False)

    def __len__(self) -> int:
        return len(self.rows)

    def samples(self) -> tuple[InventorySample, ...]:
        out = []
        for row in self.rows:
            change: dict[str, dict[str, float]] = {}
            for i, (venue, asset) in enumerate(self.columns):
                change.setdefault(venue, {})[asset] = float(row[i + 1])
            venues = {venue: MappingProxyType(assets) for venue, assets in change.items()}
            out.append(InventorySample(float(row[0]), MappingProxyType(venues), float(row[-1])))
        return tuple(out)


NO_INVENTORY = InventoryRows((), np.zeros((0, 2)))
