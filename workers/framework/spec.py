"""What a consumer declares: queue, bindings, validation, retry policy, batching."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.framework.idempotency import IdempotencyGuard

#: Turns a message body into the payload a handler gets; raising means "poison".
Validator = Callable[[bytes], Any]
Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """Hand the handler a list: up to `max_size` deliveries, waiting at most `max_wait` s."""

    max_size: int = 500
    max_wait: float = 0.05

    def __post_init__(self) -> None:
        if self.max_size < 1:
            raise ValueError("BatchSpec.max_size must be >= 1")
        if self.max_wait < 0:
            raise ValueError("BatchSpec.max_wait must be >= 0")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` handler calls in all (None: forever), waiting `backoff[n-1]` s after
    failure n (the last delay repeats)."""

    max_attempts: int | None = 5
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 (or None for no limit)")
        if not self.backoff or any(d <= 0 for d in self.backoff):
            raise ValueError("backoff needs at least one delay, all > 0")

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure (1-based)."""
        return self.backoff[min(max(failures, 1), len(self.backoff)) - 1]

    def exhausted(self, failures: int) -> bool:
        return self.max_attempts is not None and failures >= self.max_attempts

    def delays(self) -> tuple[float, ...]:
        """Distinct delays actually used, in order (one retry queue each)."""
        limit = len(self.backoff)
        if self.max_attempts is not None:
            limit = min(limit, max(self.max_attempts - 1, 0))
        return tuple(dict.fromkeys(self.backoff[:limit]))


def delay_label(seconds: float) -> str:
    """`5.0` -> "5s", `0.25` -> "250ms": the suffix of a retry queue's name."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    handler: Handler
    queue: str
    patterns: tuple[str, ...]
    exchange: str | None
    """None: the app's topic exchange (resolved when the worker starts)."""
    validator: Validator | None
    retry: RetryPolicy
    batch: BatchSpec | None
    prefetch: int | None
    concurrency: int | None
    schema: str | None = None
    only_headers: Mapping[str, str] = field(default_factory=dict)
    idempotency: IdempotencyGuard | None = None
    key: Callable[[Any], str] | None = None
    quorum_group_size: int | None = None
    """``x-quorum-initial-group-size`` of the consumer's quorum queues (None: every node of
    the cluster, the broker's default)."""

    @property
    def retry_queue_names(self) -> dict[float, str]:
        return {d: f"{self.queue}.retry.{delay_label(d)}" for d in self.retry.delays()}

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, delay: float) -> str:
        return f"{self.queue}.retry.{delay_label(delay)}"

    def accepts(self, headers: Mapping[str, Any] | None) -> bool:
        """False for messages this consumer skips (acked unhandled): header filter."""
        if not self.only_headers:
            return True
        h = headers or {}
        return all(_text(h.get(k)) == v for k, v in self.only_headers.items())


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)
