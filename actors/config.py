"""Session configuration: TOML -> frozen attrs classes, checked at the edge.

Every problem is reported as one line naming the key path (``$.session.duration_s``), what was
expected and what was given; ``actors.session`` prints it and exits with status 2. Actors never see
TOML: the session builds runtime objects from these classes. Reference: docs/config.md.
"""

from __future__ import annotations

import json
import math
import tomllib
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import attrs
import cattrs
from cattrs.errors import (AttributeValidationNote, BaseValidationError, ForbiddenExtraKeysError,
                           IterableValidationNote)

from actors.core import calibration as calibration_mod
from supervision import RestartPolicy


class ConfigError(Exception):
    """A config problem a person can fix; str() is the whole message."""


@attrs.frozen
class _Rule:
    """A validator that says what it expects, so the error can name it."""

    check: Callable[[Any], bool]
    expected: str

    def __call__(self, _inst: object, _attribute: attrs.Attribute, value: Any) -> None:
        if not self.check(value):
            raise _Invalid(self.expected)


class _Invalid(ValueError):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


positive = _Rule(lambda v: v > 0, "a number > 0")
non_negative = _Rule(lambda v: v >= 0, "a number >= 0")
fraction = _Rule(lambda v: 0 <= v < 1, "a number in [0, 1)")
ws_url = _Rule(lambda v: v.startswith(("ws://", "wss://")), "a ws:// or wss:// URL")
http_url = _Rule(lambda v: v.startswith(("http://", "https://")), "an http:// or https:// URL")
nonempty = _Rule(lambda v: len(v) > 0, "a non-empty string")
upper = _Rule(lambda v: len(v) > 0 and v == v.upper(), "an upper-case market code such as KRW-BTC")
snapshot_limit = _Rule(lambda v: 1 <= v <= 5000, "an integer from 1 to 5000")
zone_pairs = _Rule(lambda v: all(len(z) == 2 and z[0] > 0 and z[1] > 0 for z in v),
                   "a list of [entry_bps, tp_bps] pairs of numbers > 0")


@attrs.frozen
class SessionConfig:
    duration_s: float = attrs.field(validator=positive)
    logs_dir: str = attrs.field(validator=nonempty)
    market: Literal["live", "sim", "replay"] = "sim"
    seed: int = 0
    status_interval_s: float = attrs.field(default=10.0, validator=positive)
    kpi_interval_s: float = attrs.field(default=5.0, validator=positive)
    shutdown_grace_s: float = attrs.field(default=5.0, validator=positive)
    startup_timeout_s: float = attrs.field(default=60.0, validator=positive)  # both feeds ready within this
    record: bool = False  # save every raw frame to recording_<id>.jsonl.gz


@attrs.frozen
class UpbitFeedConfig:
    url: str = attrs.field(default="wss://api.upbit.com/websocket/v1", validator=ws_url)
    market: str = attrs.field(default="KRW-BTC", validator=upper)
    fx_market: str = attrs.field(default="KRW-USDT", validator=upper)
    ping_interval_s: float = attrs.field(default=20.0, validator=positive)
    stale_after_s: float = attrs.field(default=30.0, validator=positive)
    connect_timeout_s: float = attrs.field(default=10.0, validator=positive)
    max_bad_frames_per_min: int = attrs.field(default=20, validator=positive)


@attrs.frozen
class BinanceFeedConfig:
    ws_url: str = attrs.field(default="wss://stream.binance.com:9443", validator=ws_url)
    rest_url: str = attrs.field(default="https://api.binance.com", validator=http_url)
    symbol: str = attrs.field(default="BTCUSDT", validator=upper)
    snapshot_limit: int = attrs.field(default=1000, validator=snapshot_limit)
    stale_after_s: float = attrs.field(default=30.0, validator=positive)
    connect_timeout_s: float = attrs.field(default=10.0, validator=positive)
    snapshot_timeout_s: float = attrs.field(default=10.0, validator=positive)  # a whole REST call, body included
    view_depth: int = attrs.field(default=20, validator=positive)
    max_bad_frames_per_min: int = attrs.field(default=20, validator=positive)
    scheduled_cut_s: float = attrs.field(default=86_400.0, validator=positive)


@attrs.frozen
class FeedsConfig:
    upbit: UpbitFeedConfig = attrs.field(factory=UpbitFeedConfig)
    binance: BinanceFeedConfig = attrs.field(factory=BinanceFeedConfig)


@attrs.frozen
class FxConfig:
    source: Literal["upbit", "fixed"] = "upbit"
    fixed_krw_per_usdt: float = attrs.field(default=1380.0, validator=positive)


@attrs.frozen
class StrategyConfig:
    entry_bps: float = attrs.field(validator=positive)
    tp_bps: float = attrs.field(validator=positive)
    order_qty_btc: float = attrs.field(validator=positive)
    zones: tuple[tuple[float, ...], ...] = attrs.field(default=(), validator=zone_pairs)
    baseline_halflife_s: float = attrs.field(default=30.0, validator=positive)
    warmup_s: float = attrs.field(default=5.0, validator=non_negative)
    max_hold_s: float = attrs.field(default=60.0, validator=positive)
    max_book_age_s: float = attrs.field(default=5.0, validator=positive)
    max_slippage_bps: float = attrs.field(default=20.0, validator=non_negative)
    fill_model: Literal["simple", "calibrated"] = "simple"
    calibration: str = ""
    calibration_mode: Literal["deterministic", "stochastic"] = "deterministic"
    latency_ms: float = attrs.field(default=0.0, validator=non_negative)
    latency_jitter_ms: float = attrs.field(default=0.0, validator=non_negative)
    leg_risk: Literal["hedge", "carry"] = "hedge"
    l2_source: Literal["multi", "upbit", "binance", "mock"] = "multi"


@attrs.frozen
class FeesConfig:
    upbit_bps: float = attrs.field(default=5.0, validator=non_negative)
    binance_bps: float = attrs.field(default=10.0, validator=non_negative)


@attrs.frozen
class PortfolioConfig:
    upbit_krw: float = attrs.field(default=500_000_000.0, validator=non_negative)
    upbit_btc: float = attrs.field(default=5.0, validator=non_negative)
    binance_usdt: float = attrs.field(default=350_000.0, validator=non_negative)
    binance_btc: float = attrs.field(default=5.0, validator=non_negative)


@attrs.frozen
class RiskConfig:
    max_position_btc: float = attrs.field(default=math.inf, validator=positive)
    max_notional_usdt: float = attrs.field(default=math.inf, validator=positive)
    max_loss_usdt: float = attrs.field(default=math.inf, validator=positive)
    max_premium_bps: float = attrs.field(default=1500.0, validator=positive)  # |mid premium| beyond: bad data


ACTOR_NAMES = ("feed:upbit", "feed:binance", "aggregator", "executor", "collector")


@attrs.frozen
class ChaosConfig:
    kill_every_s: float = attrs.field(default=0.0, validator=non_negative)  # 0 = no chaos
    actors: tuple[Literal[ACTOR_NAMES], ...] = ("feed:upbit", "feed:binance")  # type: ignore[valid-type]


@attrs.frozen
class CollectorConfig:
    fsync: Literal["every_line", "interval", "close"] = "interval"
    fsync_interval_s: float = attrs.field(default=1.0, validator=positive)


@attrs.frozen
class AcceptanceConfig:
    min_fill_events: int = attrs.field(default=1, validator=non_negative)
    min_volume_std_over_mean: float = attrs.field(default=0.1, validator=non_negative)
    max_extra_reconnects: int = attrs.field(default=0, validator=non_negative)


@attrs.frozen
class AggregatorConfig:
    coalesce_ms: float = attrs.field(default=1.0, validator=non_negative)


@attrs.frozen
class SupervisionConfig:
    initial_backoff_s: float = attrs.field(default=0.5, validator=positive)
    max_backoff_s: float = attrs.field(default=30.0, validator=positive)
    multiplier: float = attrs.field(default=2.0, validator=positive)
    jitter: float = attrs.field(default=0.2, validator=fraction)
    healthy_after_s: float = attrs.field(default=30.0, validator=positive)
    max_restarts: int = attrs.field(default=5, validator=positive)
    window_s: float = attrs.field(default=60.0, validator=positive)

    def policy(self) -> RestartPolicy:
        return RestartPolicy(**attrs.asdict(self))


FAULT_KINDS = ("close", "drop", "stall", "garbage", "oversized", "nan_level", "negative_level", "crossed_book",
               "gap", "shutdown", "error_frame", "rest_slow", "rest_fail")


@attrs.frozen
class FaultConfig:
    """One fault the simulator injects (docs/config.md lists the kinds and what each does)."""

    at_s: float = attrs.field(validator=non_negative)   # seconds after the simulator started
    venue: Literal["upbit", "binance"]
    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    duration_s: float = attrs.field(default=5.0, validator=non_negative)  # stall, rest_slow, rest_fail


@attrs.frozen
class SimConfig:
    """The embedded exchange's market model and server behaviour (market = "sim")."""

    btc_usdt: float = attrs.field(default=60_000.0, validator=positive)
    usdt_krw: float = attrs.field(default=1_380.0, validator=positive)
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
    step_ms: int = attrs.field(default=100, validator=positive)
    upbit_idle_timeout_s: float = attrs.field(default=60.0, validator=positive)
    binance_ping_interval_s: float = attrs.field(default=20.0, validator=positive)
    binance_pong_timeout_s: float = attrs.field(default=60.0, validator=positive)
    max_connection_s: float = attrs.field(default=86_400.0, validator=positive)
    faults: tuple[FaultConfig, ...] = ()
    fault_rate_per_min: float = attrs.field(default=0.0, validator=non_negative)  # seeded random faults
    fault_kinds: tuple[Literal[FAULT_KINDS], ...] = ("close", "drop", "stall", "garbage", "gap")  # type: ignore


@attrs.frozen
class ReplayConfig:
    """What market = "replay" serves, and how fast (docs/config.md)."""

    files: tuple[str, ...] = ()          # recordings: ours, hftbacktest or cryptofeed (merged by time)
    speed: float = attrs.field(default=1.0, validator=positive)  # x the recorded pace, real clock
    as_fast_as_possible: bool = False    # virtual clock: as fast as the CPU allows, deterministic


@attrs.frozen
class Config:
    session: SessionConfig
    strategy: StrategyConfig
    feeds: FeedsConfig = attrs.field(factory=FeedsConfig)
    fx: FxConfig = attrs.field(factory=FxConfig)
    fees: FeesConfig = attrs.field(factory=FeesConfig)
    portfolio: PortfolioConfig = attrs.field(factory=PortfolioConfig)
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    aggregator: AggregatorConfig = attrs.field(factory=AggregatorConfig)
    chaos: ChaosConfig = attrs.field(factory=ChaosConfig)
    collector: CollectorConfig = attrs.field(factory=CollectorConfig)
    acceptance: AcceptanceConfig = attrs.field(factory=AcceptanceConfig)
    supervision: SupervisionConfig = attrs.field(factory=SupervisionConfig)
    sim: SimConfig = attrs.field(factory=SimConfig)
    replay: ReplayConfig = attrs.field(factory=ReplayConfig)


# -- structuring -----------------------------------------------------------------------------------

class _Mismatch(TypeError):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _strict(check: Callable[[Any], bool], expected: str, convert: Callable[[Any], Any]):
    def hook(value: Any, _type: Any) -> Any:
        if not check(value):
            raise _Mismatch(expected)
        return convert(value)
    return hook


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(
    int, _strict(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", int))
_converter.register_structure_hook(
    float, _strict(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number", float))
_converter.register_structure_hook(str, _strict(lambda v: isinstance(v, str), "a string", str))
_converter.register_structure_hook(bool, _strict(lambda v: isinstance(v, bool), "true or false", bool))


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if attrs.has(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


_MISSING = object()


def _lookup(raw: Any, path: list[str | int]) -> Any:
    for key in path:
        try:
            raw = raw[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw


def _render(path: list[str | int]) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


def _given(raw: Any, path: list[str | int]) -> str:
    value = _lookup(raw, path)
    return "nothing (the key is missing)" if value is _MISSING else repr(value)


def _problems(exc: BaseException, path: list[str | int], tp: Any, raw: Any) -> list[str]:
    if isinstance(exc, BaseValidationError):
        with_notes, without = exc.group_exceptions()
        out: list[str] = []
        for sub, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                out += _problems(sub, path + [note.name], note.type, raw)
            elif isinstance(note, IterableValidationNote):
                out += _problems(sub, path + [note.index], note.type, raw)
            else:
                out += _problems(sub, path, tp, raw)
        for sub in without:
            out += _problems(sub, path, tp, raw)
        return out
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(a.name for a in attrs.fields(exc.cl))
        return [f"{_render(path + [k])}: unknown key (expected one of: {allowed}), got {_given(raw, path + [k])}"
                for k in sorted(exc.extra_fields)]
    if isinstance(exc, KeyError):
        return [f"{_render(path)}: expected {_describe(tp)}, got nothing (the key is missing)"]
    expected = getattr(exc, "expected", None) or _describe(tp)
    return [f"{_render(path)}: expected {expected}, got {_given(raw, path)}"]


def _check_values(obj: Any, path: list[str | int], raw: Any) -> list[str]:
    out: list[str] = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if attrs.has(type(value)):
            out += _check_values(value, path + [field.name], raw)
        elif field.validator is not None:
            try:
                field.validator(obj, field, value)
            except _Invalid as exc:
                given = _lookup(raw, path + [field.name])
                shown = repr(value) if given is _MISSING else repr(given)
                out.append(f"{_render(path + [field.name])}: expected {exc.expected}, got {shown}")
    return out


def parse(raw: dict[str, Any]) -> Config:
    """Structure a TOML document into a Config, or raise ConfigError listing every problem."""
    with attrs.validators.disabled():
        try:
            config = _converter.structure(raw, Config)
        except Exception as exc:  # cattrs reports every problem in one exception group
            problems = _problems(exc, [], Config, raw)
            raise ConfigError("\n".join(problems) or str(exc)) from None
    problems = _check_values(config, [], raw)
    strategy = config.strategy
    if strategy.fill_model == "calibrated" and not strategy.calibration:
        problems.append("$.strategy.calibration: expected a calibration file path when fill_model = "
                        "'calibrated', got nothing")
    if config.session.market == "replay" and not config.replay.files:
        problems.append("$.replay.files: expected at least one recording file when session.market = 'replay', "
                        "got []")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def read_calibration(path: str) -> calibration_mod.Calibration:
    """The calibration file named by $.strategy.calibration, or ConfigError saying what is wrong."""
    where = f"$.strategy.calibration: {path!r}"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not a readable JSON file ({exc})") from None
    try:
        return calibration_mod.from_dict(document)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def merge_tables(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Tables merge key by key (at any depth); any other value replaces the file's."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            merge_tables(raw[key], value)
        else:
            raw[key] = value


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and check a TOML config; ``overrides`` ({"session": {"duration_s": 5}}, nested tables
    too: {"feeds": {"binance": {"symbol": "ETHUSDT"}}}) win over the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    merge_tables(raw, overrides or {})
    try:
        config = parse(raw)
        if config.strategy.fill_model == "calibrated":
            read_calibration(config.strategy.calibration)
        return config
    except ConfigError as exc:
        raise ConfigError(f"{path}: " + str(exc).replace("\n", f"\n{path}: ")) from None


def unparse(config: Config) -> dict[str, Any]:
    return _converter.unstructure(config)
