"""What the notify worker needs to know about rooms and users, as three small protocols.

- `Members.members_of(room)`: the room's members (user ids).
- `Presence.is_online(user)`: whether the user has a live session anywhere.
- `Unread.unread(user, room)` / `last_read(user, room)`: the user's unread count in the room
  and the id of the last message they read there (None: never read).

The worker codes against these only. The Redis-backed classes below read what the gateway
keeps today:

- `RedisMembers`: the set `{membership prefix}room:{room}:members` (the ACL's `member_of`
  sets; examples/acl.toml);
- `RedisUnread`: the read pointer hash `{prefix}read:{room}:{user}` (`id`, `seq`) and the room
  counter `{prefix}room:{room}:seq` (gateway/chat/read_state.py: unread = counter - seq);
- `RedisPresence`: the key `{prefix}presence:{user}`, present while the user is online. This
  one is a stand-in: the presence service (the issue's point 1) replaces it with its own
  reader of who is online, behind the same protocol.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis


class Members(Protocol):
    async def members_of(self, room: str) -> set[str]: ...


class Presence(Protocol):
    async def is_online(self, user: str) -> bool: ...


class Unread(Protocol):
    async def unread(self, user: str, room: str) -> int: ...

    async def last_read(self, user: str, room: str) -> int | None: ...


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisMembers:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def members_of(self, room: str) -> set[str]:
        members = await self._redis.smembers(f"{self._prefix}room:{room}:members")
        return {_text(m) for m in members}


class RedisPresence:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def is_online(self, user: str) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}presence:{user}"))


class RedisUnread:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def unread(self, user: str, room: str) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(f"{self._prefix}room:{room}:seq")
            pipe.hget(f"{self._prefix}read:{room}:{user}", "seq")
            room_seq, seq = await pipe.execute()
        return max(int(room_seq or 0) - int(seq or 0), 0)

    async def last_read(self, user: str, room: str) -> int | None:
        value = await self._redis.hget(f"{self._prefix}read:{room}:{user}", "id")
        return None if value is None else int(_text(value))
