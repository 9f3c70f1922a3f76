"""Read pointers and unread counts.

Approach: every accepted post takes the next value of a per-room counter (its *room
ordinal*, stored in its recent-cache entry). A user's read pointer in a room is a hash
``{id, seq}``: the last message id read and that message's ordinal. The unread count is then
``room counter - seq``, computed on demand with two reads and no per-member fan-out when a
message arrives.

``mark_read`` (one Lua step) moves the pointer only forward (ids compare as 19-digit strings:
Lua numbers are doubles and would round Snowflakes). The ordinal comes from the newest cached
message at or below the pointer; for a pointer older than the whole cache it is the oldest
cached ordinal minus one, so the count is exact while the read message is in the cache and a
lower bound otherwise. With several nodes posting at once, ordinals follow accept order rather
than strict id order, so a count can be off by the handful of posts in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.chat import lua
from gateway.chat.keys import ChatKeys
from gateway.chat.recent import as_bytes, id_key


@dataclass(frozen=True, slots=True)
class ReadPointer:
    moved: bool
    message_id: int
    unread: int


class ReadState:
    def __init__(self, redis: aioredis.Redis, keys: ChatKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._mark = redis.register_script(lua.MARK_READ)

    async def mark_read(self, user: str, room: str, message_id: int) -> ReadPointer:
        keys = [self._keys.read(room, user), self._keys.recent(room), self._keys.room_seq(room)]
        moved, pointer, seq, room_seq = await self._mark(
            keys=keys, args=[id_key(message_id), b"%d" % message_id]
        )
        unread = max(int(room_seq) - int(seq), 0)
        return ReadPointer(bool(int(moved)), int(as_bytes(pointer)), unread)

    async def pointer(self, user: str, room: str) -> int | None:
        """The user's read pointer in the room, if any."""
        value = await self._redis.hget(self._keys.read(room, user), "id")
        return None if value is None else int(as_bytes(value))

    async def unread(self, user: str, room: str) -> int:
        """Messages in the room after the user's read pointer (all of them if none)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.room_seq(room))
            pipe.hget(self._keys.read(room, user), "seq")
            room_seq, seq = await pipe.execute()
        return max(int(room_seq or 0) - int(seq or 0), 0)
