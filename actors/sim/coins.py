"""The coins of the many-coin simulated market (``[sim] coins = N``): who lists what, and each coin's character.

Pure: no Trio, no I/O. ``catalogue(n)`` is the universe a client discovers from the two listings
(docs/simulator.md, "Many coins"): BTC and ``n`` more coins on both venues (real tickers first, then generated
names ``S001``, ``S002``...), plus, so a client's universe logic has work to do, stablecoins on both venues, coins
on one venue only, one coin Binance lists under another name, one Binance symbol that is not trading, and
symbols quoted in something other than USDT. Each coin's price level, volatility, depth, activity and premium
parameters come from its name alone (``random.Random("coin:<name>")``): the same coin is the same whatever ``n``
and whatever the session's seed, which only drives the processes.

Prices are in USDT; the real tickers' levels are plausible round figures, not a record of any day.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs

from actors.core.pairs import KRW_PREFIX, USDT_QUOTE

MIN_PRICE_USDT, MAX_PRICE_USDT = 0.001, 50_000.0  # a generated coin's price level: log-uniform between them

# (name, Korean name, price level in USDT): coins on both venues, most liquid first
_TICKERS: tuple[tuple[str, str, float], ...] = (
    ("ETH", "이더리움", 3_000.0),
    ("XRP", "리플", 0.6),
    ("SOL", "솔라나", 150.0),
    ("DOGE", "도지코인", 0.15),
    ("ADA", "에이다", 0.45),
    ("TRX", "트론", 0.12),
    ("AVAX", "아발란체", 30.0),
    ("LINK", "체인링크", 15.0),
    ("DOT", "폴카닷", 6.0),
    ("BCH", "비트코인캐시", 400.0),
    ("NEAR", "니어프로토콜", 5.0),
    ("APT", "앱토스", 8.0),
    ("SUI", "수이", 1.5),
    ("ETC", "이더리움클래식", 25.0),
    ("XLM", "스텔라루멘", 0.1),
    ("HBAR", "헤데라", 0.08),
    ("ATOM", "코스모스", 8.0),
    ("ARB", "아비트럼", 0.8),
    ("OP", "옵티미즘", 1.8),
    ("SEI", "세이", 0.4),
    ("SAND", "샌드박스", 0.4),
    ("MANA", "디센트럴랜드", 0.4),
    ("AAVE", "에이브", 100.0),
    ("UNI", "유니스왑", 8.0),
    ("STX", "스택스", 1.8),
    ("IMX", "이뮤터블엑스", 1.5),
    ("INJ", "인젝티브", 25.0),
    ("GRT", "더그래프", 0.2),
    ("ALGO", "알고랜드", 0.15),
    ("EOS", "이오스", 0.7),
    ("CHZ", "칠리즈", 0.08),
    ("AXS", "엑시인피니티", 6.0),
    ("THETA", "쎄타토큰", 1.5),
    ("VET", "비체인", 0.03),
    ("ENS", "이더리움네임서비스", 20.0),
    ("ZRX", "제로엑스", 0.4),
    ("BAT", "베이직어텐션토큰", 0.2),
    ("QTUM", "퀀텀", 3.0),
    ("ZIL", "질리카", 0.02),
    ("ANKR", "앵커", 0.03),
    ("1INCH", "1인치네트워크", 0.4),
    ("IOTA", "아이오타", 0.2),
    ("NEO", "네오", 12.0),
    ("ICX", "아이콘", 0.2),
    ("GAS", "가스", 4.0),
    ("BLUR", "블러", 0.3),
    ("PYTH", "피스네트워크", 0.4),
    ("ONDO", "온도파이낸스", 1.0),
    ("JTO", "지토", 3.0),
    ("W", "웜홀", 0.3),
)
STABLECOINS_BOTH = (("USDC", "유에스디코인"), ("USDE", "에테나USDe"))  # on both venues, about 1 USDT
UPBIT_ONLY = (("BORA", "보라", 0.15), ("MED", "메디블록", 0.01), ("MLK", "밀크", 0.3))
BINANCE_ONLY = (("BNB", 550.0), ("FDUSD", 1.0))  # FDUSD: a stablecoin Upbit does not list
ALIAS = ("BTT", "비트토렌트", "BTTC", 0.001)  # Upbit's KRW-BTT is Binance's BTTCUSDT (a simulated price level)
NOT_TRADING = ("WAVES", "웨이브", 1.5)  # on both lists, but Binance's WAVESUSDT has status BREAK: no book there
# symbols Binance lists that are not quoted in USDT (listed only: no book is served for them)
OTHER_QUOTES = (
    ("ETHBTC", "ETH", "BTC"),
    ("XRPBTC", "XRP", "BTC"),
    ("BTCFDUSD", "BTC", "FDUSD"),
    ("SOLUSDC", "SOL", "USDC"),
)
STABLE_NAMES = frozenset({"USDT", "USDC", "USDE", "FDUSD"})


@attrs.frozen
class CoinSpec:
    """One simulated coin (not BTC, which is the market's own): where it is listed and how it behaves."""

    base: str  # its name on Upbit (and on Binance, unless ``binance_base`` says otherwise)
    korean_name: str
    binance_base: str
    price_usdt: float  # the price level it starts at
    on_upbit: bool  # KRW-<base> has a book
    on_binance: bool  # <binance_base>USDT has a book (a listed symbol not TRADING has none)
    stable: bool
    beta: float  # how much of BTC's log return its Binance price follows (the market factor)
    vol_bps_per_sqrt_s: float  # its own log-price volatility beside the market factor
    level_usdt: float  # mean notional of one book level
    activity: float  # the chance that each of its books changes in a given step (quiet coins change less often)
    premium_mean_bps: float  # its own premium part: an OU deviation around this mean ...
    premium_std_bps: float  # ... with this stationary std ...
    premium_reversion_s: float  # ... and this reversion time
    binance_status: Literal["TRADING", "BREAK"] = "TRADING"

    @property
    def upbit_code(self) -> str:
        return KRW_PREFIX + self.base

    @property
    def binance_symbol(self) -> str:
        return self.binance_base + USDT_QUOTE

    @property
    def market_weight(self) -> float:
        """How much of the market-wide premium the coin carries: a stablecoin's KRW price tracks KRW-USDT, not
        the kimchi premium of coins."""
        return 0.0 if self.stable else 1.0


@attrs.frozen
class BinanceSymbol:
    """One row of Binance's ``exchangeInfo``: a symbol with its status and its filters."""

    symbol: str
    base: str
    quote: str
    status: str
    tick_size: float
    step_size: float
    min_notional: float = 5.0
    spot: bool = True


@attrs.frozen
class UpbitMarket:
    """One row of Upbit's ``/v1/market/all``."""

    market: str
    korean_name: str
    english_name: str


@attrs.frozen
class Catalogue:
    """The coins with books (``coins``) and the Binance symbols that are listed only (``listed_only``)."""

    coins: tuple[CoinSpec, ...]
    listed_only: tuple[BinanceSymbol, ...]


def binance_tick(price_usdt: float) -> float:
    """A Binance tickSize for a price level: about four significant digits, at most 0.01 and at least 1e-8."""
    return max(1e-8, min(0.01, 10.0 ** (math.floor(math.log10(price_usdt)) - 3)))


def binance_step(price_usdt: float) -> float:
    """A Binance stepSize (lot) for a price level: about one USDT or less a step, from 0.00001 to 1."""
    return max(1e-5, min(1.0, 10.0 ** math.floor(math.log10(1.0 / price_usdt))))


# Upbit's KRW tick by price (docs.upbit.com "원화 마켓 주문 가격 단위", the table in force since 2025-07-31 down to
# 100 KRW; below it the 2024-10 table's decades): (lowest price of the band, tick)
_UPBIT_TICKS: tuple[tuple[float, float], ...] = (
    (1_000_000.0, 1_000.0),
    (500_000.0, 500.0),
    (100_000.0, 100.0),
    (50_000.0, 50.0),
    (10_000.0, 10.0),
    (5_000.0, 5.0),
    (100.0, 1.0),
    (10.0, 0.01),
    (1.0, 0.001),
    (0.1, 0.0001),
    (0.01, 0.00001),
    (0.001, 0.000001),
    (0.0001, 0.0000001),
)


def upbit_tick(price_krw: float, stable: bool = False) -> float:
    """Upbit's KRW tick at ``price_krw``; USDT and USDC trade at 0.5 KRW between 1,000 and 10,000 KRW."""
    if stable and 1_000.0 <= price_krw < 10_000.0:
        return 0.5
    return next((tick for low, tick in _UPBIT_TICKS if price_krw >= low), 0.00000001)


def _coin(
    base: str, korean: str, price: float, rank: int, *, binance_base: str | None = None, **where: bool | str
) -> CoinSpec:
    """A coin's character from its name; ``rank`` (0: the most liquid) scales its depth and activity."""
    rng = random.Random(f"coin:{base}")
    stable = base in STABLE_NAMES
    character = math.exp(0.5 * rng.gauss(0.0, 1.0))  # above 1: deeper and busier than its rank says
    depth, busy = math.exp(-rank / 60.0) * character, math.exp(-rank / 30.0) * character
    return CoinSpec(
        base=base,
        korean_name=korean,
        binance_base=binance_base or base,
        price_usdt=price,
        on_upbit=bool(where.get("on_upbit", True)),
        on_binance=bool(where.get("on_binance", True)),
        stable=stable,
        beta=0.0 if stable else rng.uniform(0.6, 1.4),
        vol_bps_per_sqrt_s=0.05 if stable else 1.5 * math.exp(0.4 * rng.gauss(0.0, 1.0)) * (1.0 + min(rank, 100) / 100),
        level_usdt=max(20.0, (500.0 if stable else 3_000.0) * depth),
        activity=min(1.0, max(0.05, 1.2 * busy)),
        premium_mean_bps=rng.gauss(0.0, 3.0) if stable else rng.gauss(0.0, 30.0),
        premium_std_bps=rng.uniform(1.0, 3.0) if stable else rng.uniform(10.0, 60.0),
        premium_reversion_s=rng.uniform(30.0, 600.0),
        binance_status="BREAK" if where.get("status") == "BREAK" else "TRADING",
    )


def _generated(i: int) -> tuple[str, str, float]:
    """The ``i``-th generated coin (1-based): its name, Korean name and a log-uniform price level."""
    rng = random.Random(f"coin-level:{i}")
    price = math.exp(rng.uniform(math.log(MIN_PRICE_USDT), math.log(MAX_PRICE_USDT)))
    return f"S{i:03d}", f"시뮬코인{i}", float(f"{price:.3g}")


def catalogue(n: int) -> Catalogue:
    """BTC's companions in a market of ``n`` more coins on both venues (0: none at all, not even the extras)."""
    if n <= 0:
        return Catalogue((), ())
    named = [_TICKERS[i] if i < len(_TICKERS) else _generated(i - len(_TICKERS) + 1) for i in range(n)]
    coins = [_coin(base, korean, price, rank) for rank, (base, korean, price) in enumerate(named)]
    coins += [_coin(base, korean, 1.0, 5) for base, korean in STABLECOINS_BOTH]
    coins += [_coin(base, korean, price, 60, on_binance=False) for base, korean, price in UPBIT_ONLY]
    coins += [_coin(base, base, price, 10 if base == "BNB" else 5, on_upbit=False) for base, price in BINANCE_ONLY]
    base, korean, binance_base, price = ALIAS
    coins.append(_coin(base, korean, price, 40, binance_base=binance_base))
    base, korean, price = NOT_TRADING
    coins.append(_coin(base, korean, price, 80, on_binance=False, status="BREAK"))
    listed_only = tuple(
        BinanceSymbol(
            symbol, b, quote, "TRADING", 1e-6 if quote == "BTC" else 0.01, 1e-4, 0.0001 if quote == "BTC" else 5.0
        )
        for symbol, b, quote in OTHER_QUOTES
    )
    return Catalogue(tuple(coins), listed_only)


def upbit_markets(cat: Catalogue) -> tuple[UpbitMarket, ...]:
    """``/v1/market/all``: KRW-BTC, KRW-USDT and every coin Upbit lists."""
    rows = [UpbitMarket("KRW-BTC", "비트코인", "Bitcoin"), UpbitMarket("KRW-USDT", "테더", "Tether")]
    rows += [UpbitMarket(c.upbit_code, c.korean_name, c.base) for c in cat.coins if c.on_upbit]
    return tuple(rows)


def binance_symbols(cat: Catalogue, btc_symbol: str = "BTCUSDT") -> tuple[BinanceSymbol, ...]:
    """``exchangeInfo``'s symbols: BTC's (under the name it is served as), every coin Binance lists (a symbol not
    TRADING included), and the symbols quoted in other assets."""
    rows = [BinanceSymbol(btc_symbol, btc_symbol.removesuffix(USDT_QUOTE), USDT_QUOTE, "TRADING", 0.01, 1e-5)]
    for c in cat.coins:
        if c.on_binance or c.binance_status != "TRADING":
            tick, step = binance_tick(c.price_usdt), binance_step(c.price_usdt)
            rows.append(BinanceSymbol(c.binance_symbol, c.binance_base, USDT_QUOTE, c.binance_status, tick, step))
    return (*rows, *cat.listed_only)
