"""The per-room recent-message cache in Redis: reads and member encoding.

Layout: one sorted set per room (``ChatKeys.recent``) where every member has score 0 and is
``<id as 19 zero-padded digits>:<room ordinal>:<chat.message.v1 JSON>``. Equal scores make
Redis order members lexicographically, which for the fixed-width id prefix is id order, and
lets range reads use ``ZRANGEBYLEX``. (Scores cannot hold the id itself: a Redis score is a
double, exact only to 2**53, and Snowflakes pass that within weeks of the epoch.)

Every post adds and then trims to the newest ``limit`` by rank, so the set is always the top
``limit`` ids of everything ever added to it (minus posts whose publish failed). Hence any
message missing from the cache is older than the oldest cached one: a read of ids > X is
complete from the cache alone when the oldest cached id is <= X + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys

ID_WIDTH = 19


def id_key(message_id: int) -> bytes:
    return b"%019d" % message_id


def encode_member(message_id: int, ordinal: int, event: bytes) -> bytes:
    return b"%019d:%d:" % (message_id, ordinal) + event


def as_bytes(value: Any) -> bytes:
    """Redis replies are bytes, or str when the client decodes responses."""
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass(frozen=True, slots=True)
class CachedMessage:
    id: int
    ordinal: int
    event: bytes


def decode_member(member: Any) -> CachedMessage:
    raw = as_bytes(member)
    ordinal, _, event = raw[ID_WIDTH + 1 :].partition(b":")
    return CachedMessage(int(raw[:ID_WIDTH]), int(ordinal), event)


class RecentCache:
    """Reads of the recent-message cache (the writes live in `gateway.chat.post_ledger`)."""

    def __init__(self, redis: aioredis.Redis, keys: ChatKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def after(
        self, room: str, after_id: int, limit: int
    ) -> tuple[int | None, list[CachedMessage]]:
        """(oldest cached id or None, up to ``limit`` cached messages with id > after_id)."""
        key = self._keys.recent(room)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(key, 0, 0)
            pipe.zrangebylex(key, b"[" + id_key(after_id + 1), b"+", start=0, num=limit)
            oldest, members = await pipe.execute()
        first = decode_member(oldest[0]).id if oldest else None
        return first, [decode_member(m) for m in members]

    async def position(self, room: str) -> tuple[int, int]:
        """(the room's ordinal counter, its newest cached id or 0), read at one instant."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._keys.room_seq(room))
            pipe.zrange(self._keys.recent(room), -1, -1)
            seq, newest = await pipe.execute()
        return int(seq or 0), decode_member(newest[0]).id if newest else 0

    async def before(self, room: str, before_id: int | None, limit: int) -> list[CachedMessage]:
        """Up to ``limit`` newest cached messages with id < before_id, newest first."""
        high = b"+" if before_id is None else b"(" + id_key(before_id)
        members = await self._redis.zrevrangebylex(
            self._keys.recent(room), high, b"-", start=0, num=limit
        )
        return [decode_member(m) for m in members]
