"""The exchanges' request limits, as the simulator enforces them (MULTIPAIR.md §1-2, PROTOCOLS.md §1.7, §2.5).

Pure: each check is given the time, the servers (binance_server.py, upbit_server.py) do the I/O.

- ``WeightLimiter``: Binance's REST ``REQUEST_WEIGHT`` per client IP per clock minute. Every answer carries
  ``X-MBX-USED-WEIGHT-1M`` (the weight the IP used this minute). A request that would pass the limit is
  refused with 429 and ``Retry-After`` (the seconds to the next minute); a request from an IP that was told
  to wait and did not (it asks again before that Retry-After) earns a 418 ban with its own ``Retry-After``,
  2 minutes the first time and twice as long at each repeat, up to 3 days; during a ban every request gets
  418 with the time left. Refused requests add no weight.
- ``RateWindow``: at most ``n`` events within any second (a connection's incoming messages on Binance and
  Upbit, Upbit's connects per IP).
"""

from __future__ import annotations

import math
from collections import deque

import attrs

FIRST_BAN_S = 120.0  # Binance: "from 2 minutes to 3 days"
MAX_BAN_S = 3 * 86_400.0
MINUTE_S = 60.0


@attrs.frozen
class RestAnswer:
    """What the limiter says about one request: ``status`` None (serve it) or 429/418, and the headers every
    answer carries."""

    status: int | None
    headers: dict[str, str]


@attrs.define
class _Account:
    minute: int = -1
    used: int = 0
    wait_until: float = -math.inf  # the last 429's Retry-After
    banned_until: float = -math.inf
    bans: int = 0


@attrs.frozen
class LimiterStatistics:
    rate_limited: int  # 429 answers
    banned: int  # 418 answers
    bans: int  # bans imposed


class WeightLimiter:
    """Binance's REST weight per client IP (``weight_per_min``; 0: no limit, the header is still sent)."""

    def __init__(self, weight_per_min: int, first_ban_s: float = FIRST_BAN_S) -> None:
        self.weight_per_min = weight_per_min
        self.first_ban_s = first_ban_s
        self._accounts: dict[str, _Account] = {}
        self._rate_limited = self._banned = self._bans = 0

    def check(self, client: str, weight: int, now: float) -> RestAnswer:
        account = self._accounts.setdefault(client, _Account())
        minute = math.floor(now / MINUTE_S)
        if account.minute != minute:
            account.minute, account.used = minute, 0
        if self.weight_per_min and now < account.banned_until:
            return self._ban_answer(account, now)
        if self.weight_per_min and now < account.wait_until:  # told to wait, and did not
            account.bans += 1
            ban_s = min(self.first_ban_s * 2 ** (account.bans - 1), MAX_BAN_S)
            account.banned_until = now + ban_s
            self._bans += 1
            return self._ban_answer(account, now)
        if self.weight_per_min and account.used + weight > self.weight_per_min:
            account.wait_until = (minute + 1) * MINUTE_S
            self._rate_limited += 1
            return RestAnswer(429, self._headers(account, account.wait_until - now))
        account.used += weight
        return RestAnswer(None, self._headers(account))

    def _ban_answer(self, account: _Account, now: float) -> RestAnswer:
        self._banned += 1
        return RestAnswer(418, self._headers(account, account.banned_until - now))

    @staticmethod
    def _headers(account: _Account, retry_after_s: float | None = None) -> dict[str, str]:
        headers = {"X-MBX-USED-WEIGHT-1M": str(account.used)}
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(round(retry_after_s, 6))))  # whole seconds, no float noise
        return headers

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(self._rate_limited, self._banned, self._bans)


class RateWindow:
    """At most ``per_s`` events within any second (0: no limit)."""

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self._recent: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count an event at ``now``; False if it is one too many (it is counted all the same: a client that
        keeps sending stays over)."""
        if not self.per_s:
            return True
        recent = self._recent
        recent.append(now)
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        return len(recent) <= self.per_s

    def recent(self) -> tuple[float, ...]:
        """The times of the events counted within the last second of the latest ``allow``."""
        return tuple(self._recent)
