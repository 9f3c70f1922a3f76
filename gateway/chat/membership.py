"""Who belongs to which room, cached in Redis for the hot checks, rebuilt from the store.

Two caches (their layout and reads: `chatstate.membership`), both Redis sets that hold the
marker member ``''`` besides their content, so an empty set (a room nobody is in, a user in
no room) and a lost one (Redis restarted, or the set expired) differ:

- the *roster* of a room, ``<membership prefix>roster:<room>``: the key the ACL's
  ``member_of = "roster:{room}"`` rules read (the built-in default rules have one), with a
  plain SISMEMBER. When the set is missing, the ACL's `MembershipLookup` asks `is_member`
  here, which rebuilds it from the store;
- a user's rooms, ``<prefix>user-rooms:<user>`` (`ChatKeys.user_rooms`): what the unread
  snapshot (`gateway.chat.unread`), ``GET /api/rooms`` and presence (the rooms told of a
  user's change) read.

A change is made in the store first, then in the sets that exist (Lua `CHANGE_MEMBERS`); a
rebuild reads a version counter before it reads the store and writes only if no change
bumped it meanwhile (Lua `REBUILD_SET`), so a rebuild racing a change never writes back a
stale roster. Sets expire after ``ttl_s`` (a day) without a change; an empty roster (a room
the store does not know, say a probe for a random id) after ``empty_ttl_s``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from chatstate import keys as chat_keys
from chatstate.keys import ChatKeys
from chatstate.membership import MembershipCache
from gateway.chat import lua
from gateway.chat.recent import as_bytes
from gateway.chat.store_api import RoomStore

_ROSTER = re.compile(r"roster:(?P<room>[A-Za-z0-9_-]{1,64})")

_Loader = Callable[[], Awaitable[list[str]]]
_Cached = Callable[[], Awaitable[list[str] | None]]


class Membership:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: ChatKeys,
        store: RoomStore,
        *,
        roster_prefix: str,
        ttl_s: int = 24 * 3600,
        empty_ttl_s: int = 60,
    ) -> None:
        """``roster_prefix``: the ACL's membership prefix (``STOMPGATE_MEMBERSHIP_PREFIX``)."""
        self._redis = redis
        self._keys = keys
        self.store = store
        self.cache = MembershipCache(redis, keys, roster_prefix=roster_prefix)
        self._ttl_s = ttl_s
        self._empty_ttl_s = empty_ttl_s
        self._rebuild = redis.register_script(lua.REBUILD_SET)
        self._change = redis.register_script(lua.CHANGE_MEMBERS)

    @staticmethod
    def roster(room: str) -> str:
        """The roster's key as the ACL names it (without the membership prefix)."""
        return chat_keys.roster(room)

    # -- the ACL's fallback (gateway.auth.acl.MembershipFallback) ----------------------------

    def handles(self, key: str) -> bool:
        """Whether ``key`` (a ``member_of`` key, without prefix) is a roster kept here."""
        return _ROSTER.fullmatch(key) is not None

    async def is_member(self, key: str, user: str) -> bool:
        """Asked when the roster set is missing: rebuild it from the store and answer."""
        found = _ROSTER.fullmatch(key)
        return found is not None and user in await self.members(found["room"])

    # -- reads -------------------------------------------------------------------------------

    async def members(self, room: str) -> list[str]:
        """The room's members, sorted (from the roster; rebuilt from the store if lost)."""
        return await self._cached(
            lambda: self.cache.members(room),
            self.cache.roster_key(room),
            self._keys.roster_version(room),
            lambda: self._members_from_store(room),
        )

    async def rooms_of(self, user: str) -> list[str]:
        """The rooms ``user`` belongs to, sorted (rebuilt from the store if lost)."""
        return await self._cached(
            lambda: self.cache.rooms_of(user),
            self._keys.user_rooms(user),
            self._keys.user_rooms_version(user),
            lambda: self.store.rooms_of(user),
        )

    async def sizes(self, rooms: Sequence[str]) -> list[int]:
        """How many members each room has (one round trip while the rosters are cached; a
        lost one is rebuilt)."""
        counts = await self.cache.sizes(rooms)
        return [
            len(await self.members(room)) if count is None else count
            for room, count in zip(rooms, counts, strict=True)
        ]

    async def _members_from_store(self, room: str) -> list[str]:
        return [member.user for member in await self.store.members(room)]

    async def _cached(
        self, cached: _Cached, key: str, version_key: str, load: _Loader
    ) -> list[str]:
        found = await cached()
        if found is not None:
            return found
        version = await self._redis.get(version_key)
        loaded = await load()
        ttl = self._ttl_s if loaded else self._empty_ttl_s
        await self._rebuild(keys=[key, version_key], args=[as_bytes(version or b"0"), ttl, *loaded])
        return sorted(loaded)

    # -- changes (made in the store already) -------------------------------------------------

    async def joined(self, room: str, users: list[str]) -> None:
        await self._apply("add", room, users)

    async def left(self, room: str, user: str) -> None:
        await self._apply("rem", room, [user])

    async def _apply(self, op: str, room: str, users: list[str]) -> None:
        if not users:
            return
        keys = [self.cache.roster_key(room), self._keys.roster_version(room)]
        for user in users:
            keys += [self._keys.user_rooms(user), self._keys.user_rooms_version(user)]
        await self._change(keys=keys, args=[op, room, self._ttl_s, *users])
