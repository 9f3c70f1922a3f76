"""How fast and how many: a token bucket per provider (requests per second, with a burst).

`TokenBucket.take()` is the rule, with no waiting in it: it takes a token and returns 0, or
returns how long until one is there (and takes nothing). `acquire()` waits for a token,
first come first served. `pause(seconds)` stops every request for a while: when a provider
answers 429 with `Retry-After`, nobody else asks it before then either.

Bounded concurrency needs nothing of its own: the Translator (and the push gate) holds an
`asyncio.Semaphore` around each request, so the requests in flight to one provider never pass it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

Clock = Callable[[], float]
_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `rate <= 0` means no limit."""

    def __init__(self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic) -> None:
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def take(self) -> float:
        """Take a token and return 0, or return the seconds until one can be taken."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self.rate <= 0:
            return 0.0
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0 - _EPSILON:  # not a sleep of 1e-15 s for float rounding
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def pause(self, seconds: float) -> None:
        """No token for `seconds` from now (a longer pause already set is kept)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self) -> None:
        """Wait for a token; waiters are served in the order they came."""
        async with self._lock:
            while (wait := self.take()) > 0:  # noqa: ASYNC110 - the wait is computed, not polled
                await asyncio.sleep(wait)
