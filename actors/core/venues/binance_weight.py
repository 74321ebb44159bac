"""Binance's REST request weight, spent within the exchange's limit (MULTIPAIR.md §2, PROTOCOLS.md §2.5).

Binance counts the weight of every REST request per IP over a minute (6,000 by default, every process
behind the IP together), reports the count in ``X-MBX-USED-WEIGHT-1M`` on each answer, answers 429 with
``Retry-After`` past it, and bans an IP that keeps asking (418, 2 minutes to 3 days). ``WeightBudget``
decides when a request may go; it is pure and synchronous (``now`` is passed in, the random draws come
from an injected ``random.Random``), so it runs in virtual time and a Trio shell (``actors.net.rest_gate``)
only waits where it says.

How much is used. A server that counts per clock minute and one that counts over the last 60 s both
count at most what this process sent in the last 60 s, plus what others behind the IP sent. So the
estimate of the weight in use at ``now`` is the larger of:

- our own spend: the weight of the requests granted in the last ``window_s``;
- the server's word: the latest ``X-MBX-USED-WEIGHT-1M``, plus what we were granted since that
  request went out (counted twice at worst), held for ``window_s`` after the answer (it may have been
  read just before the server's minute ended; it cannot stay true longer than that).

A plain token bucket refilling at limit/60 a second would not do: it can spend twice the limit within
one of the server's minutes (a full bucket at its start, then the refill), so a resync storm against a
fixed-minute counter would earn the 429 the budget is there to avoid.

Refusals. A 429 blocks every request until its ``Retry-After`` (60 s without one); a 418 is a ban until
its ``Retry-After`` (120 s without one). Asking during either would turn a 429 into a ban, or lengthen it.

Order. Requests wait in a queue by ``priority`` (lower first: a book with an open trade before a book
that is only watched), then by when they may go, then first come first served. A request that finds the
queue empty, the budget free and no refusal in force goes at once: in normal operation the budget
changes no timing. One that has to wait is given a random delay of up to ``jitter_s`` on top, so that
books resynced together (a reconnect of a connection carrying many) do not all ask again at once.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from typing import Mapping

import attrs

DEFAULT_WEIGHT_PER_MIN = 6_000  # REQUEST_WEIGHT per IP (rest-api.md, "IP Limits")
WINDOW_S = 61.0  # the X-MBX-USED-WEIGHT-1M interval, and a second for a request's varying trip to the server
RETRY_AFTER_429_S = 60.0  # a 429 without a readable Retry-After: wait out a whole window
RETRY_AFTER_418_S = 120.0  # a 418 without one: Binance's shortest ban
DEFAULT_JITTER_S = 0.25
USED_WEIGHT_HEADER = "x-mbx-used-weight-1m"
RETRY_AFTER_HEADER = "retry-after"


def depth_weight(limit: int) -> int:
    """The weight of ``GET /api/v3/depth`` for ``limit`` levels (since 2023-10-19; PROTOCOLS.md §2.5):
    5 up to 100, 25 up to 500, 50 up to 1000, 250 above (the server caps limit at 5000)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class Answer(enum.StrEnum):
    """What an answer says about the budget."""

    OK = "ok"  # anything but a refusal (an error page included: it counted, it was not a refusal)
    RATE_LIMITED = "rate_limited"  # 429: past the limit; wait for Retry-After
    BANNED = "banned"  # 418: the IP is banned until Retry-After


@attrs.frozen
class WeightStatistics:
    """A snapshot of a ``WeightBudget`` as of ``now``."""

    limit_per_min: int
    used: int  # the estimate of the weight in use (see the module's docstring)
    queued: int  # requests waiting
    granted: int  # requests granted since the start
    granted_weight: int  # their weight
    waited: int  # requests that could not go at once
    waited_s: float  # the time they spent waiting, in all
    rate_limited: int  # 429 answers
    banned: int  # 418 answers
    blocked_until: float  # no request before this (a 429's or a 418's Retry-After); -inf when none


@attrs.define
class _Ticket:
    weight: int
    priority: int
    submitted_at: float
    not_before: float
    seq: int

    def key(self) -> tuple[int, float, int]:
        return self.priority, self.not_before, self.seq


class WeightBudget:
    """The REST weight one process may spend (``weight_per_min``: the IP's limit, or this process's share
    of it); ``rng`` draws the jitter. ``submit`` a request, ``poll`` it until it is granted, ``answered``
    with the reply's status and headers; ``cancel`` a request given up on."""

    def __init__(
        self,
        weight_per_min: int = DEFAULT_WEIGHT_PER_MIN,
        *,
        window_s: float = WINDOW_S,
        jitter_s: float = DEFAULT_JITTER_S,
        rng: random.Random,
    ) -> None:
        if weight_per_min < 1 or not window_s > 0 or not jitter_s >= 0:
            raise ValueError("a weight budget needs weight_per_min >= 1, window_s > 0, jitter_s >= 0")
        self.limit = weight_per_min
        self.window_s = window_s
        self.jitter_s = jitter_s
        self._rng = rng
        self._spent: deque[tuple[float, int]] = deque()  # (granted at, weight), oldest first
        self._spent_sum = 0
        self._header: tuple[float, int, float] | None = None  # (sent at, used, valid until)
        self._queue: dict[int, _Ticket] = {}
        self._seq = 0
        self.blocked_until = -math.inf
        self._granted = self._granted_weight = self._waited = self._rate_limited = self._banned = 0
        self._waited_s = 0.0

    # -- the estimate --------------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        while self._spent and now >= self._spent[0][0] + self.window_s:
            self._spent_sum -= self._spent.popleft()[1]
        if self._header is not None and now >= self._header[2]:
            self._header = None

    def _since(self, t: float) -> int:
        """Our weight granted after the request granted at ``t`` (still within the window). Grants at the very
        instant ``t`` may or may not be in the server's count: all of them count but one, the lightest, which
        stands for the answered request itself (exact when it was alone; never less than the truth)."""
        after = same = 0
        lightest = 0
        for at, w in self._spent:
            if at > t:
                after += w
            elif at == t:
                same += w
                lightest = w if lightest == 0 else min(lightest, w)
        return after + same - lightest

    def _used_at(self, t: float) -> int:
        """The estimate at ``t`` (now or later) as far as is known now: no state changes."""
        own = sum(w for at, w in self._spent if t < at + self.window_s)  # the same sum as lapses below
        if self._header is None or t >= self._header[2]:
            return own
        sent_at, used, _ = self._header
        return max(own, used + self._since(sent_at))

    def used(self, now: float) -> int:
        """The weight in use at ``now``: the larger of our own spend and the server's last word."""
        self._expire(now)
        return self._used_at(now)

    def _fits_at(self, weight: int, start: float) -> float:
        """The earliest time >= ``start`` at which ``weight`` more stays within the limit, as far as is known
        now (the estimate only falls when a grant leaves the window or the server's word lapses)."""
        if self._used_at(start) + weight <= self.limit:
            return start
        lapses = {at + self.window_s for at, _ in self._spent}
        if self._header is not None:
            lapses.add(self._header[2])
        for t in sorted(x for x in lapses if x > start):
            if self._used_at(t) + weight <= self.limit:
                return t
        raise AssertionError("unreachable: everything known lapses within a window, and weight <= limit")

    # -- requests ------------------------------------------------------------------------------------

    def submit(self, weight: int, now: float, priority: int = 0) -> int:
        """Queue a request of ``weight``; returns its ticket for ``poll``. ``priority``: lower goes first."""
        if not 1 <= weight <= self.limit:
            raise ValueError(f"a request of weight {weight} can never fit a budget of {self.limit} a minute")
        self._seq += 1
        free = not self._queue and now >= self.blocked_until and self.used(now) + weight <= self.limit
        not_before = now if free else now + self._rng.uniform(0.0, self.jitter_s)
        if not free:
            self._waited += 1
        self._queue[self._seq] = _Ticket(weight, priority, now, not_before, self._seq)
        return self._seq

    def _head(self) -> _Ticket:
        return min(self._queue.values(), key=_Ticket.key)

    def ready_at(self, now: float) -> float:
        """When the first request in the queue may go (``now`` or later); inf with an empty queue."""
        if not self._queue:
            return math.inf
        self._expire(now)
        head = self._head()
        start = max(now, head.not_before, self.blocked_until)
        return self._fits_at(head.weight, start)

    def poll(self, ticket: int, now: float) -> float | None:
        """None: the request is granted now (its weight is spent; answer it with ``answered``). Otherwise the
        time to poll again: when it may go as far as is known now, or inf while another request is ahead of
        it (poll again once the queue has changed: a grant, a cancel, an answer)."""
        request = self._queue.get(ticket)
        if request is None:
            raise KeyError(f"ticket {ticket} is not waiting (granted or cancelled already)")
        if self._head() is not request:
            return math.inf  # another request goes first: poll again once the queue has changed
        at = self.ready_at(now)
        if at > now:
            return at
        del self._queue[ticket]
        self._spent.append((now, request.weight))
        self._spent_sum += request.weight
        self._granted += 1
        self._granted_weight += request.weight
        self._waited_s += now - request.submitted_at
        return None

    def cancel(self, ticket: int) -> None:
        """A waiting request given up on (its caller was cancelled); unknown tickets are ignored."""
        self._queue.pop(ticket, None)

    # -- answers -------------------------------------------------------------------------------------

    def answered(self, status: int, headers: Mapping[str, str], sent_at: float, now: float) -> Answer:
        """Take in an answer to a request granted at ``sent_at``: the server's count, a refusal."""
        lower = {k.lower(): v for k, v in headers.items()}
        used = _int_or_none(lower.get(USED_WEIGHT_HEADER))
        if used is not None and (self._header is None or sent_at >= self._header[0]):
            self._header = (sent_at, used, now + self.window_s)
        if status not in (429, 418):
            return Answer.OK
        retry_after = _seconds_or_none(lower.get(RETRY_AFTER_HEADER))
        if status == 429:
            self._rate_limited += 1
            self.blocked_until = max(self.blocked_until, now + (retry_after or RETRY_AFTER_429_S))
            return Answer.RATE_LIMITED
        self._banned += 1
        self.blocked_until = max(self.blocked_until, now + (retry_after or RETRY_AFTER_418_S))
        return Answer.BANNED

    def statistics(self, now: float) -> WeightStatistics:
        return WeightStatistics(
            self.limit,
            self.used(now),
            len(self._queue),
            self._granted,
            self._granted_weight,
            self._waited,
            round(self._waited_s, 6),
            self._rate_limited,
            self._banned,
            self.blocked_until,
        )


def _int_or_none(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


def _seconds_or_none(text: str | None) -> float | None:
    """Retry-After in seconds (Binance sends whole seconds; an HTTP date is not expected and is ignored)."""
    n = _int_or_none(text)
    return None if n is None or n <= 0 else float(n)
