"""From a checked config to the session's runtime objects: the trader, the market state, the session
context, the feeds' endpoints. No I/O beyond reading the calibration and the recordings the config
names; ``actors.session`` runs what is built here."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

import attrs

from actors import config as config_mod
from actors.config import Config
from actors.conventions import ACTORS, SeedStream
from actors.core.budget import ByteBudget
from actors.core.execution import ExecutionParams
from actors.core.fills import CalibratedFillModel, SimpleFillModel
from actors.core.kpi import FeedStats
from actors.core.market import MarketState
from actors.core.portfolio import Portfolio
from actors.core.sizing import NoDrift
from actors.core.slippage import SlippageModel
from actors.core.trader import Trader
from actors.records.kpi import CalibrationInfo, SessionContext
from actors.records.realism import session_realism
from actors.sim import recordings
from actors.sim.replay import ReplayMarket
from supervision import ChildStats


def market_state(cfg: Config, opened_at: float) -> MarketState:
    fx_key = ("upbit", cfg.feeds.upbit.fx_market) if cfg.fx.source == "upbit" else None
    return MarketState(
        ("upbit", cfg.feeds.upbit.market),
        ("binance", cfg.feeds.binance.symbol),
        fx_key,
        cfg.fx.fixed_krw_per_usdt,
        started_at=opened_at,
    )


def trader(cfg: Config, session_id: str, opened_at: float) -> Trader:
    strategy, seed = cfg.strategy, cfg.session.seed
    return Trader(
        strategy.params(),
        session_id,
        opened_at,
        _portfolio(cfg),
        _fill_model(cfg, seed),
        ExecutionParams(strategy.latency_ms, strategy.latency_jitter_ms, strategy.leg_risk, cfg.fees, cfg.lots),
        cfg.risk,
        seed=seed + SeedStream.MARKET,  # the orders' latency jitter
        l2_source=strategy.l2_source,
        mock_seed=seed + SeedStream.MOCK_BOOK,
        drift=config_mod.read_slippage_calibration(strategy.slippage_calibration)
        if strategy.slippage_calibration
        else NoDrift(),
    )


def context(cfg: Config, session_id: str, opened_at: float) -> SessionContext:
    """The session's context: its trader, market state, feed and actor statistics."""
    ctx = SessionContext(
        session_id,
        cfg.session.market,
        cfg.session.duration_s,
        trader(cfg, session_id, opened_at),
        market_state(cfg, opened_at),
        {"upbit": FeedStats("upbit"), "binance": FeedStats("binance")},
        {name: ChildStats(name) for name in ACTORS},
        opened_at,
    )
    ctx.chaos_every_s = cfg.chaos.kill_every_s
    ctx.thresholds = cfg.acceptance
    started = datetime.now(timezone.utc)
    ctx.started_utc = started.isoformat(timespec="milliseconds")
    if cfg.session.market == "sim":  # the simulated market's time runs with the (maybe virtual) Trio clock
        ctx.clock.simulate(opened_at, started.timestamp())
    ctx.calibration = calibration_info(cfg, ctx.trader)
    ctx.realism = session_realism(cfg.session.market, cfg.sim.market_model)
    drift = ctx.trader.drift
    if isinstance(drift, SlippageModel):
        ctx.slippage_calibration, ctx.slippage_calibration_path = drift.version, cfg.strategy.slippage_calibration
    return ctx


def calibration_info(cfg: Config, trader: Trader) -> CalibrationInfo | None:
    """Which calibration the calibrated fill model uses (None with the simple model)."""
    model = trader.fill_model
    if not isinstance(model, CalibratedFillModel):
        return None
    calibration = model.calibration
    return CalibrationInfo(
        calibration.version,
        cfg.strategy.calibration,
        cfg.strategy.calibration_mode,
        tuple(zone.label for zone in sorted(z.zone for z in calibration.zones)),
    )


def replay_info(cfg: Config, replay: ReplayMarket) -> dict[str, Any]:
    """What a replay served, for the KPI file (``recording_s`` and ``ended`` grow as it is served)."""
    return {
        "files": list(cfg.replay.files),
        "sources": replay.recording.sources,
        "speed": "as fast as possible" if cfg.replay.as_fast_as_possible else cfg.replay.speed,
        "via": "direct" if replay.direct else "exchange",
        "recording_s": round(replay.served_s, 3),
        "recording_ended": False,
        "recorded": sorted(replay.recorded),
        "synthesised": replay.synthesised,
        "start_epoch_ms": replay.recording.start_epoch_ms,
    }


def replay_pace(cfg: Config) -> str:
    """How the log names a replay's pace."""
    if cfg.replay.as_fast_as_possible:
        return "as fast as possible (virtual clock)"
    return "at the recorded pace" if cfg.replay.speed == 1 else f"at {cfg.replay.speed:g}x the recorded pace"


def feed_configs(cfg: Config, endpoints) -> tuple[Any, Any]:
    upbit_cfg, binance_cfg = cfg.feeds.upbit, cfg.feeds.binance
    if endpoints is not None:
        upbit_cfg = attrs.evolve(upbit_cfg, url=endpoints.upbit_url)
        binance_cfg = attrs.evolve(binance_cfg, ws_url=endpoints.binance_ws_url, rest_url=endpoints.binance_rest_url)
    return upbit_cfg, binance_cfg


def _portfolio(cfg: Config) -> Portfolio:
    p = cfg.portfolio
    return Portfolio.of("upbit", p.upbit_krw, p.upbit_btc, "binance", p.binance_usdt, p.binance_btc)


def _fill_model(cfg: Config, seed: int):
    strategy = cfg.strategy
    if strategy.fill_model == "simple":
        return SimpleFillModel()
    return CalibratedFillModel(
        config_mod.read_calibration(strategy.calibration),
        strategy.calibration_mode == "stochastic",
        random.Random(seed + SeedStream.FILL_MODEL),
    )


def prepare_replay(cfg: Config) -> ReplayMarket:
    """Open the recordings named by $.replay.files and pre-roll them; RecordingError says what is wrong."""
    recording = recordings.Recording.open(cfg.replay.files)
    return ReplayMarket(
        recording,
        cfg.sim,
        cfg.session.seed,
        upbit_market=cfg.feeds.upbit.market,
        fx_market=cfg.feeds.upbit.fx_market if cfg.fx.source == "upbit" else None,
        binance_symbol=cfg.feeds.binance.symbol,
        direct=cfg.replay.direct(cfg.sim),
        diff_buffer=ByteBudget(cfg.feeds.binance.diff_buffer_bytes, "feeds.binance.diff_buffer_bytes"),
    )
