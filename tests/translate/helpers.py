"""Small helpers the translation tests share."""

from __future__ import annotations

from workers.resilience.breaker import CircuitBreaker, State


def state(breaker: CircuitBreaker) -> State:
    """The breaker's state, read through a call: mypy would narrow the property across calls."""
    return breaker.state


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
