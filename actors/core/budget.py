"""Byte budgets for what an exchange can make us hold (docs/reliability.md, "Every buffer has a byte budget").

An exchange decides how large each frame is, so a buffer bounded by a count of frames is not bounded at all
(10,000 diffs of 13 MB each). Every buffer an exchange can fill is therefore bounded in bytes: its owner asks
a ``ByteBudget`` before it holds more, and gives the bytes back when it lets go.

What a decoded book update holds in memory is estimated from its levels (``levels_bytes``): CPython keeps each
level as a tuple of two floats (56 + 2 x 24 bytes) referenced from the update's tuple (8 bytes), about 112
bytes; tests/core/test_budget.py checks the estimate against what the decoder really allocates.
"""

from __future__ import annotations

import attrs

LEVEL_BYTES = 112  # one decoded (price, size) level: its tuple, two floats, the reference to it
UPDATE_BYTES = 400  # one decoded update without its levels: the object, its fields, two level tuples
MIB = 1024 * 1024


def levels_bytes(levels: int) -> int:
    """Estimated memory of a decoded update with ``levels`` levels (both sides together)."""
    return UPDATE_BYTES + LEVEL_BYTES * levels


def in_words(n: int) -> str:
    """ "32 MiB", "1.5 MiB", "900 KiB", "512 bytes": a budget or an amount, for messages."""
    if n >= MIB:
        return f"{n / MIB:.3g} MiB"
    if n >= 1024:
        return f"{n / 1024:.3g} KiB"
    return f"{n} bytes"


@attrs.define
class ByteBudget:
    """Bytes that several holders share (every Binance book's pre-snapshot buffer of a session, say): each
    ``take``s before it holds more and ``give``s back what it lets go. ``key`` names the setting in messages."""

    limit: int = attrs.field(validator=attrs.validators.ge(1))
    key: str = ""
    used: int = 0

    def take(self, n: int) -> bool:
        """Hold ``n`` more bytes if they fit; False (nothing taken) if they do not."""
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        """Give back ``n`` bytes taken before."""
        if n > self.used:
            raise ValueError(f"giving back {n} bytes, but only {self.used} are taken")
        self.used -= n
