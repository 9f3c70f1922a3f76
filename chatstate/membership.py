"""Who belongs to which room, as Redis caches it, read (nothing is written here).

The gateway's rooms (`gateway.chat.membership.Membership`) keep two caches of the room store
(`store.rooms.RoomStore`, the truth), both Redis sets that hold `chatstate.keys.MARKER` besides
their content, so an empty set (a room nobody is in, a user in no room) and a lost one (Redis
restarted, or the set expired) differ:

- the *roster* of a room, ``<membership prefix>roster:<room>`` (`ChatKeys.roster`);
- a user's rooms, ``<prefix>user-rooms:<user>`` (`ChatKeys.user_rooms`).

`MembershipCache` reads them and says when one is lost (None); the gateway then rebuilds it
from the store. `RoomMembers` is the read-only way for a process that does not keep the
caches (the notify worker): the roster, or the store's members when Redis has lost it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from chatstate.keys import MARKER, ChatKeys
from store.rooms import RoomStore

__all__ = ["MembershipCache", "RoomMembers"]


def _members(values: set[Any]) -> list[str] | None:
    if not values:
        return None  # not even the marker: lost (or never built)
    texts = (v.decode() if isinstance(v, bytes) else str(v) for v in values)
    return sorted(v for v in texts if v != MARKER)


class MembershipCache:
    def __init__(self, redis: aioredis.Redis, keys: ChatKeys, *, roster_prefix: str) -> None:
        """``roster_prefix``: the ACL's membership prefix (``STOMPGATE_MEMBERSHIP_PREFIX``)."""
        self._redis = redis
        self._keys = keys
        self._roster_prefix = roster_prefix

    def roster_key(self, room: str) -> str:
        return self._keys.roster(self._roster_prefix, room)

    async def members(self, room: str) -> list[str] | None:
        """The room's members, sorted; None when the roster is not cached."""
        return _members(await self._redis.smembers(self.roster_key(room)))

    async def rooms_of(self, user: str) -> list[str] | None:
        """The rooms ``user`` belongs to, sorted; None when they are not cached."""
        return _members(await self._redis.smembers(self._keys.user_rooms(user)))

    async def sizes(self, rooms: Sequence[str]) -> list[int | None]:
        """How many members each room has (one round trip); None where the roster is not
        cached."""
        if not rooms:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.scard(self.roster_key(room))
            counts = await pipe.execute()
        return [int(n) - 1 if int(n) else None for n in counts]


class RoomMembers:
    """``members_of(room)``: the roster, or the room store's members when Redis has lost it
    (read only: the gateway rebuilds the cache when it next needs it)."""

    def __init__(self, cache: MembershipCache, store: RoomStore) -> None:
        self._cache = cache
        self._store = store

    async def members_of(self, room: str) -> set[str]:
        cached = await self._cache.members(room)
        if cached is not None:
            return set(cached)
        return {member.user for member in await self._store.members(room)}
