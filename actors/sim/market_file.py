"""Market model files (``config/market/*.json``, written by ``python -m actors.calibrate --market``) and which
model a ``[sim]`` table selects: ``market_model = "default"`` (the shipped fit), ``"ou"`` (the earlier
Ornstein-Uhlenbeck premium, not fitted to anything: kept for tests that need a fast-moving premium) or the
path of a model file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from actors.conventions import DEFAULT_MARKET_MODEL, DEFAULT_MARKET_MODEL_NAME
from actors.inputs import MIB, InputError, read_text_bounded
from actors.sim.market_model import FORMAT, VERSION, MarketParams
from actors.sim.settings import SimConfig

DEFAULT_NAME, DEFAULT_PATH = DEFAULT_MARKET_MODEL_NAME, DEFAULT_MARKET_MODEL
MAX_BYTES = 4 * MIB
OU = "ou"
DEFAULT = "default"


class MarketModelError(ValueError):
    """A model file that cannot be used; str() says what is wrong (without the file name)."""


@attrs.frozen
class MarketModel:
    name: str
    path: str
    params: MarketParams
    fitted_on: str  # the data it was fitted to, in words
    document: Any = attrs.field(eq=False, repr=False)  # the whole file (the report reads its reference)


def parse(document: Any, path: str) -> MarketModel:
    if not isinstance(document, dict):
        raise MarketModelError("not a market model (expected a JSON object)")
    if document.get("kind") != FORMAT:
        raise MarketModelError(f"not a market model (its kind is {document.get('kind')!r}, expected {FORMAT!r})")
    if document.get("version") != VERSION:
        raise MarketModelError(f"version {document.get('version')!r} of the model format; this program reads {VERSION}")
    params = MarketParams.from_dict(document.get("params", {}))
    fitted = document.get("fitted_on", {})
    words = fitted.get("summary", "") if isinstance(fitted, dict) else ""
    return MarketModel(str(document.get("name", Path(path).stem)), path, params, str(words), document)


def read(path: str) -> MarketModel:
    """The model in ``path``; MarketModelError saying what is wrong (a file that cannot be read, is not JSON,
    is not a model, or has a parameter out of range, named)."""
    try:
        text = read_text_bounded(path, MAX_BYTES)
    except InputError as exc:
        message = str(exc)
        raise MarketModelError(message.removeprefix(f"{path}: ")) from None
    try:
        document = json.loads(text)
    except Exception as exc:  # RecursionError on deep nesting too
        raise MarketModelError(f"not JSON ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None
    try:
        return parse(document, path)
    except ValueError as exc:
        raise MarketModelError(str(exc)) from None


def path_of(sim: SimConfig) -> str | None:
    """The model file a ``[sim]`` table selects (None: the OU model)."""
    if sim.market_model == OU:
        return None
    return str(DEFAULT_PATH) if sim.market_model == DEFAULT else sim.market_model


def resolve(sim: SimConfig, parsed: MarketModel | None = None) -> MarketModel | None:
    """The fitted model a ``[sim]`` table selects (None: the OU model): ``parsed`` when the caller has it
    already (``actors.config.read_inputs`` reads it once per session), else read from its file."""
    path = path_of(sim)
    if path is None:
        return None
    return parsed if parsed is not None else read(path)


def params_of(sim: SimConfig, parsed: MarketModel | None = None) -> MarketParams | None:
    """The parameters ``SimMarket`` needs for this ``[sim]`` table (None: the OU model); ``parsed``: as for
    ``resolve``."""
    model = resolve(sim, parsed)
    return None if model is None else model.params


def describe(sim: SimConfig, parsed: MarketModel | None = None) -> str:
    """The selected model in words, for logs and reports."""
    model = resolve(sim, parsed)
    if model is None:
        return "the Ornstein-Uhlenbeck premium model (not fitted to real data)"
    return f"market model {model.name}" + (f" (fitted to {model.fitted_on})" if model.fitted_on else "")
