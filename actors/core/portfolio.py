"""Balances per venue, budget checks before each leg, and their valuation.

The KRW venue holds KRW and BTC, the USDT venue USDT and BTC. Every fill moves the base and quote
balances of its venue and charges its fee in the fee's currency, so the balances are conserved:
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

    def __attrs_post_init__(self) -> None:
        self.initial = {venue: dict(assets) for venue, assets in self.balances.items()}

    @classmethod
    def of(
        cls, krw_venue: str, krw: float, krw_btc: float, usdt_venue: str, usdt: float, usdt_btc: float
    ) -> "Portfolio":
        return cls({krw_venue: {"KRW": krw, "BTC": krw_btc}, usdt_venue: {"USDT": usdt, "BTC": usdt_btc}})

    def shortfall(self, venue: str, side: str, qty: float, price: float, quote: str, quote_fee: float) -> str | None:
        """Why this leg cannot be paid for (``quote_fee``: its fee when charged in the quote), or None."""
        assets = self.balances[venue]
        if side == BUY:
            need = qty * price + quote_fee
            if assets[quote] + 1e-9 < need:
                return f"{venue} {quote} {assets[quote]:.8g} < {need:.8g} needed"
        elif assets["BTC"] + 1e-12 < qty:
            return f"{venue} BTC {assets['BTC']:.8g} < {qty:.8g} needed"
        return None

    def apply(self, venue: str, side: str, qty: float, avg_price: float, quote: str, fee: float, fee_ccy: str) -> None:
        assets = self.balances[venue]
        sign = 1 if side == BUY else -1
        assets["BTC"] += sign * qty
        assets[quote] -= sign * qty * avg_price
        assets[fee_ccy] -= fee
        self.fees_paid[(venue, fee_ccy)] = self.fees_paid.get((venue, fee_ccy), 0.0) + fee
