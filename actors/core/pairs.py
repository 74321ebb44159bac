"""A pair: one coin traded against KRW on Upbit and against USDT on Binance (issue 26), and the universe of
pairs a session trades, computed from both venues' listings.

The coin's name is Upbit's (``base``); Binance may list the same coin under another name (an alias), so
the Binance symbol is carried with it. Everything keyed by pair (market state, views, trades, statistics)
uses this value; its ``name`` is how files and logs spell it.

The listings (bytes in, typed values out, a malformed listing is a ``ListingError`` naming the field):

- Upbit ``GET /v1/market/all``: a JSON list of ``{"market": "KRW-BTC", "korean_name", "english_name"}``,
  with ``market_warning`` ("NONE"/"CAUTION") or ``market_event`` ({"warning": bool, ...}) when asked for
  the details. Markets of every quote are listed (KRW-, BTC-, USDT-); only KRW- markets make pairs.
- Binance ``GET /api/v3/exchangeInfo``: ``{"symbols": [{"symbol", "status", "baseAsset", "quoteAsset",
  "isSpotTradingAllowed", "permissions", "permissionSets", "filters": [...]}]}``; of the filters,
  PRICE_FILTER's ``tickSize``, LOT_SIZE's ``stepSize`` and ``minQty`` and NOTIONAL's (or the older
  MIN_NOTIONAL's) ``minNotional`` are kept (``PairRules``), every other filter type is ignored. A symbol
  whose name is not upper-case ASCII (Binance lists a few in other scripts) can be on no Upbit KRW market
  and is skipped.

``universe`` intersects them. Its order is by coin name (sorted), whatever order the venues list them in,
so two sessions started on the same listings trade the same pairs in the same order.
"""

from __future__ import annotations

import enum
import re
import sys
from collections import Counter
from typing import Annotated, Literal, Mapping, TypeVar

import attrs
import msgspec

KRW_PREFIX = "KRW-"
USDT_QUOTE = "USDT"
TRADING = "TRADING"
# coins priced at about one dollar: their "premium" is the FX rate itself, not an opportunity
STABLECOINS: tuple[str, ...] = ("USDT", "USDC", "DAI", "TUSD", "BUSD", "FDUSD", "USDE", "USDS", "PYUSD", "USD1")
DEFAULT_MAX_PAIRS = 200
_COIN = re.compile(r"[A-Z0-9]+", re.ASCII)
_T = TypeVar("_T")


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


def is_coin(name: str) -> bool:
    """An upper-case ASCII coin name as both venues spell them ("BTC", "1INCH")."""
    return _COIN.fullmatch(name) is not None


# -- the listings, decoded ------------------------------------------------------------------------------


class ListingError(ValueError):
    """A listing that cannot be read; the message names the venue, the endpoint and the field."""


@attrs.frozen
class PairRules:
    """Binance's trading rules of a symbol (its filters); 0 where the symbol has no such filter."""

    tick_size_usdt: float = 0.0  # PRICE_FILTER tickSize: prices are multiples of it
    step_size_coin: float = 0.0  # LOT_SIZE stepSize: quantities are multiples of it
    min_qty_coin: float = 0.0  # LOT_SIZE minQty
    min_notional_usdt: float = 0.0  # NOTIONAL (or MIN_NOTIONAL) minNotional: price x quantity at least this


@attrs.frozen
class UpbitMarket:
    """One market of Upbit's listing."""

    code: str  # "KRW-BTC"
    korean_name: str = ""
    english_name: str = ""
    warning: bool = False  # market_warning "CAUTION", or market_event.warning: Upbit flags it (listed still)

    @property
    def quote(self) -> str:
        return self.code.split("-", 1)[0]

    @property
    def base(self) -> str:
        return self.code.split("-", 1)[1] if "-" in self.code else ""


@attrs.frozen
class BinanceSymbol:
    """One symbol of Binance's exchange information."""

    symbol: str  # "BTCUSDT"
    status: str  # "TRADING", "BREAK", "HALT", ...
    base_asset: str  # "BTC"
    quote_asset: str  # "USDT"
    spot: bool  # spot trading is allowed
    rules: PairRules = PairRules()


# msgspec reads the decimal strings ("0.01000000") straight to checked floats in lax mode
_Decimal = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]


class _UpbitEvent(msgspec.Struct):
    warning: bool = False


class _UpbitMarket(msgspec.Struct):
    market: str
    korean_name: str = ""
    english_name: str = ""
    market_warning: str = "NONE"
    market_event: _UpbitEvent | None = None


class _Filter(msgspec.Struct):
    filterType: str
    tickSize: _Decimal | None = None
    stepSize: _Decimal | None = None
    minQty: _Decimal | None = None
    minNotional: _Decimal | None = None


class _Symbol(msgspec.Struct):
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    isSpotTradingAllowed: bool | None = None
    permissions: list[str] = []
    permissionSets: list[list[str]] = []
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_Symbol]


_upbit_decoder = msgspec.json.Decoder(list[_UpbitMarket])
_binance_decoder = msgspec.json.Decoder(_ExchangeInfo, strict=False)
UPBIT_ENDPOINT = "Upbit GET /v1/market/all"
BINANCE_ENDPOINT = "Binance GET /api/v3/exchangeInfo"


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, endpoint: str) -> _T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:  # "Expected `str`, got `int` - at `$[3].market`"
        raise ListingError(f"{endpoint}: unexpected listing: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ListingError(f"{endpoint}: not JSON: {exc}") from None
    except RecursionError:
        raise ListingError(f"{endpoint}: not JSON: nested too deeply") from None


def decode_upbit_markets(body: bytes) -> tuple[UpbitMarket, ...]:
    """Upbit's ``/v1/market/all`` answer, in its order. ``ListingError`` names a missing or mistyped field,
    or a market listed twice."""
    raw = _decode(_upbit_decoder, body, UPBIT_ENDPOINT)
    markets, seen = [], set()
    for i, m in enumerate(raw):
        if m.market in seen:
            raise ListingError(f"{UPBIT_ENDPOINT}: market {m.market!r} listed twice - at `$[{i}].market`")
        seen.add(m.market)
        warned = m.market_warning == "CAUTION" or (m.market_event is not None and m.market_event.warning)
        markets.append(UpbitMarket(m.market, m.korean_name, m.english_name, warned))
    return tuple(markets)


def _rules(filters: list[_Filter]) -> PairRules:
    tick = step = min_qty = min_notional = 0.0
    for f in filters:
        if f.filterType == "PRICE_FILTER":
            tick = f.tickSize or 0.0
        elif f.filterType == "LOT_SIZE":
            step, min_qty = f.stepSize or 0.0, f.minQty or 0.0
        elif f.filterType == "NOTIONAL" or (f.filterType == "MIN_NOTIONAL" and not min_notional):
            min_notional = f.minNotional or 0.0
    return PairRules(tick, step, min_qty, min_notional)


def _spot(s: _Symbol) -> bool:
    if s.isSpotTradingAllowed is not None:
        return s.isSpotTradingAllowed
    return "SPOT" in s.permissions or any("SPOT" in group for group in s.permissionSets)


def decode_binance_symbols(body: bytes) -> tuple[BinanceSymbol, ...]:
    """Binance's ``/api/v3/exchangeInfo`` answer: its symbols with upper-case ASCII names, in its order.
    ``ListingError`` names a missing or mistyped field, or a symbol listed twice."""
    raw = _decode(_binance_decoder, body, BINANCE_ENDPOINT)
    symbols, seen = [], set()
    for i, s in enumerate(raw.symbols):
        if not (is_coin(s.symbol) and is_coin(s.baseAsset) and is_coin(s.quoteAsset)):
            continue
        if s.symbol in seen:
            raise ListingError(f"{BINANCE_ENDPOINT}: symbol {s.symbol!r} listed twice - at `$.symbols[{i}].symbol`")
        seen.add(s.symbol)
        symbols.append(BinanceSymbol(s.symbol, s.status, s.baseAsset, s.quoteAsset, _spot(s), _rules(s.filters)))
    return tuple(symbols)


# -- the universe -------------------------------------------------------------------------------------------


class DropReason(enum.StrEnum):
    """Why a coin of Upbit's KRW market is not a pair of the universe."""

    EXCLUDED = "excluded"  # in [market] exclude (the stablecoins by default)
    NOT_ON_UPBIT = "not_on_upbit"  # a coin asked for by name that Upbit's KRW market lacks (never dropped: an error)
    NOT_ON_BINANCE = "not_on_binance"  # Binance lists no <coin>USDT symbol
    NOT_TRADING = "not_trading"  # Binance lists it with a status other than TRADING (BREAK, HALT)
    NO_SPOT = "no_spot"  # Binance does not allow spot trading on it
    OVER_MAX_PAIRS = "over_max_pairs"  # beyond [market] max_pairs (the first ones by name are kept)


@attrs.frozen
class Dropped:
    base: str  # the coin, as Upbit names it
    reason: DropReason


class UniverseError(ValueError):
    """The pairs asked for cannot be traded; the message names each coin and why (which venue lacks it)."""


Wanted = Literal["all"] | tuple[str, ...]


@attrs.frozen
class Universe:
    """The pairs a session trades (sorted by coin), each with its Binance rules, and what was left out."""

    pairs: tuple[Pair, ...]
    rules: tuple[PairRules, ...] = attrs.field()  # rules[i] is pairs[i]'s
    dropped: tuple[Dropped, ...] = ()
    upbit_krw_markets: int = 0  # the KRW markets Upbit lists
    binance_usdt_symbols: int = 0  # the USDT symbols Binance lists (any status)

    @rules.validator
    def _aligned(self, _attribute: object, rules: tuple[PairRules, ...]) -> None:
        if len(rules) != len(self.pairs):
            raise ValueError(f"{len(self.pairs)} pairs need as many rules, got {len(rules)}")

    def rules_for(self, pair: Pair) -> PairRules:
        """``pair``'s Binance rules (KeyError: not a pair of this universe)."""
        for p, r in zip(self.pairs, self.rules):
            if p == pair:
                return r
        raise KeyError(pair)

    def rules_by_pair(self) -> dict[Pair, PairRules]:
        """Every pair's rules, to look up many times (``rules_for`` scans)."""
        return dict(zip(self.pairs, self.rules))

    def drop_counts(self) -> dict[DropReason, int]:
        """How many coins were left out for each reason (only the reasons that occurred, in DropReason's order)."""
        counts = Counter(d.reason for d in self.dropped)
        return {reason: counts[reason] for reason in DropReason if counts[reason]}

    def describe(self) -> str:
        """One line for the log: how many pairs, from how much, and why the rest were left out."""
        dropped = ", ".join(f"{reason} {n}" for reason, n in self.drop_counts().items()) or "none"
        names = " ".join(p.name for p in self.pairs[:20]) + (" ..." if len(self.pairs) > 20 else "")
        return (
            f"{len(self.pairs)} pairs (Upbit KRW markets {self.upbit_krw_markets}, Binance USDT symbols "
            f"{self.binance_usdt_symbols}); left out: {dropped}; pairs: {names}"
        )


def _fault(
    base: str, binance_base: str, upbit: set[str], usdt: Mapping[str, BinanceSymbol]
) -> tuple[DropReason, str] | None:
    """Why ``base`` cannot be a pair, in words naming the venue that lacks it; None when it can."""
    if base not in upbit:
        return DropReason.NOT_ON_UPBIT, f"{base}: Upbit lists no {KRW_PREFIX}{base} market"
    named = f"{binance_base}{USDT_QUOTE}" + ("" if binance_base == base else f" (alias of {base})")
    symbol = usdt.get(binance_base)
    if symbol is None:
        return DropReason.NOT_ON_BINANCE, f"{base}: Binance lists no {named} symbol"
    if symbol.status != TRADING:
        return DropReason.NOT_TRADING, f"{base}: Binance lists {named} with status {symbol.status}, not {TRADING}"
    if not symbol.spot:
        return DropReason.NO_SPOT, f"{base}: Binance does not allow spot trading on {named}"
    return None


def universe(
    upbit: tuple[UpbitMarket, ...],
    binance: tuple[BinanceSymbol, ...],
    wanted: Wanted = "all",
    exclude: tuple[str, ...] = STABLECOINS,
    aliases: Mapping[str, str] | None = None,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> Universe:
    """The pairs of ``wanted`` ("all", or coins as Upbit names them) listed on Upbit's KRW market and on
    Binance against USDT, TRADING and spot; without the coins of ``exclude`` (on either venue's name);
    ``aliases`` maps an Upbit coin to Binance's name for it. Sorted by coin name; with "all", the first
    ``max_pairs`` are kept. A coin asked for by name that cannot be traded, more coins asked for than
    ``max_pairs``, or two coins on one Binance symbol raise ``UniverseError`` naming them."""
    aliases = aliases or {}
    krw = {m.base for m in upbit if m.quote == "KRW" and is_coin(m.base)}
    usdt = {s.base_asset: s for s in binance if s.quote_asset == USDT_QUOTE}
    if wanted == "all":
        chosen, dropped = _all(krw, usdt, exclude, aliases, max_pairs)
    else:
        chosen, dropped = _named(wanted, krw, usdt, exclude, aliases, max_pairs), []
    pairs = tuple(Pair.of(base, aliases.get(base)) for base in chosen)
    _one_symbol_each(pairs)
    rules = tuple(usdt[aliases.get(p.base, p.base)].rules for p in pairs)
    return Universe(pairs, rules, tuple(dropped), len(krw), len(usdt))


def _excluded(base: str, exclude: tuple[str, ...], aliases: Mapping[str, str]) -> bool:
    return base in exclude or aliases.get(base, base) in exclude


def _all(
    krw: set[str], usdt: Mapping[str, BinanceSymbol], exclude: tuple[str, ...], aliases: Mapping[str, str], most: int
) -> tuple[list[str], list[Dropped]]:
    chosen: list[str] = []
    dropped: list[Dropped] = []
    for base in sorted(krw):
        if _excluded(base, exclude, aliases):
            dropped.append(Dropped(base, DropReason.EXCLUDED))
        elif (fault := _fault(base, aliases.get(base, base), krw, usdt)) is not None:
            dropped.append(Dropped(base, fault[0]))
        elif len(chosen) >= most:
            dropped.append(Dropped(base, DropReason.OVER_MAX_PAIRS))
        else:
            chosen.append(base)
    return chosen, dropped


def _named(
    wanted: tuple[str, ...],
    krw: set[str],
    usdt: Mapping[str, BinanceSymbol],
    exclude: tuple[str, ...],
    aliases: Mapping[str, str],
    most: int,
) -> list[str]:
    faults = [f"{base}: asked for more than once" for base in sorted({b for b in wanted if wanted.count(b) > 1})]
    for base in wanted:
        if _excluded(base, exclude, aliases):
            faults.append(f"{base}: asked for and excluded ([market] exclude)")
        elif (fault := _fault(base, aliases.get(base, base), krw, usdt)) is not None:
            faults.append(fault[1])
    if len(set(wanted)) > most:
        faults.append(f"{len(set(wanted))} coins asked for, at most {most} allowed ([market] max_pairs)")
    if faults:
        raise UniverseError("cannot trade the pairs asked for: " + "; ".join(faults))
    return sorted(set(wanted))


def _one_symbol_each(pairs: tuple[Pair, ...]) -> None:
    """Two coins on one Binance symbol (an alias onto a coin that is listed itself) would be one book twice."""
    by_symbol: dict[str, list[str]] = {}
    for p in pairs:
        by_symbol.setdefault(p.binance_symbol, []).append(p.base)
    clashes = [f"{' and '.join(bases)} on {symbol}" for symbol, bases in by_symbol.items() if len(bases) > 1]
    if clashes:
        raise UniverseError("two coins map to one Binance symbol ([market] aliases): " + "; ".join(clashes))
