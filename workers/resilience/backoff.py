"""Waits between retries: exponential, capped, with jitter, unless the service named one.

`delay(n)` after the n-th failure (1-based) is `base * 2**(n-1)` capped at `cap`, of which a
random half is taken off ("equal jitter"), so it is never below half the exponential value:
callers that failed together do not come back together. A `Retry-After` from the service wins
over all of this (the Translator uses it as is).
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self, base: float = 0.5, cap: float = 30.0, *, rand: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rand = rand

    def ceiling(self, failures: int) -> float:
        """The exponential value for the n-th failure, before jitter."""
        return min(self.cap, self.base * 2.0 ** (max(failures, 1) - 1))

    def delay(self, failures: int) -> float:
        ceiling = self.ceiling(failures)
        return ceiling / 2 + self._rand() * ceiling / 2
