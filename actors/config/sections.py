"""The config's sections: one frozen attrs class per TOML table, each key with its default and its rule
(several sections are the core's own parameter types). Reference: docs/config.md."""

from __future__ import annotations

import re
from typing import Literal

import attrs

from actors import inputs
from actors.conventions import ACTORS
from actors.core.acceptance import Thresholds
from actors.core.budget import in_words
from actors.core.fills import Fees, Lots
from actors.core.pairs import DEFAULT_MAX_PAIRS, STABLECOINS, Pair, is_coin
from actors.core.risk import RiskLimits
from actors.core.rules import Rule, at_least, between, non_negative, off_or_at_least, positive
from actors.core.strategy import StrategyParams
from actors.core.vocabulary import L2Source, Venue
from actors.sim.settings import SimConfig, ping_period
from supervision import RestartPolicy


class ConfigError(Exception):
    """A config problem a person can fix; str() is the whole message."""


def _no_nul(v: str) -> bool:
    return "\0" not in v


_MARKET_CODE = re.compile(r"[A-Z0-9]+-[A-Z0-9]+", re.ASCII)
_SYMBOL = re.compile(r"[A-Z0-9]+", re.ASCII)

ws_url = Rule(lambda v: v.startswith(("ws://", "wss://")), "a ws:// or wss:// URL")
http_url = Rule(lambda v: v.startswith(("http://", "https://")), "an http:// or https:// URL")
nonempty = Rule(lambda v: len(v) > 0, "a non-empty string")
folder = Rule(lambda v: len(v) > 0 and _no_nul(v), "a non-empty path without NUL characters")
optional_path = Rule(_no_nul, "a path without NUL characters")
paths = Rule(lambda v: all(len(p) > 0 and _no_nul(p) for p in v), "a list of non-empty paths without NUL characters")
market_code = Rule(lambda v: _MARKET_CODE.fullmatch(v) is not None, "an upper-case ASCII market code such as KRW-BTC")
binance_symbol = Rule(lambda v: _SYMBOL.fullmatch(v) is not None, "an upper-case ASCII symbol such as BTCUSDT")
snapshot_limit = between(1, 5000, "an integer")
coins = Rule(lambda v: all(is_coin(c) for c in v), 'a list of upper-case ASCII coins such as ["BTC", "ETH"]')
# at least one depth snapshot of the largest limit (weight 250) must fit a minute
rest_weight = between(250, 1_000_000, "an integer")
# Byte budgets (docs/reliability.md): real frames are under 100 KiB, a book's pre-snapshot diffs a few MB


def _bytes_between(low: int, high: int) -> Rule:
    return Rule(
        lambda v: low <= v <= high, f"a number of bytes from {low:,} ({in_words(low)}) to {high:,} ({in_words(high)})"
    )


message_bytes = _bytes_between(64 * inputs.KIB, 256 * inputs.MIB)
buffer_bytes = _bytes_between(64 * inputs.KIB, 4096 * inputs.MIB)
# Floors of the keys that pace a loop (the loop steps by them: a smaller value never lets time advance)
report_period = at_least(0.1)  # session.status_interval_s, session.kpi_interval_s
chaos_period = off_or_at_least(0.1)


@attrs.frozen
class SessionConfig:
    duration_s: float = attrs.field(validator=positive)
    logs_dir: str = attrs.field(validator=folder)
    market: Literal["live", "sim", "replay"] = "sim"
    seed: int = 0
    status_interval_s: float = attrs.field(default=10.0, validator=report_period)
    kpi_interval_s: float = attrs.field(default=5.0, validator=report_period)
    shutdown_grace_s: float = attrs.field(default=5.0, validator=positive)
    startup_timeout_s: float = attrs.field(default=60.0, validator=positive)  # both feeds ready within this
    record: bool = False  # save every raw frame to recording_<id>.jsonl.gz


@attrs.frozen
class UpbitFeedConfig:
    url: str = attrs.field(default="wss://api.upbit.com/websocket/v1", validator=ws_url)
    rest_url: str = attrs.field(default="https://api.upbit.com", validator=http_url)  # /v1/market/all ([market])
    market: str = attrs.field(default="KRW-BTC", validator=market_code)
    fx_market: str = attrs.field(default="KRW-USDT", validator=market_code)
    ping_interval_s: float = attrs.field(default=20.0, validator=ping_period)
    stale_after_s: float = attrs.field(default=30.0, validator=positive)
    connect_timeout_s: float = attrs.field(default=10.0, validator=positive)
    max_bad_frames_per_min: int = attrs.field(default=20, validator=positive)
    max_message_bytes: int = attrs.field(default=1 * inputs.MIB, validator=message_bytes)  # larger: overflow
    message_queue_bytes: int = attrs.field(default=16 * inputs.MIB, validator=buffer_bytes)  # received, unread


@attrs.frozen
class BinanceFeedConfig:
    ws_url: str = attrs.field(default="wss://stream.binance.com:9443", validator=ws_url)
    rest_url: str = attrs.field(default="https://api.binance.com", validator=http_url)
    symbol: str = attrs.field(default="BTCUSDT", validator=binance_symbol)
    snapshot_limit: int = attrs.field(default=1000, validator=snapshot_limit)
    # the REST weight a minute this process may spend (Binance: 6,000 per IP, shared by every process on it)
    rest_weight_per_min: int = attrs.field(default=6_000, validator=rest_weight)
    stale_after_s: float = attrs.field(default=30.0, validator=positive)
    connect_timeout_s: float = attrs.field(default=10.0, validator=positive)
    snapshot_timeout_s: float = attrs.field(default=10.0, validator=positive)  # a whole REST call, body included
    view_depth: int = attrs.field(default=20, validator=positive)
    max_bad_frames_per_min: int = attrs.field(default=20, validator=positive)
    scheduled_cut_s: float = attrs.field(default=86_400.0, validator=positive)
    max_message_bytes: int = attrs.field(default=1 * inputs.MIB, validator=message_bytes)  # larger: overflow
    message_queue_bytes: int = attrs.field(default=16 * inputs.MIB, validator=buffer_bytes)  # received, unread
    diff_buffer_bytes: int = attrs.field(default=32 * inputs.MIB, validator=buffer_bytes)  # a book's, pre-snapshot
    diff_buffer_total_bytes: int = attrs.field(default=128 * inputs.MIB, validator=buffer_bytes)  # every book's
    book_bytes: int = attrs.field(default=64 * inputs.MIB, validator=buffer_bytes)  # the synced book itself
    # many books (issue 26, actors/core/shards.py): depth streams a connection carries (Binance allows 1024)
    streams_per_connection: int = attrs.field(default=100, validator=between(1, 1024, "an integer"))
    # depth snapshots one connection may have asked for at once (the rest wait, by priority)
    snapshots_in_flight: int = attrs.field(default=4, validator=between(1, 1000, "an integer"))
    # a resync of a book of a many-book connection first waits a random 0..this (books lost together ask apart)
    resync_jitter_s: float = attrs.field(default=0.5, validator=non_negative)


@attrs.frozen
class FeedsConfig:
    upbit: UpbitFeedConfig = attrs.field(factory=UpbitFeedConfig)
    binance: BinanceFeedConfig = attrs.field(factory=BinanceFeedConfig)


# [market] pairs: absent (None) = the one pair of [feeds.upbit] market and [feeds.binance] symbol; "all" = every
# coin on both venues; a tuple = these coins (Upbit's names)
PairsSetting = Literal["all"] | tuple[str, ...] | None
# [market] aliases: Upbit coin -> Binance's name for it, a TOML table held as sorted (upbit, binance) tuples
Aliases = tuple[tuple[str, str], ...]


def _pairs_ok(v: PairsSetting) -> bool:
    if v is None or v == "all":
        return True
    return isinstance(v, tuple) and len(v) > 0 and len(set(v)) == len(v) and all(is_coin(c) for c in v)


def _aliases_ok(v: Aliases) -> bool:
    targets = [binance for _upbit, binance in v]
    return all(is_coin(u) and is_coin(b) for u, b in v) and len(set(targets)) == len(targets)


pairs_setting = Rule(_pairs_ok, '"all" or a non-empty list of distinct upper-case ASCII coins such as ["BTC", "ETH"]')
aliases_table = Rule(
    _aliases_ok, "a table of upper-case ASCII coins, Upbit's name = Binance's, no two onto one: { BTT = \"BTTC\" }"
)
max_pairs_rule = between(1, 1000, "an integer")
open_trades_rule = between(1, 1000, "an integer")


@attrs.frozen
class MarketConfig:
    """``[market]``: which pairs a session trades and the limits across them (issue 26; docs/config.md)."""

    pairs: PairsSetting = attrs.field(default=None, validator=pairs_setting)
    exclude: tuple[str, ...] = attrs.field(default=STABLECOINS, validator=coins)
    aliases: Aliases = attrs.field(default=(), validator=aliases_table)
    max_pairs: int = attrs.field(default=DEFAULT_MAX_PAIRS, validator=max_pairs_rule)
    max_open_trades: int = attrs.field(default=1, validator=open_trades_rule)  # across every pair
    max_pair_exposure_usdt: float = attrs.field(default=0.0, validator=non_negative)  # 0: no limit
    max_total_exposure_usdt: float = attrs.field(default=0.0, validator=non_negative)  # 0: no limit
    listing_timeout_s: float = attrs.field(default=10.0, validator=positive)  # each listing's REST call, whole
    # a trade's size in every pair: order_qty_btc becomes this much of the coin at its first price, and the other
    # BTC quantities of [strategy] and [risk] keep their ratio to it (actors/wiring_market.py)
    order_usdt: float = attrs.field(default=100.0, validator=positive)
    # each coin held on each venue at the start (to sell on either side), this much at its first price
    coin_inventory_usdt: float = attrs.field(default=1_000.0, validator=non_negative)

    @property
    def multi_pair(self) -> bool:
        """Whether ``pairs`` is set: the pairs then come from both venues' listings (even a list of one coin),
        and [feeds.upbit] market / [feeds.binance] symbol are not used for them."""
        return self.pairs is not None

    def wanted(self) -> Literal["all"] | tuple[str, ...]:
        """``pairs`` as ``actors.core.pairs.universe`` takes it (ValueError for the one-pair config)."""
        if self.pairs is None:
            raise ValueError("[market] pairs is not set: the session trades the one pair of [feeds]")
        return self.pairs

    def alias_map(self) -> dict[str, str]:
        """``aliases`` as a mapping, Upbit coin -> Binance's name for it."""
        return dict(self.aliases)


@attrs.frozen
class FxConfig:
    source: Literal[Venue.UPBIT, "fixed"] = Venue.UPBIT  # Upbit's KRW-USDT book, or fixed_krw_per_usdt
    fixed_krw_per_usdt: float = attrs.field(default=1380.0, validator=positive)


@attrs.frozen
class StrategyConfig(StrategyParams):
    """``[strategy]``: the strategy's parameters (the core's ``StrategyParams``, its defaults and rules)
    and the execution settings."""

    fill_model: Literal["simple", "calibrated"] = "simple"
    calibration: str = attrs.field(default="", validator=optional_path)
    calibration_mode: Literal["deterministic", "stochastic"] = "deterministic"
    # the slippage drift model (python -m actors.calibrate --slippage): expected slippage beyond the walk
    slippage_calibration: str = attrs.field(default="", validator=optional_path)
    latency_ms: float = attrs.field(default=0.0, validator=non_negative)
    latency_jitter_ms: float = attrs.field(default=0.0, validator=non_negative)
    leg_risk: Literal["hedge", "carry"] = "hedge"
    l2_source: L2Source = L2Source.MULTI

    def params(self) -> StrategyParams:
        """The core's view of this section: the StrategyParams fields, nothing else."""
        return StrategyParams(**{f.name: getattr(self, f.name) for f in attrs.fields(StrategyParams)})


FeesConfig = Fees  # [fees] is the core's type: one set of defaults and rules
LotsConfig = Lots  # [lots]: each venue's minimum order


@attrs.frozen
class PortfolioConfig:
    upbit_krw: float = attrs.field(default=500_000_000.0, validator=non_negative)
    upbit_btc: float = attrs.field(default=5.0, validator=non_negative)
    binance_usdt: float = attrs.field(default=350_000.0, validator=non_negative)
    binance_btc: float = attrs.field(default=5.0, validator=non_negative)


RiskConfig = RiskLimits  # [risk]

ACTOR_NAMES = ACTORS  # [chaos] actors: any supervised actor


@attrs.frozen
class ChaosConfig:
    kill_every_s: float = attrs.field(default=0.0, validator=chaos_period)  # 0 = no chaos
    actors: tuple[Literal[ACTOR_NAMES], ...] = ("feed:upbit", "feed:binance")  # type: ignore[valid-type]


@attrs.frozen
class CollectorConfig:
    fsync: Literal["every_line", "interval", "close"] = "interval"
    fsync_interval_s: float = attrs.field(default=1.0, validator=positive)


AcceptanceConfig = Thresholds  # [acceptance]


@attrs.frozen
class AggregatorConfig:
    coalesce_ms: float = attrs.field(default=1.0, validator=non_negative)


SupervisionConfig = RestartPolicy  # [supervision]: supervise() takes it as it is


@attrs.frozen
class ReplayConfig:
    """What market = "replay" serves, and how fast (docs/config.md)."""

    files: tuple[str, ...] = attrs.field(default=(), validator=paths)  # ours, hftbacktest or cryptofeed
    speed: float = attrs.field(default=1.0, validator=positive)  # x the recorded pace, real clock
    as_fast_as_possible: bool = False  # virtual clock: as fast as the CPU allows, deterministic
    # "direct": recorded frames handed to the feeds in memory (fast); "exchange": through the embedded
    # exchange's servers (pings, REST, faults); "auto": direct for --as-fast-as-possible without faults
    via: Literal["auto", "direct", "exchange"] = "auto"
    # a direct replay on the virtual clock runs as one pass of the pure core per instant (actors/session/batch.py);
    # false: through the feed, aggregator and executor actors (the same results, slower)
    batched: bool = True
    # through the exchange: the steps queued for one client and not yet sent (estimated decoded bytes)
    read_ahead_bytes: int = attrs.field(default=16 * inputs.MIB, validator=buffer_bytes)

    def direct(self, sim: SimConfig) -> bool:
        """Whether this replay is served directly (``actors.sim.direct``) rather than by the exchange."""
        if self.via != "auto":
            return self.via == "direct"
        return self.as_fast_as_possible and not sim.faults and not sim.fault_rate_per_min


@attrs.frozen
class Config:
    session: SessionConfig
    strategy: StrategyConfig
    feeds: FeedsConfig = attrs.field(factory=FeedsConfig)
    market: MarketConfig = attrs.field(factory=MarketConfig)
    fx: FxConfig = attrs.field(factory=FxConfig)
    fees: FeesConfig = attrs.field(factory=FeesConfig)
    lots: LotsConfig = attrs.field(factory=LotsConfig)
    portfolio: PortfolioConfig = attrs.field(factory=PortfolioConfig)
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    aggregator: AggregatorConfig = attrs.field(factory=AggregatorConfig)
    chaos: ChaosConfig = attrs.field(factory=ChaosConfig)
    collector: CollectorConfig = attrs.field(factory=CollectorConfig)
    acceptance: AcceptanceConfig = attrs.field(factory=AcceptanceConfig)
    supervision: SupervisionConfig = attrs.field(factory=SupervisionConfig)
    sim: SimConfig = attrs.field(factory=SimConfig)
    replay: ReplayConfig = attrs.field(factory=ReplayConfig)


def is_multi_pair(config: Config) -> bool:
    """Whether the session's pairs come from [market] pairs (the listings), not from the one pair of [feeds]."""
    return config.market.multi_pair


def one_pair(config: Config) -> Pair:
    """The pair of the one-pair config: [feeds.upbit] market and [feeds.binance] symbol (today's behaviour)."""
    return Pair.from_codes(config.feeds.upbit.market, config.feeds.binance.symbol)


def one_line(exc: BaseException) -> str:
    """An exception as a reason on one line (a parser's message can span lines; RecursionError says little)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text, name = " ".join(str(exc).split()), type(exc).__name__
    if isinstance(exc, ValueError) and text:  # TOMLDecodeError, JSONDecodeError: the message says it all
        return text
    return f"{name}: {text}" if text else name
