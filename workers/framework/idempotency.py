"""Idempotent handling: remember the keys of messages already handled, skip them next time.

Every `Delivery` carries a stable `key` (the AMQP message-id, a consumer's `key=` function of
the payload, or a hash of the body). A consumer declared with `idempotency=<guard>` skips (acks
without calling the handler) deliveries whose key the guard has seen, and marks keys only after
the handler returned, so a failed attempt is retried. Two copies of one message handled at the
same moment by two workers can both run: delivery is at-least-once, the guard narrows that to
"practically once"; a handler whose effect must be exactly-once makes the write itself
idempotent (as the message store does, on message id and client message id).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis


class IdempotencyGuard(Protocol):
    async def seen(self, keys: Sequence[str]) -> set[str]:
        """The subset of `keys` already handled."""
        ...

    async def mark(self, keys: Sequence[str]) -> None:
        """Record `keys` as handled."""
        ...


class MemoryIdempotency:
    """In-process guard remembering the last `capacity` keys (one worker process only)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    async def seen(self, keys: Sequence[str]) -> set[str]:
        return {k for k in keys if k in self._keys}

    async def mark(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


class RedisIdempotency:
    """Guard shared by every worker process: one Redis key per handled message, with a TTL."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, ttl: float = 86_400.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl * 1000))

    async def seen(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        values = await self.client.mget([self.prefix + k for k in keys])
        return {k for k, v in zip(keys, values, strict=True) if v is not None}

    async def mark(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(self.prefix + key, b"1", px=self.ttl_ms)
            await pipe.execute()
