"""A circuit breaker per provider: stop calling a provider that keeps failing.

Theory of operation. CLOSED: calls go through; `failures` consecutive failures open it.
OPEN: no call goes through for `cooldown` seconds (`trip()` opens it at once, for a cooldown of
its own: a used-up quota or refused credentials will not mend in 30 s). HALF_OPEN, once the
cooldown is over: exactly one call, the probe, goes through; its success closes the breaker,
its failure opens it again for another cooldown, and a probe that ended neither way (the
provider answered but said "slow down", or refused that one request) hands the probe to the
next caller. Callers that may not go through are told how long to wait, never blocked: the
Translator turns that into a "retry later" outcome, so the worker delays the translation and
loses nothing.

No I/O and no waiting in here; time comes from the injected clock.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

Clock = Callable[[], float]


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self, *, failures: int = 5, cooldown: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._state = State.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        #: Why it opened last (the provider's error), for logs and "retry later" outcomes.
        self.reason = ""

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() >= self._open_until:
            self._state = State.HALF_OPEN
            self._probing = False
        return self._state

    def remaining(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        return max(0.0, self._open_until - self._clock()) if self.state is State.OPEN else 0.0

    def before_call(self) -> float:
        """0 if a call may go ahead now (in HALF_OPEN it becomes the probe), else the seconds
        to wait before asking again."""
        state = self.state
        if state is State.CLOSED:
            return 0.0
        if state is State.OPEN:
            return self._open_until - self._clock()
        if self._probing:
            return self.cooldown  # the probe is out; its verdict will come before then
        self._probing = True
        return 0.0

    def succeeded(self) -> None:
        self._state = State.CLOSED
        self._failures = 0
        self._probing = False

    def failed(self, reason: str) -> None:
        """A failure of the provider (not of one request)."""
        self._failures += 1
        if self.state is State.HALF_OPEN or self._failures >= self.threshold:
            self._open(self.cooldown, reason)

    def inconclusive(self) -> None:
        """The call said nothing about the provider's health: a half-open probe is handed on."""
        self._probing = False

    def trip(self, cooldown: float, reason: str) -> None:
        """Open now, for `cooldown` seconds, whatever the count."""
        self._open(cooldown, reason)

    def _open(self, cooldown: float, reason: str) -> None:
        self._state = State.OPEN
        self._open_until = self._clock() + cooldown
        self._probing = False
        self.reason = reason
