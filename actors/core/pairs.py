"""A pair: one coin traded against KRW on Upbit and against USDT on Binance (issue 26).

The coin's name is Upbit's (``base``); Binance may list the same coin under another name (an alias), so
the Binance symbol is carried with it. Everything keyed by pair (market state, views, trades, statistics)
uses this value; its ``name`` is how files and logs spell it.
"""

from __future__ import annotations

import attrs

KRW_PREFIX = "KRW-"
USDT_QUOTE = "USDT"


@attrs.frozen(order=True)
class Pair:
    base: str  # the coin as Upbit lists it: "BTC"
    upbit_code: str  # "KRW-BTC"
    binance_symbol: str  # "BTCUSDT"

    @property
    def name(self) -> str:
        return self.base

    @classmethod
    def of(cls, base: str, binance_base: str | None = None) -> Pair:
        """The pair of coin ``base`` (Binance's name for it: ``binance_base``, when it differs)."""
        return cls(base, KRW_PREFIX + base, (binance_base or base) + USDT_QUOTE)

    @classmethod
    def from_codes(cls, upbit_code: str, binance_symbol: str) -> Pair:
        """The pair a one-pair config names by its two market codes ("KRW-BTC", "BTCUSDT")."""
        base = upbit_code.split("-", 1)[1] if "-" in upbit_code else upbit_code
        return cls(base, upbit_code, binance_symbol)
