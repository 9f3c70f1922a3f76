"""AMQP header names the framework sets on messages it retries or dead-letters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How many times the handler has failed on this message so far (0 or absent on first delivery).
ATTEMPTS = "x-attempts"
#: Routing key and exchange of the original publish; a retried message comes back to the work
#: queue through the default exchange under the queue's name, so the original ones ride here.
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
ORIGINAL_EXCHANGE = "x-original-exchange"
#: The last error, "ExceptionType: message", set on retries and on dead-lettered messages.
ERROR = "x-error"
#: "invalid" (failed validation, never retried), "exhausted" (max_attempts reached) or
#: "rejected" (the handler raised `DeadLetter`: it can never succeed).
DEAD_LETTER_REASON = "x-dead-letter-reason"
#: Name of the worker that dead-lettered the message.
DEAD_LETTERED_BY = "x-dead-lettered-by"

FRAMEWORK_HEADERS = frozenset(
    {ATTEMPTS, ORIGINAL_ROUTING_KEY, ORIGINAL_EXCHANGE, ERROR, DEAD_LETTER_REASON, DEAD_LETTERED_BY}
)
#: Headers RabbitMQ adds when it dead-letters a message (from a retry queue back to work).
BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)

MAX_ERROR_LENGTH = 2000


def application_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers the publisher set: without the framework's and the broker's bookkeeping."""
    if not headers:
        return {}
    skip = FRAMEWORK_HEADERS | BROKER_HEADERS
    return {k: v for k, v in headers.items() if k not in skip}


def attempts_so_far(headers: Mapping[str, Any] | None) -> int:
    value = (headers or {}).get(ATTEMPTS, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 3] + "..."
