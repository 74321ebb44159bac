"""Session configuration: TOML -> frozen attrs classes, checked at the edge.

Every problem is reported as one line naming the key path (``$.session.duration_s``), what was
expected and what was given; ``actors.session`` prints it and exits with status 2. Actors never see
TOML: the session builds runtime objects from these classes. Reference: docs/config.md.

Rules that hold for every key, so a new key cannot forget them: a float is finite (only a ``Limit``,
the risk limits, may be ``inf``); a key that paces a loop has a floor (``at_least``), so no loop can
step by 1e-300 and keep a virtual clock from advancing. Files are read with ``actors.inputs`` limits.

The parts: ``sections`` (the tables), ``structure`` (TOML -> Config, problem by problem), ``files`` (the
files a config names: ``Inputs``), ``loading`` (``load``, ``load_with_inputs``, ``parse``, the overrides).
"""

from actors.config.files import Inputs, read_calibration, read_inputs, read_market_model, read_slippage_calibration
from actors.config.loading import Loaded, load, load_with_inputs, merge_tables, parse, unparse
from actors.config.sections import (
    ACTOR_NAMES,
    AcceptanceConfig,
    AggregatorConfig,
    BinanceFeedConfig,
    ChaosConfig,
    CollectorConfig,
    Config,
    ConfigError,
    FeedsConfig,
    FeesConfig,
    FxConfig,
    LotsConfig,
    MarketConfig,
    PortfolioConfig,
    ReplayConfig,
    RiskConfig,
    SessionConfig,
    StrategyConfig,
    SupervisionConfig,
    UpbitFeedConfig,
    is_multi_pair,
    one_pair,
)
from actors.sim.settings import SimConfig

__all__ = [
    "ACTOR_NAMES",
    "AcceptanceConfig",
    "AggregatorConfig",
    "BinanceFeedConfig",
    "ChaosConfig",
    "CollectorConfig",
    "Config",
    "ConfigError",
    "FeedsConfig",
    "FeesConfig",
    "FxConfig",
    "Inputs",
    "Loaded",
    "LotsConfig",
    "MarketConfig",
    "PortfolioConfig",
    "ReplayConfig",
    "RiskConfig",
    "SessionConfig",
    "SimConfig",
    "StrategyConfig",
    "SupervisionConfig",
    "UpbitFeedConfig",
    "is_multi_pair",
    "load",
    "load_with_inputs",
    "merge_tables",
    "one_pair",
    "parse",
    "read_calibration",
    "read_inputs",
    "read_market_model",
    "read_slippage_calibration",
    "unparse",
]
