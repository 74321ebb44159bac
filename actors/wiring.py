"""From a checked config (and the files it names, parsed once: ``actors.config.Inputs``) to the session's
runtime objects: what the session is (``SessionInfo``), the owners of its state (``Sources``: the trader, the
market state, the feeds' and actors' statistics...), the replay's market and clock, the feeds' endpoints.
No I/O beyond reading the recordings the config names; ``actors.session`` runs what is built here."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import attrs

from actors import wiring_market
from actors.config import BinanceFeedConfig, Config, Inputs, UpbitFeedConfig
from actors.conventions import ACTORS, SeedStream, feed_actor
from actors.core.budget import ByteBudget
from actors.core.execution import ExecutionParams
from actors.core.fills import CalibratedFillModel, FillModel, SimpleFillModel
from actors.core.kpi import FeedStats, LatencyHistogram
from actors.core.market import Markets, MarketState
from actors.core.market_trader import Decider
from actors.core.portfolio import Portfolio
from actors.core.sizing import NoDrift
from actors.core.trader import Trader
from actors.core.vocabulary import Venue
from actors.records.files import DiskWatch
from actors.records.info import CalibrationInfo, ReplayDescription, SessionInfo, SlippageInfo
from actors.records.paths import SessionPaths
from actors.records.realism import session_realism
from actors.records.sources import CollectorStats, Lifecycle, Sources
from actors.sim import recordings
from actors.sim.exchange import SimEndpoints
from actors.sim.replay import ReplayMarket, ReplayPacer
from actors.wiring_market import MarketSetup
from supervision import ChildStats


def session_info(
    cfg: Config, paths: SessionPaths, inputs: Inputs, opened_at: float, replay: ReplayMarket | None = None
) -> SessionInfo:
    """What the session is, as it opens (now, on the wall clock)."""
    slippage = inputs.slippage
    return SessionInfo(
        cfg,
        paths,
        opened_at,
        datetime.now(timezone.utc),
        calibration_info(cfg, inputs),
        None if slippage is None else SlippageInfo(slippage.version, cfg.strategy.slippage_calibration),
        None if replay is None else replay_description(cfg, replay),
    )


def sources(
    info: SessionInfo, inputs: Inputs, pacer: ReplayPacer | None = None, market: MarketSetup | None = None
) -> Sources:
    """The owners of everything the session counts, each empty (the session frame holds them). ``market``: a
    market session's pairs and shards (``actors.wiring_market``); None: the one pair of [feeds]."""
    cfg = info.config
    model = None if inputs.market_model is None else inputs.market_model.document
    one = trader(cfg, info.session_id, info.opened_at, inputs)
    decider: Decider = one
    state: MarketState | Markets = market_state(cfg, info.opened_at)
    feeds = {str(venue): FeedStats(venue) for venue in (Venue.UPBIT, Venue.BINANCE)}
    if market is not None:
        decider = wiring_market.market_trader(cfg, info.session_id, info.opened_at, inputs, market.universe, one)
        state = wiring_market.markets(cfg, market.universe, info.opened_at)
        feeds = wiring_market.feed_stats(market.plan)
    names = (*ACTORS, *(feed_actor(key) for key in feeds if feed_actor(key) not in ACTORS))
    return Sources(
        lifecycle=Lifecycle(),
        disk=DiskWatch(),
        trader=decider,
        market=state,
        feeds=feeds,
        actors={name: ChildStats(name) for name in names},
        collector=CollectorStats(session_realism(cfg.session.market, cfg.sim.market_model, model)),
        wire_to_decision=LatencyHistogram(),
        replay=pacer,
    )


def market_state(cfg: Config, opened_at: float) -> MarketState:
    fx_key = (Venue.UPBIT, cfg.feeds.upbit.fx_market) if cfg.fx.source == Venue.UPBIT else None
    return MarketState(
        (Venue.UPBIT, cfg.feeds.upbit.market),
        (Venue.BINANCE, cfg.feeds.binance.symbol),
        fx_key,
        cfg.fx.fixed_krw_per_usdt,
        started_at=opened_at,
    )


def trader(cfg: Config, session_id: str, opened_at: float, inputs: Inputs) -> Trader:
    strategy, seed = cfg.strategy, cfg.session.seed
    return Trader(
        strategy.params(),
        session_id,
        opened_at,
        _portfolio(cfg),
        _fill_model(cfg, inputs, seed),
        ExecutionParams(strategy.latency_ms, strategy.latency_jitter_ms, strategy.leg_risk, cfg.fees, cfg.lots),
        cfg.risk,
        seed=seed + SeedStream.MARKET,  # the orders' latency jitter
        l2_source=strategy.l2_source,
        mock_seed=seed + SeedStream.MOCK_BOOK,
        drift=inputs.slippage if inputs.slippage is not None else NoDrift(),
        skim=True,  # the same decisions, the books walked only where an entry can come of the view
    )


def calibration_info(cfg: Config, inputs: Inputs) -> CalibrationInfo | None:
    """Which calibration the calibrated fill model uses (None with the simple model)."""
    calibration = inputs.calibration
    if cfg.strategy.fill_model != "calibrated" or calibration is None:
        return None
    return CalibrationInfo(
        calibration.version,
        cfg.strategy.calibration,
        cfg.strategy.calibration_mode,
        tuple(zone.label for zone in sorted(z.zone for z in calibration.zones)),
    )


def replay_description(cfg: Config, replay: ReplayMarket) -> ReplayDescription:
    """What a replay serves, for the KPI file (how far it got is the pacer's: ``ReplayPacer.statistics``)."""
    return ReplayDescription(
        files=tuple(cfg.replay.files),
        sources=tuple(replay.recording.sources),
        speed="as fast as possible" if cfg.replay.as_fast_as_possible else cfg.replay.speed,
        via="direct" if replay.direct else "exchange",
        recorded=tuple(sorted(replay.recorded)),
        synthesised=tuple(replay.synthesised),
        start_epoch_ms=replay.recording.start_epoch_ms,
        start_epoch_s=replay.start_epoch_s,
        pace=replay_speed(cfg),
    )


def replay_speed(cfg: Config) -> float:
    """Recorded seconds per session second (on the virtual clock when as fast as possible)."""
    return 1.0 if cfg.replay.as_fast_as_possible else cfg.replay.speed


def replay_pace(cfg: Config) -> str:
    """How the log names a replay's pace."""
    if cfg.replay.as_fast_as_possible:
        return "as fast as possible (virtual clock)"
    return "at the recorded pace" if cfg.replay.speed == 1 else f"at {cfg.replay.speed:g}x the recorded pace"


def replay_pacer(cfg: Config, replay: ReplayMarket) -> ReplayPacer:
    return ReplayPacer(replay, replay_speed(cfg), replay_pace(cfg))


def feed_configs(cfg: Config, endpoints: SimEndpoints | None) -> tuple[UpbitFeedConfig, BinanceFeedConfig]:
    """The feeds' configs, pointed at the embedded exchange's endpoints when there is one."""
    upbit_cfg, binance_cfg = cfg.feeds.upbit, cfg.feeds.binance
    if endpoints is not None:
        upbit_cfg = attrs.evolve(upbit_cfg, url=endpoints.upbit_url)
        binance_cfg = attrs.evolve(binance_cfg, ws_url=endpoints.binance_ws_url, rest_url=endpoints.binance_rest_url)
    return upbit_cfg, binance_cfg


def _portfolio(cfg: Config) -> Portfolio:
    p = cfg.portfolio
    return Portfolio.of(Venue.UPBIT, p.upbit_krw, p.upbit_btc, Venue.BINANCE, p.binance_usdt, p.binance_btc)


def _fill_model(cfg: Config, inputs: Inputs, seed: int) -> FillModel:
    strategy = cfg.strategy
    if strategy.fill_model == "simple":
        return SimpleFillModel()
    assert inputs.calibration is not None, "fill_model = 'calibrated' without a calibration (config.read_inputs)"
    return CalibratedFillModel(
        inputs.calibration,
        strategy.calibration_mode == "stochastic",
        random.Random(seed + SeedStream.FILL_MODEL),
    )


def prepare_replay(cfg: Config, inputs: Inputs | None = None) -> ReplayMarket:
    """Open the recordings named by $.replay.files and pre-roll them; RecordingError says what is wrong.
    ``inputs``: the files the config names, parsed (the market model for the books the recording lacks)."""
    recording = recordings.Recording.open(cfg.replay.files)
    return ReplayMarket(
        recording,
        cfg.sim,
        cfg.session.seed,
        upbit_market=cfg.feeds.upbit.market,
        fx_market=cfg.feeds.upbit.fx_market if cfg.fx.source == Venue.UPBIT else None,
        binance_symbol=cfg.feeds.binance.symbol,
        direct=cfg.replay.direct(cfg.sim),
        diff_buffer=ByteBudget(cfg.feeds.binance.diff_buffer_bytes, "feeds.binance.diff_buffer_bytes"),
        model=None if inputs is None else inputs.market_model,
    )
