"""What an order of a given size would get, on the books of a view: the prices the trader decides on.

The executable premium of each direction walks both books for the size with both venues' fees
(``actors.core.strategy.executable_premiums``), less the drift model's expected slippage beyond the walk
(``SlippageDrift``). With ``leg_risk = "hedge"`` an entry's premium is also net of the expected cost of
hedging back what the fill model expects its smaller leg to leave unmatched (``hedge_costs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import attrs

from actors.core.fills import Fees, FillModel
from actors.core.market import MarketView
from actors.core.refusals import Refusal
from actors.core.sizing import NoDrift, SlippageDrift
from actors.core.strategy import entry_signal, executable_premiums, hedge_costs, net_of
from actors.core.vocabulary import Direction, LegRisk, Side, Zone

if TYPE_CHECKING:  # the trader imports this module: the type only
    from actors.core.trader import Trader

# what a market of many pairs says of an entry (or a child) of a size on a view of one of them: its caps
# (open trades, exposure) refused it, or None (actors.core.market_trader)
EntryGate = Callable[[MarketView, float], Refusal | None]


@attrs.frozen
class Pricing:
    fees: Fees
    leg_risk: LegRisk
    fill_model: FillModel  # what it expects each leg to fill, for the hedge cost
    drift: SlippageDrift  # expected slippage beyond the walk's prediction

    def premiums(self, view: MarketView, qty: float) -> tuple[float | None, float | None]:
        """(sell_krw, buy_krw) executable premiums for ``qty``, fees and the drift model's expected slippage
        included; None for a direction whose books have an empty side."""
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None and view.fx is not None
        sell, buy = executable_premiums(
            krw.bids,
            krw.asks,
            usdt.bids,
            usdt.asks,
            qty,
            view.fx.krw_per_usdt,
            self.fees.rate_bps(krw.venue),
            self.fees.rate_bps(usdt.venue),
        )
        if isinstance(self.drift, NoDrift):
            return sell, buy
        d = self.drift.expected_bps
        if sell is not None:  # sell KRW, buy USDT: worse fills lower what the trade captures
            sell -= d(krw.venue, Side.SELL, qty) + d(usdt.venue, Side.BUY, qty)
        if buy is not None:
            buy += d(krw.venue, Side.BUY, qty) + d(usdt.venue, Side.SELL, qty)
        return sell, buy

    def hedge_costs(self, view: MarketView, zone: Zone, qty: float) -> dict[Direction, float]:
        """The expected cost, in bps of the position an entry of ``qty`` in each direction holds, of hedging back
        what the fill model expects its smaller leg to leave unmatched (0 with ``leg_risk = "carry"``, which
        keeps it, and when both legs are expected to fill alike); inf when a leg is expected to fill nothing."""
        if self.leg_risk is not LegRisk.HEDGE:
            return dict.fromkeys(Direction, 0.0)
        krw, usdt = view.krw_leg, view.usdt_leg
        assert krw is not None and usdt is not None
        model = self.fill_model
        return hedge_costs(
            krw,
            usdt,
            {d: (model.expected_ratio(d.krw_side, zone), model.expected_ratio(d.usdt_side, zone)) for d in Direction},
            qty,
            self.fees.rate_bps(krw.venue),
            self.fees.rate_bps(usdt.venue),
        )

    def net_premiums(self, view: MarketView, zone: Zone, qty: float) -> tuple[float | None, float | None]:
        """(sell_krw, buy_krw) executable premiums for ``qty``, net of the expected hedge cost."""
        sell_krw, buy_krw = self.premiums(view, qty)
        return net_of(sell_krw, buy_krw, self.hedge_costs(view, zone, qty))


def no_entry(baseline: float, sell_krw: float | None, buy_krw: float | None, zone: Zone) -> Refusal:
    """Why no entry signal: the premium cleared the threshold only before the expected hedge cost, or the size
    was not executable on the visible depth either way, or the premium stayed inside the threshold."""
    if entry_signal(baseline, sell_krw, buy_krw, zone.entry_bps) is not None:
        return Refusal.HEDGE_COST
    return Refusal.THIN_BOOKS if sell_krw is None and buy_krw is None else Refusal.BELOW_ENTRY


def skimmed(trader: Trader, view: MarketView, deviation: float) -> Refusal | None:
    """Why a trader holding nothing takes no entry on ``view``, when that is known without walking its books (a
    market's pairs decide on every move of the FX rate: ``Trader.skim``): WARMUP, or BELOW_ENTRY when the mid
    premium is inside the next zone's threshold, since an executable premium is never better than the mid one
    (bids at most, asks at least the mid; fees and hedge costs only lower it) unless a drift model adds to it.
    None: the books must be walked. Its verdicts are the ones the full decision would reach, but for a view whose
    books are too thin for the signal's size, which the full decision counts as THIN_BOOKS."""
    first = trader.baseline.first_at
    if first is None or view.at - first < trader.params.warmup_s:
        return Refusal.WARMUP
    if not isinstance(trader.drift, NoDrift):
        return None
    if abs(deviation) < trader.params.zone(trader.next_trade_id - 1).entry_bps:
        return Refusal.BELOW_ENTRY
    return None
