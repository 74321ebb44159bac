"""Replay: a recording served through the embedded exchange's own Upbit and Binance servers.

``ReplayMarket`` has the shape the servers read from ``SimMarket`` (``books``, ``upbit_codes``,
``time_ms``, ``update_id``), so the feeds connect, subscribe, sync and reconnect exactly as they do
live; only the source of the books differs.

- Binance: the book starts at the recording's first REST depth snapshot, with the diffs around it
  applied by the documented procedure (``BookSync``); every later recorded diff is served as it was
  recorded (same ``U``/``u``, levels and ``E``); the REST endpoint answers from the replayed book. If
  the recording itself has a gap, REST requests wait for the recording's next snapshot.
- Upbit: each recorded order book replaces that code's book and is served in whatever format and
  depth the client subscribed to (thin books padded with zero units, as Upbit does).
- A book the session needs but the recording lacks (the Upbit side of a Binance-only recording, an
  FX book, or the Binance side of an Upbit-only one) is synthesised every ``sim.step_ms`` by the
  simulator's model (seeded), pinned to the recorded venue's mid: BTC/USDT is the recorded Binance
  mid (or the recorded Upbit mid divided by FX and premium), FX is the recorded KRW-USDT mid when
  there is one, and the kimchi premium and depth follow the model.

Before serving, the recording is pre-rolled until every recorded book is known; the replay's clock
starts there. ``ReplayHub.run_clock`` serves the rest at ``speed`` times the recorded pace once
both venues have a client (so nothing is served to nobody), and sets ``finished`` after the last event.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Awaitable, Callable, Iterator

import attrs
import trio
from loguru import logger

from actors.core.book import DiffBook
from actors.core.budget import MIB, UPDATE_BYTES, ByteBudget, levels_bytes
from actors.core.venues import binance
from actors.core.vocabulary import Venue
from actors.sim import market_file
from actors.sim.exchange import SimHub
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, UPBIT_USDT, BinanceDiff, SimBook, SimMarket, StepResult
from actors.sim.recordings import MALFORMED, Recorded, Recording, RecordingError
from actors.sim.settings import SimConfig

if TYPE_CHECKING:
    from loguru import Logger

CONNECT_POLL_S = 0.01
READ_AHEAD_BYTES = 16 * MIB  # replay.read_ahead_bytes: steps queued for one client and not yet sent
LEAD_IN_S = 0.1  # between the clients' connections and the first served event: subscriptions settle


class ReplayMarket:
    """The market as a recording saw it, with the books it lacks synthesised.

    ``direct`` (the fast path, ``actors.sim.direct``): recorded frames are handed to the feeds as
    recorded, and decoded here only where this market needs the books itself: to pre-roll, and to pin
    synthesised books to the recorded ones (``keeps_books``)."""

    def __init__(
        self,
        recording: Recording,
        sim_cfg: SimConfig,
        seed: int,
        *,
        upbit_market: str,
        fx_market: str | None,
        binance_symbol: str,
        direct: bool = False,
        diff_buffer: ByteBudget | None = None,
        model: market_file.MarketModel | None = None,
    ) -> None:
        """``diff_buffer``: what the recorded Binance diffs before a snapshot may hold (default 32 MiB);
        ``model``: the fitted model's file as parsed, for the books the recording lacks (else read from the
        file ``sim_cfg`` names)."""
        self.recording = recording
        self.direct = direct
        self.binance_symbol = binance_symbol
        self.upbit_market = upbit_market
        self.fx_market = fx_market
        self.upbit_codes = tuple(c for c in (upbit_market, fx_market) if c)
        self.recorded = self._recorded_codes()
        self.synthesised = [c for c in (*self.upbit_codes, binance_symbol) if c not in self.recorded]
        # the books are kept up to date (every recorded frame decoded) through the exchange, and directly
        # where synthesised books are pinned to them; otherwise only until the feeds have their first
        # REST snapshot (``stop_keeping_books``)
        self.needs_books = not direct or bool(self.synthesised)
        self.keeps_books = True
        self._stream = (
            r
            for r in recording.events(validate=self.needs_books)
            if r.symbol in self.recorded and (r.venue == Venue.BINANCE) == (r.symbol == binance_symbol)
        )
        self._sync = binance.BookSync(binance_symbol)
        if diff_buffer is not None:
            self._sync.budget = diff_buffer
        # recorded codes are DiffBooks (_recorded_book), synthesised ones the model's SimBooks
        self.books: dict[str, DiffBook | SimBook] = {c: DiffBook() for c in self.upbit_codes if c in self.recorded}
        if binance_symbol in self.recorded:
            self.books[binance_symbol] = self._sync.book
        self.time_ms = recording.start_epoch_ms
        self.step_s = sim_cfg.step_ms / 1000
        self.gaps_seen = 0
        self.start_s = self._preroll()
        self.last_s = self.start_s  # the recording's time (since its first event) served so far
        self._synth: SimMarket | None = None
        if self.synthesised:
            self._synthesise(sim_cfg, seed, market_file.resolve(sim_cfg, model))

    def _recorded_codes(self) -> set[str]:
        """The configured codes the recording has; RecordingError when it has neither market."""
        recording = self.recording
        has_upbit, has_binance = recording.symbols(Venue.UPBIT), recording.symbols(Venue.BINANCE)
        recorded = {c for c in self.upbit_codes if c in has_upbit}
        if self.binance_symbol in has_binance:
            recorded.add(self.binance_symbol)
        if self.upbit_market not in recorded and self.binance_symbol not in recorded:
            raise RecordingError(
                f"{' + '.join(recording.sources)}: has neither {self.upbit_market} (Upbit) nor {self.binance_symbol} "
                f"(Binance) to replay; it has Upbit {sorted(has_upbit) or 'nothing'} and Binance "
                f"{sorted(has_binance) or 'nothing'} (set feeds.upbit.market or feeds.binance.symbol to one of them)"
            )
        return recorded

    def _synthesise(self, sim_cfg: SimConfig, seed: int, model: market_file.MarketModel | None) -> None:
        """The model's books for the codes the recording lacks, anchored to the recorded prices."""
        mean_bps = sim_cfg.premium_mean_bps if model is None else model.params.premium.mean_bps
        btc, fx = self._anchor(sim_cfg.usdt_krw, mean_bps)
        if btc is None:  # a recorded book with an empty side: no price to pin the synthesised books to
            raise RecordingError(
                f"{' + '.join(self.recording.sources)}: the recorded book is one-sided where the "
                f"replay starts; no BTC price to anchor the synthesised books to"
            )
        cfg = attrs.evolve(sim_cfg, btc_usdt=btc, usdt_krw=fx or sim_cfg.usdt_krw)
        self._synth = SimMarket(cfg, seed, self.time_ms, None if model is None else model.params)
        model_code = {self.upbit_market: UPBIT_BTC, self.fx_market: UPBIT_USDT, self.binance_symbol: BINANCE_BTC}
        self._model_code = {c: model_code[c] for c in self.synthesised}
        self._synth.still = {BINANCE_BTC, UPBIT_BTC, UPBIT_USDT} - set(self._model_code.values())
        for code, model_book in self._model_code.items():
            self.books[code] = self._synth.books[model_book]

    def stop_keeping_books(self) -> None:
        """The direct path's feeds have their snapshot: stop decoding recorded frames, unless needed."""
        self.keeps_books = self.needs_books

    @property
    def start_epoch_s(self) -> float:
        """The recording's wall time where the replay starts (the end of the pre-roll)."""
        return self.recording.start_epoch_ms / 1000 + self.start_s

    # -- what the servers read -------------------------------------------------------------------

    @property
    def update_id(self) -> int:
        if self.binance_symbol in self.recorded:
            return self._sync.book.update_id or 0
        assert self._synth is not None
        return self._synth.update_id

    @property
    def binance_ready(self) -> bool:
        """Whether the Binance book is in sync (REST can answer)."""
        return self.binance_symbol not in self.recorded or self._sync.synced

    @property
    def served_s(self) -> float:
        """Seconds of recording served since the pre-roll: the replay's length once it has ended."""
        return self.last_s - self.start_s

    # -- stepping --------------------------------------------------------------------------------

    def _recorded_book(self, code: str) -> DiffBook:
        book = self.books[code]
        assert isinstance(book, DiffBook)  # every recorded code's book is a DiffBook (see __init__)
        return book

    def _ready(self) -> bool:
        return self.binance_ready and all(len(self._recorded_book(c)) for c in self.upbit_codes if c in self.recorded)

    def _preroll(self) -> float:
        """Apply recorded events until every recorded book is known; the recording's time there."""
        for r in self._stream:
            self._apply(r)
            if self._ready():
                return r.at_s
        missing = [c for c in self.recorded if c != self.binance_symbol and not len(self._recorded_book(c))]
        if not self.binance_ready:
            missing.append(
                f"{self.binance_symbol} (no REST depth snapshot that the diffs continue from; "
                "a cryptofeed WebSocket file needs its BINANCE.http file beside it)"
            )
        raise RecordingError(f"{' + '.join(self.recording.sources)}: never gives a whole book for {', '.join(missing)}")

    def _apply(self, r: Recorded) -> StepResult | None:
        """Update the recorded book; what changed (None for a snapshot or a frame that does not decode)."""
        try:
            event = r.event
        except Exception:  # a damaged frame the fast path did not check when reading: one frame's damage
            self.recording.skipped[MALFORMED] += 1
            return None
        if isinstance(event, binance.DepthDiff):
            self.time_ms = event.event_ms
            # a gap, or the diffs before the recording's first snapshot outgrowing their byte budget: the
            # recorded book waits for the recording's next snapshot either way
            if self._sync.on_diff(event) in (binance.Outcome.GAP, binance.Outcome.OVERFLOW):
                self.gaps_seen += 1
            return StepResult(self.time_ms, (), BinanceDiff(event.first_id, event.final_id, event.bids, event.asks))
        if isinstance(event, binance.DepthSnapshot):
            if not self._sync.synced:
                self._sync.on_snapshot(event)  # REFETCH (older than the buffered diffs): wait for the next one
            return None
        self.time_ms = event.timestamp_ms
        self._recorded_book(r.symbol).reset(event.bids, event.asks, 0)
        return StepResult(self.time_ms, (r.symbol,), None)

    @staticmethod
    def _mid(book: DiffBook | SimBook) -> float | None:
        bids, asks = book.top(1)
        return (bids[0][0] + asks[0][0]) / 2 if bids and asks else None

    def _anchor(self, model_fx: float, model_premium_bps: float) -> tuple[float | None, float | None]:
        """(BTC/USDT, KRW per USDT) from the recorded books; None where they say nothing."""
        fx = self._mid(self.books[self.fx_market]) if self.fx_market in self.recorded else None
        if self.binance_symbol in self.recorded:
            return (self._mid(self.books[self.binance_symbol]) if self._sync.synced else None), fx
        upbit_mid = self._mid(self.books[self.upbit_market])
        if upbit_mid is None:
            return None, fx
        return upbit_mid / ((fx or model_fx) * (1 + model_premium_bps / 1e4)), fx

    def _synth_step(self, at_s: float) -> StepResult | None:
        synth = self._synth
        assert synth is not None
        btc, fx = self._anchor(synth.usdt_krw, synth.premium_bps)
        result = synth.step(btc, fx)
        self.time_ms = self.recording.start_epoch_ms + round(at_s * 1000)
        changed = tuple(c for c, m in self._model_code.items() if m in result.upbit_changed)
        diff = result.binance_diff if self.binance_symbol in self._model_code else None
        return StepResult(self.time_ms, changed, diff) if changed or diff else None

    def schedule(self) -> Iterator[tuple[float, Recorded | None]]:
        """(seconds since the replay's start, the recorded event or None for a synthesised step) for the
        rest of the recording; ``advance`` brings the market to each one at its time."""
        next_synth = self.start_s + self.step_s
        for r in self._stream:
            while self._synth is not None and next_synth <= r.at_s:
                yield next_synth - self.start_s, None
                next_synth += self.step_s
            yield r.at_s - self.start_s, r

    def advance(self, at_s: float, recorded: Recorded | None) -> StepResult | None:
        """Apply one step of ``schedule`` (at its time: a REST answer reads the books meanwhile); what
        changed. None where nothing a server sends did, and for every recorded event while this market
        does not keep the books (the direct path)."""
        if recorded is None:
            return self._synth_step(self.start_s + at_s)
        self.last_s = recorded.at_s
        return self._apply(recorded) if self.keeps_books else None

    def steps(self) -> Iterator[tuple[float, Recorded | None, StepResult | None]]:
        """``schedule`` and ``advance`` in one (tests and tools that serve no client)."""
        for at_s, recorded in self.schedule():
            yield at_s, recorded, self.advance(at_s, recorded)


@attrs.frozen
class ReplayProgress:
    """A snapshot of a replay's progress (``ReplayPacer.statistics``)."""

    served_s: float  # seconds of recording served since the pre-roll
    ended: bool  # served to its end (and read without error)
    started_at: float | None  # the Trio time of its first served instant
    error: str | None  # why the recording could not be read to its end


class ReplayPacer:
    """The replay's clock, whichever way it is served (the exchange's servers, or ``actors.sim.direct``):
    it starts once both venues have a client (plus ``LEAD_IN_S``), serves each step at ``speed`` times
    the recorded pace, notes the recording's own gaps, and sets ``finished`` after the last event."""

    def __init__(self, market: ReplayMarket, speed: float, pace: str) -> None:
        self.market = market
        self.speed = speed
        self.pace = pace  # how the log names the pace: "as fast as possible", "10x the recorded pace"...
        self.finished = trio.Event()
        self.started_at: float | None = None  # the Trio time of the replay's first served instant
        self.on_start: Callable[[float], None] | None = None  # told started_at (the session's market clock)
        self.error: str | None = None  # why the recording could not be read to its end (corrupt gzip data)
        self._book_changed = trio.Event()
        # how the replay waits for its next step; the batched path's own wait (``actors.session.batch``) runs
        # the executor's timers on the way and moves a virtual clock without the scheduler where it can
        self.sleep_until: Callable[[float], Awaitable[None]] = trio.sleep_until

    def statistics(self) -> ReplayProgress:
        """How far the replay has got (a frozen snapshot)."""
        return ReplayProgress(
            self.market.served_s, self.finished.is_set() and self.error is None, self.started_at, self.error
        )

    async def wait_book(self) -> None:
        """Return once the recorded Binance book is in sync (REST can answer from it)."""
        while not self.market.binance_ready:
            await self._book_changed.wait()

    async def run(
        self,
        connected: Callable[[], bool],
        deliver: Callable[[Recorded | None, StepResult | None], Awaitable[None]],
    ) -> None:
        log = logger.bind(actor="replay")
        while not connected():
            await trio.sleep(CONNECT_POLL_S)
        await trio.sleep(LEAD_IN_S)
        market = self.market
        self.started_at = t0 = trio.current_time()
        if self.on_start is not None:
            self.on_start(t0)
        log.info(
            "replaying from {} (recording time), {}",
            datetime.fromtimestamp(market.start_epoch_s, timezone.utc).isoformat(timespec="milliseconds"),
            self.pace,
        )
        try:
            await self._serve(t0, deliver, log)
        except RecordingError as exc:  # damage found as the files are read (corrupt gzip data, say)
            self.error = str(exc)
            log.error("replay: {}; the replay ends here", exc)
        log.info("replay: end of the recording after {:.1f} s of it; {}", market.served_s, market.recording.describe())
        self.finished.set()

    async def _serve(
        self, t0: float, deliver: Callable[[Recorded | None, StepResult | None], Awaitable[None]], log: Logger
    ) -> None:
        market = self.market
        was_ready = True
        for at_s, recorded in market.schedule():
            await self.sleep_until(t0 + at_s / self.speed)
            await deliver(recorded, market.advance(at_s, recorded))
            ready = market.binance_ready
            if ready != was_ready:
                if ready:
                    log.info(
                        "replay: {} book in sync again at {:.1f} s (recorded snapshot)", market.binance_symbol, at_s
                    )
                    self._book_changed.set()
                    self._book_changed = trio.Event()
                else:
                    log.warning(
                        "replay: the recording has a gap in {} diffs at {:.1f} s; REST snapshots wait for "
                        "its next snapshot",
                        market.binance_symbol,
                        at_s,
                    )
                was_ready = ready


def step_bytes(step: StepResult) -> int:
    """The estimated memory a queued step holds (``actors.core.budget``): its diff's levels, or a book per code."""
    diff = step.binance_diff
    held = UPDATE_BYTES if diff is None else levels_bytes(len(diff.bids) + len(diff.asks))
    return held + len(step.upbit_changed) * UPDATE_BYTES


class ReplayHub(SimHub):
    """The simulator's hub, fed by a ReplayMarket instead of the model's clock.

    Its read-ahead is bounded in bytes: the steps queued for a client and not yet sent to it hold at most
    ``read_ahead_bytes`` (estimated; a step larger than that alone still goes), so a recording of huge
    diffs read faster than a client takes them does not pile up in memory."""

    market: ReplayMarket

    def __init__(
        self,
        market: ReplayMarket,
        cfg: SimConfig,
        seed: int,
        pacer: ReplayPacer,
        read_ahead_bytes: int = READ_AHEAD_BYTES,
    ) -> None:
        super().__init__(cfg, seed, market=market)
        self.pacer = pacer
        self.read_ahead_bytes = read_ahead_bytes
        self._held: dict[int, int] = {}  # per client queue: the bytes of the steps in it
        self._room = trio.Event()  # set when a queue hands a step out

    def _dequeued(self, key: int, step: StepResult) -> None:
        self._held[key] = max(0, self._held.get(key, 0) - step_bytes(step))
        self._room.set()

    def close_queue(self, key: int) -> None:
        super().close_queue(key)
        self._held.pop(key, None)
        self._room.set()

    async def _deliver(self, recorded: Recorded | None, result: StepResult | None) -> None:
        """Like ``publish``, but a client whose queue is full (in steps, or in bytes) is waited for, not
        dropped: a replay above the clients' pace runs as fast as they read (the recording is not a live
        exchange)."""
        if result is None:
            return
        size = step_bytes(result)
        for key, send in list(self._queues.items()):
            while key in self._queues and 0 < self._held.get(key, 0) and self._held[key] + size > self.read_ahead_bytes:
                self._room = trio.Event()
                await self._room.wait()
            self._held[key] = self._held.get(key, 0) + size
            try:
                await send.send(result)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close_queue(key)

    async def wait_book(self) -> None:
        await self.pacer.wait_book()

    async def run_clock(self) -> None:
        await self.pacer.run(lambda: all(self.targets.values()), self._deliver)
