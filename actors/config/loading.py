"""Reading a config: the TOML file, the command line's overrides, the checks across keys, the files it names.

``load_with_inputs`` returns the checked ``Config`` with the files it names already parsed (``Loaded``); the
session's command line uses it, so a calibration or market model file is read once per session.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from actors import inputs
from actors.config.files import Inputs, read_inputs
from actors.config.sections import Config, ConfigError, one_line
from actors.config.structure import structure, unstructure
from actors.core.vocabulary import Venue
from actors.sim.settings import OU_ONLY_KEYS

CONFIG_MAX_BYTES = 1 * inputs.MIB  # a config is a few KiB: anything larger is not one


@attrs.frozen
class Loaded:
    """A checked config and the files it names, parsed."""

    config: Config
    inputs: Inputs


def parse(raw: dict[str, Any]) -> Config:
    """Structure a TOML document into a Config, or raise ConfigError listing every problem."""
    config, problems = structure(raw)
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
    for venue in Venue:
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
    problems += _market_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _market_problems(config: Config) -> list[str]:
    """[market]'s checks across keys: the coins asked for against exclude and max_pairs, replay's one pair, the
    exposure limits' order."""
    market, problems = config.market, []
    if isinstance(market.pairs, tuple):
        if excluded := [coin for coin in market.pairs if coin in market.exclude]:
            problems.append(
                f"$.market.pairs: expected coins not in market.exclude, got {list(market.pairs)!r}: "
                f"{', '.join(excluded)} excluded (remove it from one of the two)"
            )
        if len(market.pairs) > market.max_pairs:
            problems.append(
                f"$.market.pairs: expected at most market.max_pairs ({market.max_pairs}) coins, got {len(market.pairs)}"
            )
    if config.session.market == "replay" and (market.pairs == "all" or len(market.pairs or ()) > 1):
        shown = repr(market.pairs if market.pairs == "all" else list(market.pairs or ()))
        problems.append(
            f"$.market.pairs: expected one coin or none when session.market = 'replay' (replay serves one pair "
            f"today), got {shown}"
        )
    pair_cap, total_cap = market.max_pair_exposure_usdt, market.max_total_exposure_usdt
    if pair_cap and total_cap and pair_cap > total_cap:
        problems.append(
            f"$.market.max_pair_exposure_usdt: expected at most max_total_exposure_usdt ({total_cap:g}) when both "
            f"are set, got {pair_cap:g}"
        )
    return problems


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
        raise ConfigError(f"{path}: not valid TOML ({one_line(exc)})") from None


def load_with_inputs(path: str | Path, overrides: dict[str, Any] | None = None) -> Loaded:
    """Read and check a TOML config and parse the files it names (each once: ``Loaded.inputs``).
    ``overrides`` ({"session": {"duration_s": 5}}, nested tables too: {"feeds": {"binance": {"symbol":
    "ETHUSDT"}}}) win over the file.

    The file's own values are checked first (an override must not hide a bad value in the file; a key
    the file lacks may come from the overrides), then the merged document."""
    path = Path(path)
    raw = _read_toml(path)
    overrides = overrides or {}
    try:
        if overrides:
            _config, problems = structure(_with_missing(raw, overrides))
            if problems:
                raise ConfigError("\n".join(problems))
        merge_tables(raw, overrides)
        config = parse(raw)
        return Loaded(config, read_inputs(config))
    except ConfigError as exc:
        raise ConfigError(f"{path}: " + str(exc).replace("\n", f"\n{path}: ")) from None


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """``load_with_inputs`` for a caller that needs only the checked config (the files it names are still
    checked; a session started from it parses them again: ``read_inputs``)."""
    return load_with_inputs(path, overrides).config


def unparse(config: Config) -> dict[str, Any]:
    """The config as a TOML-shaped document that ``parse`` gives back (the OU model's keys only with it)."""
    document = unstructure(config)
    if config.market.pairs is None:  # absent: the one pair of [feeds] (TOML has no null)
        document["market"].pop("pairs")
    if config.sim.market_model != "ou":
        for key in OU_ONLY_KEYS:
            document["sim"].pop(key, None)
    return document
