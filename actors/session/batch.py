"""The batched replay: a direct replay on the virtual clock as one pass of the pure core per instant.

When the clock is virtual and the frames are in memory (``--as-fast-as-possible`` served directly,
``actors.sim.direct``), the feeds, the aggregator and the executor run as one pass of the pure core per step of
the replay (``actors.session.batch_pass``: the keepers, the aggregator's window rule, the trader, the collector
actor). What is the replay's own:

- its clock is the ``ReplayPacer``, unchanged (it starts once both feeds are connected, serves each step at its
  recorded time and says when the recording has ended: the session stops ``REPLAY_TAIL_S`` later);
- a recorded frame is read as recorded (a recorded diff the replayed market decoded already, to pin the
  synthesised venue to it, is not decoded a second time), the venue the recording lacks is the model's
  (``batch_path.synthesised_book`` / ``synthesised_diff``), and a depth request is answered from the replayed
  book, or, once the market keeps no book, by the recording's next REST snapshot.

Both paths give byte-identical fill events, premium series and KPI documents (except the counters of how
the feeds happened to batch their frames, which depend on Trio's scheduling even between two runs of the
actor path): tests/actors/test_replay_batch.py. What only the actor path can do (a feed reconnecting after
a stale stream or an oversized frame, chaos kills, faults, recording a session) is sent to the actors up
front (``batch_path.why_actors``; a recording's gaps and oversized frames by a pre-scan, ``why_not_followed``). What
the pre-scan cannot see (a storm of frames that do not decode, a snapshot older than the diffs MAX_REFETCH
times) ends the session with a fatal error naming ``replay.batched``.
"""

from __future__ import annotations

import trio

from actors.core.venues import binance
from actors.core.venues.binance_weight import depth_weight
from actors.session.batch_pass import BatchedPass, DiffFrame, UpbitFrame
from actors.session.batch_path import BatchUnsupported, decode_binance, recorded_event
from actors.session.fast_forward import FastForward
from actors.session.tree import REPLAY_TAIL_S, Frame
from actors.sim.binance_server import rest_response
from actors.sim.direct import DirectReplay
from actors.sim.recordings import Kind, Recorded


class BatchedReplay(BatchedPass):
    """The feeds, the aggregator and the executor of a direct replay on the virtual clock, as one pass of
    the pure core per step (``run_clock`` is the replay's clock task, ``run`` the session's actors)."""

    PATH_LINE = "replay path: batched, one pass of the pure core per instant (replay.batched = false: the actors)"
    FAILED = "replay (batched path): {}; rerun with replay.batched = false"

    def __init__(self, frame: Frame, direct: DirectReplay) -> None:
        super().__init__(frame, direct)
        self.direct = direct
        self.market, self.pacer = direct.market, direct.pacer
        self._symbol = self.market.binance_symbol

    async def run_clock(self) -> None:
        """The replay's clock (a task of the session's root nursery, as DirectReplay.run_clock)."""
        self._ff = ff = FastForward()
        self.pacer.sleep_until = self._until
        try:
            await self.pacer.run(lambda: self._connected, self._deliver)
        finally:
            self._hand_back()
        self.frame.log.debug(
            "replay clock: {} waits jumped the virtual clock, {} went through the scheduler", ff.jumps, ff.sleeps
        )

    def _recorded(self, recorded: Recorded, now: float, upbit_frames: list[UpbitFrame], diffs: list[DiffFrame]) -> None:
        if recorded.kind is Kind.BOOK:
            self.direct._last_upbit[recorded.symbol] = recorded.frame
            if recorded.symbol in self._sub.units:
                upbit_frames.append(recorded.frame)
        elif recorded.kind is Kind.DIFF:
            # a recorded diff the replayed market decoded already is the same event (binance.decode of the
            # same frame): counted and checked as the feed does, decoded once
            diffs.append((recorded.frame, recorded_event(recorded) if self.market.keeps_books else decode_binance))
        else:
            body = recorded.frame.encode() if isinstance(recorded.frame, str) else recorded.frame
            self.direct._snapshot_body = body
            if not self.market.keeps_books and self._snapshot_wanted and now >= self._refetch_at:
                self._resync(body, now)

    def _rest_ready(self) -> bool:
        # without the books, the recording's next snapshot answers (``_recorded``)
        return self.market.keeps_books and self.market.binance_ready

    def _rest(self) -> bytes:
        # the weight the feed's budget grants it (a replay's few snapshots a minute never wait for it)
        self._bstats.rest_weight += depth_weight(self._bfeed.snapshot_limit)
        status, _, body = rest_response(
            self.direct, self.market.binance_symbol, binance.depth_query(self._bfeed.symbol, self._bfeed.snapshot_limit)
        )
        if status != 200:
            raise BatchUnsupported(f"feed:binance would reconnect: depth snapshot HTTP {status}")
        self.market.stop_keeping_books()
        return body

    def _upbit_snapshot(self, code: str, units: int) -> bytes | str:
        return self.direct.upbit_snapshot(code, units, self._sub.fmt)

    def _during_trade(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._stop_after_replay)

    def _after_trade(self) -> None:
        pacer = self.pacer
        if not pacer.finished.is_set():
            self.frame.log.info(
                "replay: stopped after {:.1f} s of the recording; {}",
                pacer.market.served_s,
                pacer.market.recording.describe(),
            )

    async def _stop_after_replay(self) -> None:
        frame = self.frame
        await self.pacer.finished.wait()
        await trio.sleep(REPLAY_TAIL_S)  # legs in flight meet the last books, the collector writes them
        frame.log.info("end of the recording: stopping")
        if self.pacer.error is not None:
            frame.sources.lifecycle.fail(f"replay: {self.pacer.error}")
        frame.stop.set()
