"""Durable subscriptions: who has which, how many, and how to list and cancel them.

A durable subscription is a queue on the broker (see :mod:`.planner`); who owns it is
decided by its name (:func:`gateway.auth.queue_policy.owns`). This module keeps the *record*
of each one in Redis, so that they can be counted against a per-user cap on every node, listed
and deleted by their user (over STOMP or HTTP, :mod:`gateway.durable_api`) or by an operator
(``python -m gateway durable-subscriptions``, :mod:`gateway.durable_cli`):

* :class:`DurableRegistry`: the records, one Redis hash per user
  (``<prefix>dsub:<user>``: queue name → JSON of :class:`DurableRecord`). :meth:`claim
  <DurableRegistry.claim>` adds one atomically unless the user is at the cap (a Lua script,
  so two nodes never both take the last slot); a subscription that is already recorded is
  taken again whatever the cap (its owner coming back).
* :class:`DurableSubscriptions`: the records with their queues on the broker: listing adds
  each queue's message count (and drops records whose queue is gone), deleting deletes the
  queue, then the record.

The relay claims a record before it declares a durable subscription's queue (at the cap,
records whose queue is gone, say expired by a broker policy, are dropped first) and drops it
when an UNSUBSCRIBE with ``durable:true`` deletes the queue. Redis failing makes a new durable
SUBSCRIBE fail (with an ERROR that says so) rather than go uncounted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import ClientError, ErrorMessage

__all__ = [
    "DurableError",
    "DurableInfo",
    "DurableRecord",
    "DurableRegistry",
    "DurableSubscriptions",
]

log = logging.getLogger("stompgate.relay")

_CLAIM: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    return 0
end
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('HLEN', KEYS[1]) >= limit then
    return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class DurableError(ClientError):
    """A durable subscription that cannot be made (over the cap; records unavailable)."""

    reason = "durable"


@dataclass(frozen=True, slots=True)
class DurableRecord:
    """One durable subscription: its queue, the SUBSCRIBE's id and destination, and when it
    was first made (milliseconds since the epoch)."""

    queue: str
    id: str
    destination: str
    created: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, queue: str, text: str | bytes) -> DurableRecord:
        data = json.loads(text)
        subscription_id = str(data.get("id", ""))
        return cls(queue, subscription_id, str(data.get("destination", "")), int(data["created"]))


@dataclass(frozen=True, slots=True)
class DurableInfo:
    """A record as listed: with the number of messages waiting in its queue (None: the
    broker could not be asked)."""

    record: DurableRecord
    messages: int | None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.record), "messages": self.messages}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DurableRegistry:
    """The records of durable subscriptions in Redis; ``limit`` per user (0: no limit)."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str, limit: int) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}dsub:"
        self.limit = limit
        self._claim = redis.register_script(_CLAIM)

    def _key(self, user: str | None) -> str:
        return self._prefix + (user or "")

    async def claim(self, user: str | None, record: DurableRecord) -> bool:
        """Record ``user``'s durable subscription; True if it is new, False if it was
        recorded already. Raises :class:`DurableError` at the cap or without Redis."""
        try:
            result = await self._claim(
                keys=[self._key(user)], args=[record.queue, record.to_json(), self.limit]
            )
        except RedisError as exc:
            log.error("durable subscription records unavailable: %s", exc)
            raise DurableError(
                ErrorMessage.DURABLE_UNAVAILABLE,
                "the records of durable subscriptions cannot be reached right now; retry shortly",
                reason="durable_unavailable",
            ) from None
        if int(result) < 0:
            raise DurableError(
                ErrorMessage.DURABLE_LIMIT_EXCEEDED,
                f"user '{user}' has {self.limit} durable subscriptions, the most one user may "
                "have: cancel one first (UNSUBSCRIBE with durable:true, SEND to "
                "/app/durable-subscriptions/delete, or DELETE /api/durable-subscriptions/"
                "<queue>)",
                reason="durable_limit",
            )
        return bool(result)

    async def forget(self, user: str | None, queue: str) -> bool:
        """Drop a record; True if there was one."""
        return bool(await self._redis.hdel(self._key(user), queue))

    async def records(self, user: str | None) -> list[DurableRecord]:
        """``user``'s records, oldest first."""
        raw = await self._redis.hgetall(self._key(user))
        found = [DurableRecord.from_json(_text(q), v) for q, v in raw.items()]
        return sorted(found, key=lambda r: (r.created, r.queue))

    async def users(self) -> list[str]:
        """Every user with a record (a SCAN: for operators, not for every frame)."""
        keys = self._redis.scan_iter(match=self._prefix + "*", count=500)
        return sorted({_text(key)[len(self._prefix) :] async for key in keys})


class DurableSubscriptions:
    """Records and their queues: ``messages(queue)`` is a queue's message count (None: no such
    queue; raises if the broker cannot be asked), ``delete(queue)`` deletes it."""

    def __init__(
        self,
        registry: DurableRegistry,
        *,
        messages: Callable[[str], Awaitable[int | None]],
        delete: Callable[[str], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._messages = messages
        self._delete = delete
        self._clock = clock

    def record(self, queue: str, subscription_id: str, destination: str) -> DurableRecord:
        """A new record, made now."""
        return DurableRecord(queue, subscription_id, destination, int(self._clock() * 1000))

    async def claim(self, user: str | None, record: DurableRecord) -> bool:
        """:meth:`DurableRegistry.claim`; at the cap, first drop the records whose queue is
        gone (expired by a broker policy, deleted by an operator) and try once more."""
        try:
            return await self.registry.claim(user, record)
        except DurableError as exc:
            if exc.reason != "durable_limit":
                raise
        await self.list(user)
        return await self.registry.claim(user, record)

    async def list(self, user: str | None) -> list[DurableInfo]:
        """``user``'s durable subscriptions; records whose queue is gone are dropped."""
        found: list[DurableInfo] = []
        for record in await self.registry.records(user):
            try:
                count = await self._messages(record.queue)
            except Exception as exc:
                log.warning("cannot count messages of %r: %s", record.queue, exc)
                found.append(DurableInfo(record, None))
                continue
            if count is None:
                await self.registry.forget(user, record.queue)
                continue
            found.append(DurableInfo(record, count))
        return found

    async def delete(self, user: str | None, queue: str) -> bool:
        """Delete ``user``'s durable subscription with queue ``queue`` (its queue, then its
        record); False if ``user`` has no such record. Raises if the broker cannot be asked."""
        if queue not in {r.queue for r in await self.registry.records(user)}:
            return False
        await self._delete(queue)
        await self.registry.forget(user, queue)
        return True
