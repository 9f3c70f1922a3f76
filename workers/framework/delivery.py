"""`Delivery`: what a handler gets for one message."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery(Generic[T]):
    """One message, validated.

    `payload` is what the consumer's validator (or schema) made of `body`; raw bytes without
    one. `routing_key` and `exchange` are those of the original publish, also on a retry.
    `headers` are the publisher's headers (the framework's own `x-...` bookkeeping removed).
    `attempt` is 1 on the first handling, 2 on the first retry, and so on. `key` is stable
    across redeliveries and retries of the same message: use it for idempotent side effects.
    """

    payload: T
    body: bytes
    key: str
    routing_key: str
    exchange: str
    headers: Mapping[str, Any]
    attempt: int
    redelivered: bool
    message_id: str | None
    content_type: str | None
    delivery_tag: int


def body_key(body: bytes) -> str:
    """Fallback message key: a digest of the body."""
    return "b:" + hashlib.blake2b(body, digest_size=16).hexdigest()
