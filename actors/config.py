"""Session configuration: TOML -> frozen attrs classes, checked at the edge.

Every problem is reported as one line naming the key path (``$.session.duration_s``), what was
expected and what was given; ``actors.session`` prints it and exits with status 2. Actors never see
TOML: the session builds runtime objects from these classes. Reference: docs/config.md.

Rules that hold for every key, so a new key cannot forget them: a float is finite (only a ``Limit``,
the risk limits, may be ``inf``); a key that paces a loop has a floor (``at_least``), so no loop can
step by 1e-300 and keep a virtual clock from advancing. Files are read with ``actors.inputs`` limits.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from actors import inputs
from actors.conventions import ACTORS
from actors.core import calibration as calibration_mod
from actors.core import slippage as slippage_mod
from actors.core.acceptance import Thresholds
from actors.core.budget import in_words
from actors.core.fills import Fees, Lots
from actors.core.risk import RiskLimits
from actors.core.rules import Limit, Rule, at_least, between, non_negative, off_or_at_least, positive, positive_or_inf
from actors.core.strategy import StrategyParams
from actors.sim.settings import OU_ONLY_KEYS, SimConfig, ping_period
from supervision import RestartPolicy

CONFIG_MAX_BYTES = 1 * inputs.MIB  # a config is a few KiB: anything larger is not one
CALIBRATION_MAX_BYTES = 16 * inputs.MIB


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


@attrs.frozen
class FeedsConfig:
    upbit: UpbitFeedConfig = attrs.field(factory=UpbitFeedConfig)
    binance: BinanceFeedConfig = attrs.field(factory=BinanceFeedConfig)


@attrs.frozen
class FxConfig:
    source: Literal["upbit", "fixed"] = "upbit"
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
    l2_source: Literal["multi", "upbit", "binance", "mock"] = "multi"

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
    # a direct replay on the virtual clock runs as one pass of the pure core per instant (actors/replay_batch.py);
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


def _number(*, allow_inf: bool, expected: str, expected_finite: str):
    """Structure hook of float (finite only: every float key, present and future) and of Limit (finite
    or inf; its rule refuses -inf)."""

    def hook(value: Any, _type: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch(expected)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            raise _Mismatch(expected_finite) from None
        if math.isnan(number) or (math.isinf(number) and not allow_inf):
            raise _Mismatch(expected_finite)
        return number

    return hook


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(
    int, _strict(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", int)
)
_converter.register_structure_hook(
    float, _number(allow_inf=False, expected="a number", expected_finite="a finite number")
)
_converter.register_structure_hook(
    Limit, _number(allow_inf=True, expected=positive_or_inf.expected, expected_finite=positive_or_inf.expected)
)
_converter.register_structure_hook(str, _strict(lambda v: isinstance(v, str), "a string", str))
_converter.register_structure_hook(bool, _strict(lambda v: isinstance(v, bool), "true or false", bool))


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if attrs.has(tp):
        return "a table"
    return {
        int: "an integer",
        float: "a number",
        Limit: positive_or_inf.expected,
        str: "a string",
        bool: "true or false",
    }.get(tp, str(tp))


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
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
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
        return [
            f"{_render(path + [k])}: unknown key (expected one of: {allowed}), got {_given(raw, path + [k])}"
            for k in sorted(exc.extra_fields)
        ]
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
            except ValueError as exc:  # a Rule's Invalid, or a validator of supervision's RestartPolicy
                given = _lookup(raw, path + [field.name])
                shown = repr(value) if given is _MISSING else repr(given)
                expected = getattr(exc, "expected", None) or str(exc)
                out.append(f"{_render(path + [field.name])}: expected {expected}, got {shown}")
    return out


def _structure(raw: dict[str, Any]) -> tuple[Config | None, list[str]]:
    """The Config and the problems of its keys one by one (types, then each key's rule)."""
    with attrs.validators.disabled():
        try:
            config = _converter.structure(raw, Config)
        except Exception as exc:  # cattrs reports every problem in one exception group
            return None, _problems(exc, [], Config, raw) or [_one_line(exc)]
    return config, _check_values(config, [], raw)


def parse(raw: dict[str, Any]) -> Config:
    """Structure a TOML document into a Config, or raise ConfigError listing every problem."""
    config, problems = _structure(raw)
    if config is None or problems:
        raise ConfigError("\n".join(problems))
    strategy = config.strategy
    if strategy.fill_model == "calibrated" and not strategy.calibration:
        problems.append(
            "$.strategy.calibration: expected a calibration file path when fill_model = 'calibrated', got nothing"
        )
    if strategy.min_order_qty_btc > strategy.max_order_qty_btc:
        problems.append(
            f"$.strategy.min_order_qty_btc: expected at most max_order_qty_btc ({strategy.max_order_qty_btc:g}), "
            f"got {strategy.min_order_qty_btc:g}"
        )
    if config.replay.via == "direct" and (config.sim.faults or config.sim.fault_rate_per_min):
        problems.append(
            "$.replay.via: expected 'exchange' or 'auto' when [sim] injects faults (the direct path has no "
            "servers to misbehave), got 'direct'"
        )
    if config.sim.market_model != "ou":
        given = raw.get("sim", {}) if isinstance(raw.get("sim"), dict) else {}
        for key in OU_ONLY_KEYS:
            if key in given:
                problems.append(
                    f"$.sim.{key}: applies only to market_model = 'ou' (the fitted model {config.sim.market_model!r} "
                    f"takes its processes from its file), got {given[key]!r}: remove it, or set market_model = 'ou'"
                )
    for venue in ("upbit", "binance"):
        feed = getattr(config.feeds, venue)
        if feed.message_queue_bytes < feed.max_message_bytes:
            problems.append(
                f"$.feeds.{venue}.message_queue_bytes: expected at least max_message_bytes "
                f"({feed.max_message_bytes:,}: one message must fit), got {feed.message_queue_bytes:,}"
            )
    binance = config.feeds.binance
    if binance.diff_buffer_total_bytes < binance.diff_buffer_bytes:
        problems.append(
            f"$.feeds.binance.diff_buffer_total_bytes: expected at least diff_buffer_bytes "
            f"({binance.diff_buffer_bytes:,}: one book's buffer must fit), got {binance.diff_buffer_total_bytes:,}"
        )
    if config.session.market == "replay" and not config.replay.files:
        problems.append("$.replay.files: expected at least one recording file when session.market = 'replay', got []")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _one_line(exc: BaseException) -> str:
    """An exception as a reason on one line (a parser's message can span lines; RecursionError says little)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text, name = " ".join(str(exc).split()), type(exc).__name__
    if isinstance(exc, ValueError) and text:  # TOMLDecodeError, JSONDecodeError: the message says it all
        return text
    return f"{name}: {text}" if text else name


def _input_problem(exc: inputs.InputError, path: str | Path) -> str:
    """The InputError's problem without its leading file name (the caller names the file its own way)."""
    text, prefix = str(exc), f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _read_json(path: str, where: str) -> Any:
    """A small JSON file a config key names: its document, or ConfigError naming ``where`` and the problem."""
    try:
        text = inputs.read_text_bounded(path, CALIBRATION_MAX_BYTES)
    except inputs.InputError as exc:
        raise ConfigError(f"{where}: {_input_problem(exc, path)}") from None
    try:
        return json.loads(text)
    except Exception as exc:  # any exception of the parser: RecursionError on deep nesting, not only ValueError
        raise ConfigError(f"{where}: not a readable JSON file ({_one_line(exc)})") from None


def read_calibration(path: str) -> calibration_mod.Calibration:
    """The calibration file named by $.strategy.calibration, or ConfigError saying what is wrong."""
    where = f"$.strategy.calibration: {path!r}"
    document = _read_json(path, where)
    try:
        return calibration_mod.from_dict(document)
    except ValueError as exc:
        raise ConfigError(f"{where}: {_one_line(exc)}") from None
    except Exception as exc:  # a document shaped so that from_dict trips over it
        raise ConfigError(f"{where}: malformed calibration ({_one_line(exc)})") from None


def read_market_model(sim: SimConfig) -> None:
    """Check that the model file $.sim.market_model names can be used (ConfigError saying what is wrong)."""
    from actors.sim import market_file

    path = market_file.path_of(sim)
    if path is None:
        return
    try:
        market_file.read(path)
    except market_file.MarketModelError as exc:
        raise ConfigError(f"$.sim.market_model: {path!r}: {exc}") from None


def read_slippage_calibration(path: str) -> slippage_mod.SlippageModel:
    """The drift model named by $.strategy.slippage_calibration, or ConfigError saying what is wrong."""
    where = f"$.strategy.slippage_calibration: {path!r}"
    document = _read_json(path, where)
    try:
        return slippage_mod.from_dict(document)
    except Exception as exc:  # a missing key, a wrong type, a bad value
        raise ConfigError(f"{where}: not a slippage drift model ({_one_line(exc)})") from None


def merge_tables(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Tables merge key by key (at any depth); any other value replaces the file's."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            merge_tables(raw[key], value)
        else:
            raw[key] = value


def _with_missing(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with the keys it lacks taken from ``overrides``; the keys it has stay as they are."""
    out = dict(raw)
    for key, value in overrides.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_missing(out[key], value)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = inputs.read_text_bounded(path, CONFIG_MAX_BYTES)
    except inputs.InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return tomllib.loads(text)
    except Exception as exc:  # any exception of the parser: RecursionError on deep nesting, not only TOMLDecodeError
        raise ConfigError(f"{path}: not valid TOML ({_one_line(exc)})") from None


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and check a TOML config; ``overrides`` ({"session": {"duration_s": 5}}, nested tables
    too: {"feeds": {"binance": {"symbol": "ETHUSDT"}}}) win over the file.

    The file's own values are checked first (an override must not hide a bad value in the file; a key
    the file lacks may come from the overrides), then the merged document."""
    path = Path(path)
    raw = _read_toml(path)
    overrides = overrides or {}
    try:
        if overrides:
            _config, problems = _structure(_with_missing(raw, overrides))
            if problems:
                raise ConfigError("\n".join(problems))
        merge_tables(raw, overrides)
        config = parse(raw)
        if config.strategy.fill_model == "calibrated":
            read_calibration(config.strategy.calibration)
        if config.strategy.slippage_calibration:
            read_slippage_calibration(config.strategy.slippage_calibration)
        if config.session.market != "live":
            read_market_model(config.sim)
        return config
    except ConfigError as exc:
        raise ConfigError(f"{path}: " + str(exc).replace("\n", f"\n{path}: ")) from None


def unparse(config: Config) -> dict[str, Any]:
    """The config as a TOML-shaped document that ``parse`` gives back (the OU model's keys only with it)."""
    document: dict[str, Any] = _converter.unstructure(config)
    if config.sim.market_model != "ou":
        for key in OU_ONLY_KEYS:
            document["sim"].pop(key, None)
    return document
