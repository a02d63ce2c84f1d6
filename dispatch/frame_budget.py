"""Per-socket frame budgets: token buckets held in the socket's own memory.

Pure (no Django, no I/O): a bucket is a few floats read and written on the event loop that owns the
socket, so the budget costs the fix path two float operations and no Redis round trip. A socket lives on
one process, so nothing needs to be shared: a reconnect starts with a full bucket, but a reconnect costs a
ticket (a REST call) and a handshake, which the REST throttles see.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`burst` frames at once, then `rate_per_s` sustained. Time is the caller's monotonic clock."""

    rate_per_s: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, *, rate_per_s: float, burst: float, now: float) -> TokenBucket:
        return cls(rate_per_s=rate_per_s, burst=burst, tokens=burst, stamp=now)

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False (nothing spent) when the budget is exhausted."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate_per_s)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def retry_after_s(self) -> float:
        """How long after the last `take` until one token is back."""
        if self.rate_per_s <= 0:
            return float("inf")
        return max(0.0, (1.0 - self.tokens) / self.rate_per_s)


@dataclass(frozen=True, slots=True)
class BudgetRates:
    """Sustained rate and burst of each budget a socket has (from settings, read when it connects)."""

    fix_rate_per_s: float
    fix_burst: float
    command_rate_per_s: float
    command_burst: float
    flood_frames_per_s: float
    flood_burst: float


class SocketBudget:
    """The three budgets of one socket.

    - `fixes`: location fixes that passed validation (what would be stored and forwarded);
    - `commands`: every other frame type that does work (database calls);
    - `frames`: every frame the socket sends, of any kind or none; running it dry means the client is
      flooding far past the other two, and the socket is closed.
    """

    __slots__ = ("commands", "fixes", "frames")

    def __init__(self, rates: BudgetRates, *, now: float) -> None:
        self.fixes = TokenBucket.full(rate_per_s=rates.fix_rate_per_s, burst=rates.fix_burst, now=now)
        self.commands = TokenBucket.full(
            rate_per_s=rates.command_rate_per_s, burst=rates.command_burst, now=now
        )
        self.frames = TokenBucket.full(rate_per_s=rates.flood_frames_per_s, burst=rates.flood_burst, now=now)
