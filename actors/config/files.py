"""The files a config names, each read once: the fill model's calibration, the slippage drift model and
the simulated market's model file. ``read_inputs`` parses those a config uses (``Inputs``); a problem is
a ``ConfigError`` naming the key, the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from actors import inputs
from actors.config.sections import Config, ConfigError, one_line
from actors.core import calibration as calibration_mod
from actors.core import slippage as slippage_mod
from actors.sim import market_file
from actors.sim.settings import SimConfig

CALIBRATION_MAX_BYTES = 16 * inputs.MIB


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
        raise ConfigError(f"{where}: not a readable JSON file ({one_line(exc)})") from None


def read_calibration(path: str) -> calibration_mod.Calibration:
    """The calibration file named by $.strategy.calibration, or ConfigError saying what is wrong."""
    where = f"$.strategy.calibration: {path!r}"
    document = _read_json(path, where)
    try:
        return calibration_mod.from_dict(document)
    except ValueError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}") from None
    except Exception as exc:  # a document shaped so that from_dict trips over it
        raise ConfigError(f"{where}: malformed calibration ({one_line(exc)})") from None


def read_market_model(sim: SimConfig) -> market_file.MarketModel | None:
    """The model file $.sim.market_model names (None: the OU model), or ConfigError saying what is wrong."""
    path = market_file.path_of(sim)
    if path is None:
        return None
    try:
        return market_file.read(path)
    except market_file.MarketModelError as exc:
        raise ConfigError(f"$.sim.market_model: {path!r}: {exc}") from None


def read_slippage_calibration(path: str) -> slippage_mod.SlippageModel:
    """The drift model named by $.strategy.slippage_calibration, or ConfigError saying what is wrong."""
    where = f"$.strategy.slippage_calibration: {path!r}"
    document = _read_json(path, where)
    try:
        return slippage_mod.from_dict(document)
    except Exception as exc:  # a missing key, a wrong type, a bad value
        raise ConfigError(f"{where}: not a slippage drift model ({one_line(exc)})") from None


@attrs.frozen
class Inputs:
    """The files a config names, parsed (each once, by ``read_inputs``); None where the config names none."""

    calibration: calibration_mod.Calibration | None = None  # fill_model = "calibrated"
    slippage: slippage_mod.SlippageModel | None = None  # strategy.slippage_calibration
    market_model: market_file.MarketModel | None = None  # a simulated or replayed market's fitted model (not OU)


def read_inputs(config: Config) -> Inputs:
    """Parse the files ``config`` uses, or raise ConfigError naming the first that cannot be used."""
    strategy = config.strategy
    return Inputs(
        calibration=read_calibration(strategy.calibration) if strategy.fill_model == "calibrated" else None,
        slippage=read_slippage_calibration(strategy.slippage_calibration) if strategy.slippage_calibration else None,
        market_model=read_market_model(config.sim) if config.session.market != "live" else None,
    )
