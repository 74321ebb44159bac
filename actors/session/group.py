"""Several sessions over one pass of one market: a sweep's grid points that differ only in their traders.

A sweep runs the same market once per grid point: a recording replayed, or the simulated market of one seed.
When the grid's keys only change what a trader does with the market (``TRADER_SECTIONS``: thresholds, sizes,
latency, fill model, fees, risk), every one of those sessions reads the same frames, synthesises the same venue
from the same seed and keeps the same market's books: the market's part of the pass (reading the recording or
stepping the model, the synthesised venue: about half of a batched replay, docs/performance.md) is the same for
all of them. ``run_replay_group`` runs them in one Trio run over one ``ReplayMarket``, one ``ReplayPacer`` and one
``DirectReplay``; ``run_sim_group`` over one ``SimHub``:

- each session is a whole session of its own (``run_session``'s frame, its own aggregator window, market view,
  trader, collector, files and final KPI), a ``BatchedReplay`` or ``BatchedSim`` as it would be alone;
- the feeds' part of the pass is the same too (decoding, the books' keepers, what they publish, their counters),
  so the first session (the leader) does it for all: each book it publishes is offered to every session's own
  aggregator window (``_FanOut``); the others (followers, ``BatchedPass.follower``) connect no feeds, and their
  KPI's feed counters are the leader's objects;
- the market's clock task is the group's: each step of the market is handed to the leader, and on its way from
  step to step it makes every session's executor decisions in time order (``_until``, as
  ``BatchedPass._until`` does for one).

Sessions must end together (their durations are one, and the market's end is theirs): one that ended at another
time (a disk error of its own) would have seen the feeds stop under it, so the group then fails
(``SharedPassBroken``) and the sweep runs each session alone.

So each session's fill events, premium series and KPI are byte-identical to its run alone (but for the
wall-clock fields): tests/actors/test_shared_pass.py. Each session's log lines carry its key (loguru's
``contextualize``, ``run=``), which the sweep's log files filter on; the market's own lines carry none and go
to every session's log.
"""

from __future__ import annotations

import gc
from typing import Awaitable, Callable, Sequence

import attrs
import trio
from loguru import logger

from actors import wiring
from actors.clock import show_in_log
from actors.config import Config, read_inputs
from actors.core.book import BookView
from actors.records.paths import SessionPaths
from actors.session.batch import BatchedReplay
from actors.session.batch_pass import BatchedPass
from actors.session.batch_path import Coalescer, why_actors
from actors.session.batch_sim import BatchedSim
from actors.session.fast_forward import FastForward
from actors.session.run import SessionResult, _open, run_frame
from actors.session.tree import Frame
from actors.sim.direct import ENDPOINTS, DirectReplay
from actors.sim.exchange import SimEndpoints, SimHub
from actors.sim.model import SimMarket, StepResult
from actors.sim.recordings import Recorded
from actors.sim.replay import ReplayMarket
from actors.sim.serve import simulated_hub

# the config's sections only a session's trader reads (wiring.trader, the KPI's acceptance): sessions whose
# configs differ in these alone see the same market, step for step
TRADER_SECTIONS = ("strategy", "fees", "lots", "portfolio", "risk", "acceptance")


def market_part(cfg: Config) -> dict[str, object]:
    """The config as the market's part of a session reads it, by section: the trader's sections and where the
    files go left out (two configs with the same market part can share one pass)."""
    part: dict[str, object] = {f.name: getattr(cfg, f.name) for f in attrs.fields(Config)}
    for name in TRADER_SECTIONS:
        del part[name]
    part["session"] = {k: v for k, v in attrs.asdict(cfg.session).items() if k != "logs_dir"}
    return part


def why_not_grouped(cfgs: Sequence[Config], replay: ReplayMarket | None = None) -> str | None:
    """Why these sessions cannot share one pass of their market (None: they can); ``replay``: the recording they
    replay, None on the simulated market."""
    if len(cfgs) < 2:
        return "a group needs two sessions or more"
    first = market_part(cfgs[0])
    for cfg in cfgs[1:]:
        part = market_part(cfg)
        differ = [name for name, section in part.items() if section != first[name]]
        if differ:
            return f"their configs differ outside the trader's sections: [{'], ['.join(differ)}]"
    return why_actors(cfgs[0], replay, virtual_clock=True)


class SharedPassBroken(RuntimeError):
    """The sessions over one pass did not end together: their results are not those of each alone."""


class _FanOut(Coalescer):
    """The leader's aggregator window, which also offers each book to every follower's own (and wakes its
    executor's task when that opens a window, as a step delivered to it alone would)."""

    def __init__(self, leader: BatchedPass, followers: Sequence[BatchedPass]) -> None:
        own = leader._aggregator
        super().__init__(own.state, own.coalesce_s)
        self.followers = followers

    def offer(self, book: BookView, now: float) -> bool:
        for follower in self.followers:
            if follower._aggregator.offer(book, now):
                follower._window.set()
        return super().offer(book, now)


class PassGroup:
    """What the clock task of a market shared by several batched sessions does for all of them (``_deliver``,
    ``_until``); a subclass runs the clock (``run_clock``). The first member leads: its feeds are everyone's."""

    def __init__(self, members: Sequence[tuple[str, BatchedPass]]) -> None:
        self.members = list(members)
        self.leader = leader = self.members[0][1]
        self.followers = [member for _, member in self.members[1:]]
        for follower in self.followers:
            follower.follower = True
            follower._ready = leader._ready  # both feeds ready: the leader's
        leader._aggregator = _FanOut(leader, self.followers)
        self.ff: FastForward | None = None

    def _start(self) -> FastForward:
        self.ff = ff = FastForward()
        for _, member in self.members:
            member._ff = ff
        return ff

    def _hand_back(self, clock: str) -> None:
        for _, member in self.members:
            member._hand_back()
        ff = self.ff
        if ff is not None:
            logger.debug(
                "{}: {} waits jumped the virtual clock, {} went through the scheduler", clock, ff.jumps, ff.sleeps
            )

    async def _deliver(self, recorded: Recorded | None, result: StepResult | None) -> None:
        leader = self.leader
        await leader._deliver(recorded, result)  # its feeds' log lines are every session's (no run key)
        if leader.error is not None:  # each would have met it alone, at this step
            for follower in self.followers:
                if follower.error is None:
                    follower.error = leader.error
                    follower._hand_back()
                    follower.frame.stop.set()

    async def _until(self, t: float) -> None:
        """As ``BatchedPass._until``, for every member not handed back: their decisions due by ``t``, in time order
        (a member's decisions in its own order), the clock moved by the members' shared ``FastForward``."""
        driving = [(key, member) for key, member in self.members if not member._handed_back.is_set()]
        ff = self.ff
        if not driving or ff is None:
            await trio.sleep_until(t)
            return
        for _, member in driving:
            if not member._driving:
                member._driving = True
                member._window.set()  # its executor's task lets go of its deadline
        while True:  # the earliest decision time by t, then every member due then, in the members' order
            nexts = [member._next_decision() for _, member in driving]
            at = min((a for a in nexts if a is not None), default=None)
            if at is None or at > t:
                break
            await ff.until(at)
            for (key, member), next_at in zip(driving, nexts):
                # a member stopped meanwhile decides in its own task from then on
                if next_at == at and not member._handed_back.is_set():
                    with logger.contextualize(run=key):
                        await member._decide(at)
            driving = [(key, member) for key, member in driving if not member._handed_back.is_set()]
        await ff.until(t)


class ReplayGroup(PassGroup):
    """The clock task of one replay that several batched sessions share."""

    def __init__(self, direct: DirectReplay, members: Sequence[tuple[str, BatchedReplay]]) -> None:
        super().__init__(members)
        self.direct = direct

    async def run_clock(self) -> None:
        self._start()
        pacer = self.direct.pacer
        pacer.sleep_until = self._until
        try:
            await pacer.run(lambda: all(member._connected for _, member in self.members), self._deliver)
        finally:
            self._hand_back("replay clock")


class SimGroup(PassGroup):
    """The clock task of one simulated market that several batched sessions share (as ``BatchedSim.run_clock``)."""

    def __init__(self, hub: SimHub, members: Sequence[tuple[str, BatchedSim]]) -> None:
        super().__init__(members)
        self.hub, self.sims = hub, [member for _, member in members]

    async def run_clock(self) -> None:
        self._start()
        market = self.hub.market
        assert isinstance(market, SimMarket)
        step_s = self.hub.cfg.step_ms / 1000
        next_at = trio.current_time()
        for member in self.sims:  # at this same instant: until then the executors' tasks decide
            await member._feeds_connected.wait()
        try:
            while any(member._stopped_at is None and member.error is None for member in self.sims):
                next_at += step_s
                await self._until(next_at)
                if all(member._stopped_at is not None for member in self.sims):
                    break
                await self._deliver(None, market.step())
        finally:
            self._hand_back("market clock")


async def run_replay_group(
    sessions: Sequence[tuple[str, Config, SessionPaths]], replay: ReplayMarket
) -> list[SessionResult]:
    """Run ``sessions`` (each: its log key, its config, its files) over one pass of ``replay``; their results in
    the same order. The caller checked ``why_not_grouped``."""
    log = logger.bind(actor="session")
    gc.collect()
    pacer = wiring.replay_pacer(sessions[0][1], replay)
    direct = DirectReplay(replay, pacer)
    frames = [_open(cfg, paths, read_inputs(cfg), replay, trio.Event(), log, pacer=pacer) for _, cfg, paths in sessions]
    members = [(key, BatchedReplay(frame, direct)) for (key, _, _), frame in zip(sessions, frames)]
    _share_feeds(frames)
    for frame in frames:
        frame.clock.hold(replay.start_epoch_s)
    show_in_log(frames[0].clock)

    def started(t0: float) -> None:
        for frame in frames:
            frame.clock.follow(t0, replay.start_epoch_s, pacer.speed)

    pacer.on_start = started
    return await _run_members(frames, members, ReplayGroup(direct, members).run_clock, ENDPOINTS)


async def run_sim_group(sessions: Sequence[tuple[str, Config, SessionPaths]]) -> list[SessionResult]:
    """Run ``sessions`` (each: its log key, its config, its files) on one simulated market (their seed's); their
    results in the same order. The caller checked ``why_not_grouped``."""
    log = logger.bind(actor="session")
    gc.collect()
    frames = [_open(cfg, paths, read_inputs(cfg), None, trio.Event(), log) for _, cfg, paths in sessions]
    first = sessions[0][1]
    hub = simulated_hub(first.sim, first.session.seed, first.feeds.binance.symbol, frames[0].inputs.market_model)
    members = [(key, BatchedSim(frame, hub)) for (key, _, _), frame in zip(sessions, frames)]
    _share_feeds(frames)
    return await _run_members(frames, members, SimGroup(hub, members).run_clock, None)


def _share_feeds(frames: Sequence[Frame]) -> None:
    """What the followers' KPIs say of the feeds: the leader's counters (the first frame's). Made after the members,
    whose shells keep counters of their own, which a follower's keep-alive and stop count into unread."""
    leader = frames[0].sources.feeds
    for frame in frames[1:]:
        feeds = frame.sources.feeds
        assert isinstance(feeds, dict)
        feeds.update(leader)


async def _run_members(
    frames: Sequence[Frame],
    members: Sequence[tuple[str, BatchedPass]],
    run_clock: Callable[[], Awaitable[None]],
    endpoints: SimEndpoints | None,
) -> list[SessionResult]:
    """Each member's session (``run_frame``) in a task carrying its key, beside the group's clock task."""
    results: list[SessionResult | None] = [None] * len(members)

    async def one(index: int) -> None:
        member = members[index][1]

        async def serve(frame: Frame, nursery: trio.Nursery) -> tuple[SimEndpoints | None, BatchedPass]:
            await trio.lowlevel.checkpoint()
            return endpoints, member

        frames[index].log.info(
            "market pass: one for {} sessions that differ only in their traders' sections ({})",
            len(members),
            ", ".join(TRADER_SECTIONS),
        )
        results[index] = await run_frame(frame=frames[index], serve=serve)

    async with trio.open_nursery() as outer:
        outer.start_soon(run_clock)
        async with trio.open_nursery() as runs:
            for index, (key, _) in enumerate(members):
                with logger.contextualize(run=key):  # the session's tasks carry its key (Trio copies the context)
                    runs.start_soon(one, index)
        outer.cancel_scope.cancel()
    ended = {frame.sources.lifecycle.statistics().ended_at for frame in frames}
    if len(ended) > 1:
        raise SharedPassBroken(f"the sessions over one pass ended at different times ({sorted(map(str, ended))})")
    return [result for result in results if result is not None]
