"""Rate limits: a token bucket, the frames/s + bytes/s limiter of one STOMP session, and
which rates a session gets (its listener's, or its role's).

Pure: no clock, no I/O; callers pass ``now`` (any monotonic seconds).  A breach is a
``Breach`` of ``gateway.auth.limits`` (kind ``frames_per_second`` or ``bytes_per_second``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.auth.limits import Breach

__all__ = ["RatePolicy", "RateProfile", "Rates", "SessionRateLimiter", "TokenBucket"]


class Rates(Protocol):
    """The four numbers of a session's rate limits (``AbuseLimits`` is one, too)."""

    @property
    def frames_per_second(self) -> float: ...

    @property
    def frames_burst(self) -> int: ...

    @property
    def bytes_per_second(self) -> float: ...

    @property
    def bytes_burst(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RateProfile:
    """Rates of a listener or a role; 0 turns a rate off."""

    frames_per_second: float = 0.0
    frames_burst: int = 0
    bytes_per_second: float = 0.0
    bytes_burst: int = 0

    @classmethod
    def derived(
        cls,
        frames_per_second: float,
        bytes_per_second: float,
        max_frame_size: int,
        *,
        frames_burst: int = 0,
        bytes_burst: int = 0,
    ) -> RateProfile:
        """A burst given as 0 is two seconds' worth; the byte burst is at least
        ``max_frame_size``, so the largest frame the listener takes can always pass."""
        return cls(
            frames_per_second,
            frames_burst or max(1, math.ceil(2 * frames_per_second)),
            bytes_per_second,
            max(bytes_burst or math.ceil(2 * bytes_per_second), max_frame_size),
        )


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Which rates a session gets: those of its listener (``listeners``, by transport name:
    ``ws``, ``tcp``) until CONNECT, then those of a service role if its identity has one
    (``service``, by transport name too: the byte burst follows the listener's frame size)."""

    listeners: Mapping[str, Rates]
    service: Mapping[str, Rates]
    service_roles: frozenset[str] = frozenset()

    def for_listener(self, transport: str) -> Rates:
        return self.listeners[transport]

    def for_session(self, transport: str, roles: frozenset[str]) -> Rates:
        if self.service_roles and not self.service_roles.isdisjoint(roles):
            return self.service[transport]
        return self.listeners[transport]


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

    def __init__(self, limits: Rates) -> None:
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

    @property
    def unlimited(self) -> bool:
        return self._frames is None and self._bytes is None

    def breach(self, frame_bytes: int, now: float) -> Breach | None:
        """Charge one frame of ``frame_bytes``; the limit it breaks, or None."""
        return self.charge(1, frame_bytes, now)

    def charge(self, frames: int, size: int, now: float) -> Breach | None:
        """Charge ``frames`` frames and ``size`` bytes (either may be 0) to both buckets, or
        to neither; the limit they break, or None."""
        lim = self.limits
        if frames and self._frames is not None and self._frames.available(now) < frames:
            return Breach(
                "frames_per_second",
                f"rate limit exceeded: frames_per_second {_num(lim.frames_per_second)} "
                f"(burst {lim.frames_burst})",
            )
        if size and self._bytes is not None and self._bytes.available(now) < size:
            return Breach(
                "bytes_per_second",
                f"rate limit exceeded: bytes_per_second {_num(lim.bytes_per_second)} "
                f"(burst {lim.bytes_burst})",
            )
        if frames and self._frames is not None:
            self._frames.allow(frames, now)
        if size and self._bytes is not None:
            self._bytes.allow(size, now)
        return None

    def check(self, frame_bytes: int, now: float) -> str | None:
        """None if the frame may pass (and charge it), else the ERROR's body text."""
        found = self.breach(frame_bytes, now)
        return None if found is None else found.message
