"""Rate limits: a token bucket, and the frames/s + bytes/s limiter of one STOMP session.

Pure: no clock, no I/O; callers pass ``now`` (any monotonic seconds).  A breach is a
``Breach`` of ``gateway.auth.limits`` (kind ``frames_per_second`` or ``bytes_per_second``).
"""

from __future__ import annotations

import math

from gateway.auth.limits import AbuseLimits, Breach

__all__ = ["SessionRateLimiter", "TokenBucket"]


def _num(value: float) -> str:
    """1000000.0 -> '1000000', 2.5 -> '2.5' (for messages)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored; starts full.

    Pure: the caller passes ``now`` (any monotonic seconds).  A clock that steps backwards
    refills nothing.  A cost larger than ``burst`` can never be paid.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("rate and burst must be >= 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def allow(self, cost: float, now: float) -> bool:
        """Take ``cost`` tokens if there are enough (then True); else take nothing (False)."""
        self._refill(now)
        if cost <= self._tokens:
            self._tokens -= cost
            return True
        return False

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` tokens are available (``inf`` if never)."""
        self._refill(now)
        if cost <= self._tokens:
            return 0.0
        if cost > self.burst or self.rate == 0:
            return math.inf
        return (cost - self._tokens) / self.rate


class SessionRateLimiter:
    """Frames/s and bytes/s for one session: two token buckets, charged together.

    ``check(frame_bytes, now)`` charges one frame and ``frame_bytes`` bytes; both buckets are
    charged only if both can pay, so a refused frame costs nothing.
    """

    __slots__ = ("_bytes", "_frames", "limits")

    def __init__(self, limits: AbuseLimits) -> None:
        self.limits = limits
        self._frames = (
            TokenBucket(limits.frames_per_second, limits.frames_burst)
            if limits.frames_per_second
            else None
        )
        self._bytes = (
            TokenBucket(limits.bytes_per_second, limits.bytes_burst)
            if limits.bytes_per_second
            else None
        )

    def breach(self, frame_bytes: int, now: float) -> Breach | None:
        lim = self.limits
        if self._frames is not None and self._frames.available(now) < 1:
            return Breach(
                "frames_per_second",
                f"rate limit exceeded: frames_per_second {_num(lim.frames_per_second)} "
                f"(burst {lim.frames_burst})",
            )
        if self._bytes is not None and self._bytes.available(now) < frame_bytes:
            return Breach(
                "bytes_per_second",
                f"rate limit exceeded: bytes_per_second {_num(lim.bytes_per_second)} "
                f"(burst {lim.bytes_burst})",
            )
        if self._frames is not None:
            self._frames.allow(1, now)
        if self._bytes is not None:
            self._bytes.allow(frame_bytes, now)
        return None

    def check(self, frame_bytes: int, now: float) -> str | None:
        """None if the frame may pass (and charge it), else the ERROR's body text."""
        found = self.breach(frame_bytes, now)
        return None if found is None else found.message
