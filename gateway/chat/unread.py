"""Unread counts of many rooms at once: a device's snapshot when it connects.

One Lua step (`chatstate.unread.UNREAD_MANY`, shared with the notify worker) reads, for every
room of the user's rooms set (or for the rooms given), the room counter, the user's pointer,
the holes above it and the newest cached id, and computes each count as
`gateway.chat.read_state` defines it: one round trip to Redis for a user in hundreds of
rooms. What Redis has lost (the user's rooms set, a room counter, a pointer) is rebuilt from
the store first and the step is asked again for those rooms only, so a cold read costs more
round trips once, and the answer is exact either way.

Each entry carries, besides the count, the read pointer and the newest message id it was
computed with: both only grow, so a client that gets two answers for a room (a snapshot and
a live update crossing it) keeps the one with the larger (``read_id``, ``last_id``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from chatstate.unread import UnreadReader
from gateway.chat.read_state import ReadState

RoomsOf = Callable[[str], Awaitable[object]]
"""``rooms_of(user)``: rebuild the user's rooms set in Redis from the store."""


@dataclass(frozen=True, slots=True)
class RoomUnread:
    room: str
    unread: int
    read_id: int
    """The user's read pointer (0: nothing read)."""
    last_id: int | None
    """The room's newest message id in the recent cache (None: the cache is empty)."""


class UnreadCounts:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: ChatKeys,
        read_state: ReadState,
        *,
        rooms_of: RoomsOf | None = None,
    ) -> None:
        self._read_state = read_state
        self._rooms_of = rooms_of
        self._reader = UnreadReader(redis, keys)

    async def snapshot(self, user: str) -> list[RoomUnread]:
        """Every room of the user (the rooms set), by room id."""
        reply = await self._ask(user, ())
        if reply is None:
            if self._rooms_of is None:
                return []
            await self._rooms_of(user)
            reply = await self._ask(user, ()) or []
        return await self._settle(user, reply)

    async def of(self, user: str, rooms: Sequence[str]) -> list[RoomUnread]:
        """These rooms, whether the user belongs to them or not, by room id."""
        if not rooms:
            return []
        return await self._settle(user, await self._ask(user, rooms) or [])

    async def _settle(self, user: str, reply: list[RoomUnread | str]) -> list[RoomUnread]:
        done = {r.room: r for r in reply if isinstance(r, RoomUnread)}
        cold = [r for r in reply if isinstance(r, str)]
        if cold:
            for room in cold:
                await self._read_state.ensure_counter(room)
                await self._read_state.warm(user, room)
            again = await self._ask(user, cold) or []
            done.update({r.room: r for r in again if isinstance(r, RoomUnread)})
        return [done[room] for room in sorted(done)]

    async def _ask(self, user: str, rooms: Sequence[str]) -> list[RoomUnread | str] | None:
        """The step's answer: a `RoomUnread` per exact room, the id of each cold one; None
        when the user's rooms set is missing."""
        rows = await self._reader.rows(user, rooms)
        if rows is None:
            return None
        return [
            RoomUnread(row.room, row.unread, row.read_id, row.last_id) if row.exact else row.room
            for row in rows
        ]
