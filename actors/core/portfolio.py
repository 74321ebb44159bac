"""Balances per venue, budget checks before each leg, and their valuation.

The KRW venue holds KRW and coins, the USDT venue USDT and coins (one pair's session: BTC; a market's: each
pair's base coin on both venues, issue 26). Every fill moves the base and quote balances of its venue and
charges its fee in the fee's currency, so the balances are conserved:
final = initial + the fills' flows - fees (tests/core/test_portfolio.py).
"""

from __future__ import annotations

import attrs

from actors.core.fills import BUY


@attrs.define
class Portfolio:
    balances: dict[str, dict[str, float]]  # venue -> asset -> amount
    initial: dict[str, dict[str, float]] = attrs.field(init=False)
    fees_paid: dict[tuple[str, str], float] = attrs.field(factory=dict)  # (venue, currency) -> amount
    # (venue, asset) -> what the legs in flight may spend of it: balances a market's pairs share are held for the
    # legs sent until they fill, so two pairs' entries cannot both count on the same KRW (none in one pair's session)
    reserved: dict[tuple[str, str], float] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.initial = {venue: dict(assets) for venue, assets in self.balances.items()}

    @classmethod
    def of(
        cls, krw_venue: str, krw: float, krw_btc: float, usdt_venue: str, usdt: float, usdt_btc: float
    ) -> "Portfolio":
        return cls({krw_venue: {"KRW": krw, "BTC": krw_btc}, usdt_venue: {"USDT": usdt, "BTC": usdt_btc}})

    @classmethod
    def of_market(
        cls, krw_venue: str, krw: float, usdt_venue: str, usdt: float, coins: dict[str, tuple[float, float]]
    ) -> "Portfolio":
        """Balances for many pairs: KRW on ``krw_venue``, USDT on ``usdt_venue``, and each coin of ``coins``
        (coin -> (amount on the KRW venue, amount on the USDT venue)) on both."""
        return cls(
            {
                krw_venue: {"KRW": krw, **{coin: held[0] for coin, held in coins.items()}},
                usdt_venue: {"USDT": usdt, **{coin: held[1] for coin, held in coins.items()}},
            }
        )

    def shortfall(
        self, venue: str, side: str, qty: float, price: float, quote: str, quote_fee: float, base: str = "BTC"
    ) -> str | None:
        """Why this leg of ``qty`` ``base`` cannot be paid for (``quote_fee``: its fee when charged in the quote),
        or None."""
        if side == BUY:
            need = qty * price + quote_fee
            if (cash := self.available(venue, quote)) + 1e-9 < need:
                return f"{venue} {quote} {cash:.8g} < {need:.8g} needed"
        elif (held := self.available(venue, base)) + 1e-12 < qty:
            return f"{venue} {base} {held:.8g} < {qty:.8g} needed"
        return None

    def available(self, venue: str, asset: str) -> float:
        """The balance of ``asset`` on ``venue`` less what legs in flight hold of it (``reserved``)."""
        return self.balances[venue].get(asset, 0.0) - self.reserved.get((venue, asset), 0.0)

    def hold(self, venue: str, asset: str, amount: float) -> None:
        """Hold ``amount`` of ``asset`` for a leg in flight (a negative amount releases it)."""
        key = (venue, asset)
        left = self.reserved.get(key, 0.0) + amount
        if abs(left) > 1e-9 * max(1.0, abs(amount)):  # a release leaves float rounding: nothing held
            self.reserved[key] = left
        else:
            self.reserved.pop(key, None)

    def apply(
        self,
        venue: str,
        side: str,
        qty: float,
        avg_price: float,
        quote: str,
        fee: float,
        fee_ccy: str,
        base: str = "BTC",
    ) -> None:
        """A fill of ``qty`` ``base`` at ``avg_price`` in ``quote`` and its fee (a coin not held yet starts at 0)."""
        assets = self.balances[venue]
        sign = 1 if side == BUY else -1
        assets[base] = assets.get(base, 0.0) + sign * qty
        assets[quote] -= sign * qty * avg_price
        assets[fee_ccy] = assets.get(fee_ccy, 0.0) - fee
        self.fees_paid[(venue, fee_ccy)] = self.fees_paid.get((venue, fee_ccy), 0.0) + fee
