"""The listing endpoints' answers: Upbit's ``GET /v1/market/all`` and Binance's ``GET /api/v3/exchangeInfo``.

Pure: given the catalogue (``actors.sim.coins``), the query and the time, the status and the JSON body; the
servers (upbit_server.py, binance_server.py) do the I/O and the limits. The shapes follow the venues' documented
answers, with the fields a client's universe logic reads:

- Upbit: a JSON array of ``{"market", "korean_name", "english_name"}``; ``isDetails=true`` adds each market's
  ``market_event`` (``warning`` and ``caution`` flags, all false here). Besides the KRW markets it lists a few BTC-
  and USDT-quoted ones (``BTC-ETH``, ``USDT-BTC``...), as the real list does, for a client to filter out.
- Binance: ``{"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}``, each symbol with ``status``,
  ``baseAsset``, ``quoteAsset``, ``isSpotTradingAllowed``, ``permissions`` (and ``permissionSets``) and the filters
  ``PRICE_FILTER`` (``tickSize``), ``LOT_SIZE`` (``stepSize``) and ``NOTIONAL`` (``minNotional``); ``symbol=X`` or
  ``symbols=["X","Y"]`` narrows it, an unknown name is ``-1121 Invalid symbol.`` (HTTP 400).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from actors.sim.coin_market import CoinsMarket
from actors.sim.coins import BinanceSymbol, Catalogue, binance_symbols, upbit_markets

# markets of Upbit's other quotes, listed beside the KRW ones: (market, Korean name, English name)
UPBIT_OTHER_QUOTES = (
    ("BTC-ETH", "이더리움", "Ethereum"),
    ("BTC-XRP", "리플", "XRP"),
    ("USDT-BTC", "비트코인", "Bitcoin"),
)
_CAUTION = ("PRICE_FLUCTUATIONS", "TRADING_VOLUME_SOARING", "DEPOSIT_AMOUNT_SOARING", "GLOBAL_PRICE_DIFFERENCES")
INVALID_SYMBOL = b'{"code":-1121,"msg":"Invalid symbol."}'


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def market_all(cat: Catalogue, query: str) -> bytes:
    """The body of ``/v1/market/all`` (``query``: the request's query string)."""
    details = parse_qs(query).get("isDetails", ["false"])[0] == "true"
    rows: list[dict[str, Any]] = [
        {"market": m.market, "korean_name": m.korean_name, "english_name": m.english_name} for m in upbit_markets(cat)
    ]
    if cat.coins:
        rows += [{"market": m, "korean_name": k, "english_name": e} for m, k, e in UPBIT_OTHER_QUOTES]
    if details:
        for row in rows:
            row["market_event"] = {"warning": False, "caution": dict.fromkeys(_CAUTION, False)}
    return _compact(rows)


def _decimal(x: float) -> str:
    return f"{x:.8f}"


def _symbol(s: BinanceSymbol) -> dict[str, Any]:
    permissions = ["SPOT"] if s.spot else []
    return {
        "symbol": s.symbol,
        "status": s.status,
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "isSpotTradingAllowed": s.spot,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _decimal(s.tick_size),
                "maxPrice": "1000000.00000000",
                "tickSize": _decimal(s.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _decimal(s.step_size),
                "maxQty": "9000000000.00000000",
                "stepSize": _decimal(s.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": _decimal(s.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": permissions,
        "permissionSets": [permissions],
    }


def _wanted(query: str) -> list[str] | None:
    """The symbols a query names (``symbol=`` or ``symbols=[...]``), None for all; raises ValueError if malformed."""
    params = parse_qs(query)
    if "symbol" in params:
        return [params["symbol"][0]]
    if "symbols" in params:
        names = json.loads(params["symbols"][0])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("symbols is not a list of names")
        return names
    return None


def exchange_info(cat: Catalogue, btc_symbol: str, query: str, time_ms: int, weight_per_min: int) -> tuple[int, bytes]:
    """(status, body) of ``/api/v3/exchangeInfo``."""
    symbols = binance_symbols(cat, btc_symbol)
    try:
        wanted = _wanted(query)
    except ValueError:
        return 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'symbols\'."}'
    if wanted is not None:
        by_name = {s.symbol: s for s in symbols}
        if any(name not in by_name for name in wanted):
            return 400, INVALID_SYMBOL
        symbols = tuple(by_name[name] for name in wanted)
    body = {
        "timezone": "UTC",
        "serverTime": time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_per_min},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61_000},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol(s) for s in symbols],
    }
    return 200, _compact(body)


def listed_symbols(cat: Catalogue, btc_symbol: str) -> frozenset[str]:
    """Every symbol ``exchangeInfo`` lists (a depth request for one without a book gets an empty book)."""
    return frozenset(s.symbol for s in binance_symbols(cat, btc_symbol))


def catalogue_of(market: object) -> Catalogue:
    """The coins a market serves beside BTC: a simulated market's catalogue; a replay's, none."""
    return market.catalogue if isinstance(market, CoinsMarket) else Catalogue((), ())
