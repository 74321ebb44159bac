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

from typing import Iterator

import attrs
import trio
from loguru import logger

from actors.core.book import DiffBook
from actors.core.venues import binance, upbit
from actors.sim.exchange import SimHub
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, UPBIT_USDT, BinanceDiff, SimBook, SimMarket, StepResult
from actors.sim.recordings import Recorded, Recording, RecordingError
from actors.sim.settings import SimConfig

CONNECT_POLL_S = 0.01
LEAD_IN_S = 0.1  # between the clients' connections and the first served event: subscriptions settle


class ReplayMarket:
    """The market as a recording saw it, with the books it lacks synthesised."""

    def __init__(
        self,
        recording: Recording,
        sim_cfg: SimConfig,
        seed: int,
        *,
        upbit_market: str,
        fx_market: str | None,
        binance_symbol: str,
    ) -> None:
        self.recording = recording
        self.binance_symbol = binance_symbol
        self.upbit_market = upbit_market
        self.fx_market = fx_market
        self.upbit_codes = tuple(c for c in (upbit_market, fx_market) if c)
        has_upbit, has_binance = recording.symbols("upbit"), recording.symbols("binance")
        self.recorded = {c for c in self.upbit_codes if c in has_upbit}
        if binance_symbol in has_binance:
            self.recorded.add(binance_symbol)
        if upbit_market not in self.recorded and binance_symbol not in self.recorded:
            raise RecordingError(
                f"{' + '.join(recording.sources)}: has neither {upbit_market} (Upbit) nor {binance_symbol} (Binance) "
                f"to replay; it has Upbit {sorted(has_upbit) or 'nothing'} and Binance "
                f"{sorted(has_binance) or 'nothing'} (set feeds.upbit.market or feeds.binance.symbol to one of them)"
            )
        self.synthesised = [c for c in (*self.upbit_codes, binance_symbol) if c not in self.recorded]
        self._events = [
            r
            for r in recording.events
            if r.symbol in self.recorded and (r.venue == "binance") == (r.symbol == binance_symbol)
        ]
        self._sync = binance.BookSync(binance_symbol)
        # recorded codes are DiffBooks (_recorded_book), synthesised ones the model's SimBooks
        self.books: dict[str, DiffBook | SimBook] = {c: DiffBook() for c in self.upbit_codes if c in self.recorded}
        if binance_symbol in self.recorded:
            self.books[binance_symbol] = self._sync.book
        self.time_ms = recording.start_epoch_ms
        self.step_s = sim_cfg.step_ms / 1000
        self.gaps_seen = 0
        self._next = self._preroll()
        self.start_s = self._events[self._next - 1].at_s if self._next else 0.0
        self._synth: SimMarket | None = None
        if self.synthesised:
            btc, fx = self._anchor(sim_cfg.usdt_krw, sim_cfg.premium_mean_bps)
            if btc is None:  # a recorded book with an empty side: no price to pin the synthesised books to
                raise RecordingError(
                    f"{' + '.join(recording.sources)}: the recorded book is one-sided where the "
                    f"replay starts; no BTC price to anchor the synthesised books to"
                )
            cfg = attrs.evolve(sim_cfg, btc_usdt=btc, usdt_krw=fx or sim_cfg.usdt_krw)
            self._synth = SimMarket(cfg, seed, self.time_ms)
            model_code = {upbit_market: UPBIT_BTC, fx_market: UPBIT_USDT, binance_symbol: BINANCE_BTC}
            self._model_code = {c: model_code[c] for c in self.synthesised}
            self._synth.still = {BINANCE_BTC, UPBIT_BTC, UPBIT_USDT} - set(self._model_code.values())
            for code, model in self._model_code.items():
                self.books[code] = self._synth.books[model]

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
    def duration_s(self) -> float:
        """Seconds of recording left to serve after the pre-roll."""
        return self._events[-1].at_s - self.start_s if self._events else 0.0

    # -- stepping --------------------------------------------------------------------------------

    def _recorded_book(self, code: str) -> DiffBook:
        book = self.books[code]
        assert isinstance(book, DiffBook)  # every recorded code's book is a DiffBook (see __init__)
        return book

    def _ready(self) -> bool:
        return self.binance_ready and all(len(self._recorded_book(c)) for c in self.upbit_codes if c in self.recorded)

    def _preroll(self) -> int:
        for i, r in enumerate(self._events):
            self._apply(r)
            if self._ready():
                return i + 1
        missing = [c for c in self.recorded if c != self.binance_symbol and not len(self._recorded_book(c))]
        if not self.binance_ready:
            missing.append(
                f"{self.binance_symbol} (no REST depth snapshot that the diffs continue from; "
                "a cryptofeed WebSocket file needs its BINANCE.http file beside it)"
            )
        raise RecordingError(f"{' + '.join(self.recording.sources)}: never gives a whole book for {', '.join(missing)}")

    def _apply(self, r: Recorded) -> StepResult | None:
        event = r.event
        if isinstance(event, binance.DepthDiff):
            self.time_ms = event.event_ms
            if self._sync.on_diff(event) is binance.Outcome.GAP:
                self.gaps_seen += 1
            return StepResult(self.time_ms, (), BinanceDiff(event.first_id, event.final_id, event.bids, event.asks))
        if isinstance(event, binance.DepthSnapshot):
            if not self._sync.synced:
                self._sync.on_snapshot(event)  # REFETCH (older than the buffered diffs): wait for the next one
            return None
        assert isinstance(event, upbit.Orderbook)
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

    def steps(self) -> Iterator[tuple[float, StepResult | None]]:
        """(seconds since the replay's start, what changed) for the rest of the recording."""
        next_synth = self.start_s + self.step_s
        for r in self._events[self._next :]:
            while self._synth is not None and next_synth <= r.at_s:
                yield next_synth - self.start_s, self._synth_step(next_synth)
                next_synth += self.step_s
            yield r.at_s - self.start_s, self._apply(r)


class ReplayHub(SimHub):
    """The simulator's hub, fed by a ReplayMarket instead of the model's clock."""

    market: ReplayMarket

    def __init__(self, market: ReplayMarket, cfg: SimConfig, seed: int, speed: float = 1.0) -> None:
        super().__init__(cfg, seed, market=market)
        self.speed = speed
        self.finished = trio.Event()  # set after the last recorded event was served
        self._book_changed = trio.Event()

    async def _deliver(self, result: StepResult) -> None:
        """Like ``publish``, but a client whose queue is full is waited for, not dropped: a replay
        above the clients' pace runs as fast as they read (the recording is not a live exchange)."""
        for key, send in list(self._queues.items()):
            try:
                await send.send(result)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close_queue(key)

    async def wait_book(self) -> None:
        while not self.market.binance_ready:
            await self._book_changed.wait()

    async def run_clock(self) -> None:
        log = logger.bind(actor="replay")
        while not all(self.targets.values()):  # the clock starts once both venues have a client
            await trio.sleep(CONNECT_POLL_S)
        await trio.sleep(LEAD_IN_S)
        market = self.market
        log.info(
            "replaying {:.1f} s of recording at {}",
            market.duration_s,
            "the recorded pace" if self.speed == 1 else f"{self.speed:g}x",
        )
        t0 = trio.current_time()
        was_ready = True
        for at_s, result in market.steps():
            await trio.sleep_until(t0 + at_s / self.speed)
            if result is not None:
                await self._deliver(result)
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
        log.info("replay: end of the recording")
        self.finished.set()
