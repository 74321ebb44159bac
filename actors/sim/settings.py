"""The embedded exchange's settings (``[sim]`` in the config is ``SimConfig``): its market model and
server behaviour, and the faults it injects. Pure (attrs and the core's rules), so the market model
that reads them stays pure; ``actors.config`` reads them from TOML."""

from __future__ import annotations

import enum
from typing import Literal

import attrs

from actors.core.rules import at_least, between, non_negative, positive
from actors.core.vocabulary import Venue

ping_period = at_least(1.0)  # a ping loop's period (feeds.upbit.ping_interval_s, sim.binance_ping_interval_s)
MAX_COINS = 1_000  # [sim] coins: beyond the ~200 coins the two venues share, and beyond one core
MAX_FAULT_RATE_PER_MIN = 600.0  # 10 a second: one every market step at the default step_ms


class FaultKind(enum.StrEnum):
    """What a fault does (docs/config.md, [sim], says each; the config spells them as these words)."""

    CLOSE = "close"  # a clean close (1000)
    DROP = "drop"  # the TCP connection cut, no close frame
    STALL = "stall"  # the socket stays open, no market data for duration_s
    GARBAGE = "garbage"  # a frame that is not JSON
    OVERSIZED = "oversized"  # a frame over the client's message limit
    NAN_LEVEL = "nan_level"  # a level with a NaN price
    NEGATIVE_LEVEL = "negative_level"  # a level with a negative size
    CROSSED_BOOK = "crossed_book"  # a well-formed book whose best bid is above its best ask
    GAP = "gap"  # Binance: a diff left out (the update ids jump)
    OVERLAP = "overlap"  # Binance: the next diff overlaps the one before
    SHUTDOWN = "shutdown"  # Binance: a serverShutdown event, then a close
    ERROR_FRAME = "error_frame"  # Upbit: an error frame, then a close
    REST_SLOW = "rest_slow"  # Binance: REST snapshots answered slowly for duration_s
    REST_FAIL = "rest_fail"  # Binance: REST snapshots answered with an error for duration_s


_BOTH_VENUES = (
    FaultKind.CLOSE,
    FaultKind.DROP,
    FaultKind.STALL,
    FaultKind.GARBAGE,
    FaultKind.OVERSIZED,
    FaultKind.NAN_LEVEL,
    FaultKind.NEGATIVE_LEVEL,
    FaultKind.CROSSED_BOOK,
)
# which fault kinds each venue's server can inject (docs/config.md, [sim])
VENUE_KINDS: dict[Venue, tuple[FaultKind, ...]] = {
    Venue.UPBIT: (*_BOTH_VENUES, FaultKind.ERROR_FRAME),
    Venue.BINANCE: (
        *_BOTH_VENUES,
        FaultKind.GAP,
        FaultKind.OVERLAP,
        FaultKind.SHUTDOWN,
        FaultKind.REST_SLOW,
        FaultKind.REST_FAIL,
    ),
}


# the [sim] keys of the OU model's processes: with a fitted market model they would do nothing
OU_ONLY_KEYS = (
    "btc_vol_bps_per_sqrt_s",
    "jumps_per_hour",
    "jump_bps",
    "fx_vol_bps_per_sqrt_s",
    "premium_mean_bps",
    "premium_std_bps",
    "premium_reversion_s",
)


@attrs.frozen
class FaultConfig:
    """One fault the simulator injects (docs/config.md lists the kinds and what each does)."""

    at_s: float = attrs.field(validator=non_negative)  # seconds after the simulator started
    venue: Venue
    kind: FaultKind
    duration_s: float = attrs.field(default=5.0, validator=non_negative)  # stall, rest_slow, rest_fail


@attrs.frozen
class SimConfig:
    """The embedded exchange's market model and server behaviour (market = "sim")."""

    # "default": the shipped fit to real data (config/market/); "ou": the earlier OU premium, whose keys below
    # (btc_vol_bps_per_sqrt_s ... premium_reversion_s) apply only to it; else a model file's path
    market_model: str = "default"
    # a fitted model's volatility at the start: "mean" (the data's mean variance: a run of hours shows the
    # average market) or "random" (a regime drawn from the seed, as a day picked at random would be)
    start_volatility: Literal["mean", "random"] = "mean"

    btc_usdt: float = attrs.field(default=60_000.0, validator=positive)
    usdt_krw: float = attrs.field(default=1_380.0, validator=positive)
    # the OU model's processes (market_model = "ou" only)
    btc_vol_bps_per_sqrt_s: float = attrs.field(default=1.5, validator=non_negative)
    jumps_per_hour: float = attrs.field(default=6.0, validator=non_negative)
    jump_bps: float = attrs.field(default=15.0, validator=non_negative)
    fx_vol_bps_per_sqrt_s: float = attrs.field(default=0.2, validator=non_negative)
    premium_mean_bps: float = 30.0
    premium_std_bps: float = attrs.field(default=20.0, validator=non_negative)
    premium_reversion_s: float = attrs.field(default=20.0, validator=positive)
    depth_std: float = attrs.field(default=0.4, validator=non_negative)
    depth_reversion_s: float = attrs.field(default=10.0, validator=positive)
    level_size_btc: float = attrs.field(default=0.05, validator=positive)
    # per-venue depth profile (0 = level_size_btc / the model's default): mean BTC per level, and the share of
    # Binance's 0.01 ticks that hold a level (its levels' spacing; the maintained 500 levels span ~1/share ticks)
    upbit_level_size_btc: float = attrs.field(default=0.0, validator=non_negative)
    binance_level_size_btc: float = attrs.field(default=0.0, validator=non_negative)
    binance_occupancy: float = attrs.field(default=0.0, validator=between(0, 1))
    step_ms: int = attrs.field(default=100, validator=between(10, 60_000, "an integer"))
    # a session on the virtual clock steps the market straight into one pass of the pure core per step
    # (actors/session/batch_sim.py); false: through the exchange's servers and the actors (the same results, slower)
    batched: bool = True
    upbit_idle_timeout_s: float = attrs.field(default=60.0, validator=positive)  # no frame either way (wire: ~60 s)
    binance_ping_interval_s: float = attrs.field(default=20.0, validator=ping_period)
    binance_pong_timeout_s: float = attrs.field(default=60.0, validator=positive)
    max_connection_s: float = attrs.field(default=86_400.0, validator=positive)
    binance_overlap_after_snapshot: bool = False  # each REST answer: the next diff overlaps the one before
    # the exchanges' limits, enforced (docs/simulator.md; 0: not enforced): Binance REST weight per client IP per
    # minute (429 past it, 418 ban for a client that asks again before Retry-After, first ban binance_ban_s and
    # doubling), client messages per second on a Binance connection (more: closed 1008), Upbit data requests per
    # second on a connection (more: error frame TOO_MANY_REQUEST, closed) and connects per second per IP (HTTP 429)
    binance_rest_weight_per_min: int = attrs.field(default=6_000, validator=between(0, 1_000_000, "an integer"))
    binance_ban_s: float = attrs.field(default=120.0, validator=positive)
    binance_ws_messages_per_s: int = attrs.field(default=5, validator=between(0, 10_000, "an integer"))
    upbit_messages_per_s: int = attrs.field(default=5, validator=between(0, 10_000, "an integer"))
    upbit_connects_per_s: int = attrs.field(default=5, validator=between(0, 10_000, "an integer"))
    # Binance: streams one connection may carry (more: a SUBSCRIBE is refused, a URL naming more is closed 1008)
    binance_streams_per_connection: int = attrs.field(default=1_024, validator=between(1, 100_000, "an integer"))
    # the many-coin market (docs/simulator.md): this many coins beside BTC on both venues, with the listings'
    # stablecoins, one-venue coins, alias and non-USDT symbols; 0: the one-coin market, exactly as before
    coins: int = attrs.field(default=0, validator=between(0, MAX_COINS, "an integer"))
    faults: tuple[FaultConfig, ...] = ()
    fault_rate_per_min: float = attrs.field(default=0.0, validator=between(0, MAX_FAULT_RATE_PER_MIN))  # seeded
    fault_kinds: tuple[FaultKind, ...] = (
        FaultKind.CLOSE,
        FaultKind.DROP,
        FaultKind.STALL,
        FaultKind.GARBAGE,
        FaultKind.GAP,
    )
