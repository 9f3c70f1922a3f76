"""Unread counts and read pointers, as Redis keeps them, read (nothing is written here).

The gateway's chat layer keeps them (`gateway.chat.read_state` says what they mean and how
they stay exact): every accepted post takes the next room ordinal (``room:<r>:seq``); a
user's read pointer ``read:<r>:<u>`` is {id, seq}, seq being how many ordinals belong to ids
up to the pointer; an ordinal that never became a message is a hole (``room:<r>:holes``). So

    unread = room counter - pointer seq - holes with an id above the pointer

One Lua step (`UNREAD_MANY`) reads that for many rooms at once: the rooms given, or every
room of the user's rooms set (`chatstate.membership`). A row is *exact* when Redis has both
the room's counter and the user's pointer. Otherwise it is *cold*: the gateway rebuilds what
is missing from the store and asks again (`gateway.chat.unread`); a reader that cannot (the
notify worker) takes the row as it is: a missing pointer counts as nothing read (exact for a
member who never read nor posted there, too high if Redis lost a pointer), a missing counter
as no message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys, lua_key_function

__all__ = ["UNREAD_MANY", "UnreadReader", "UnreadRow"]

UNREAD_MANY = "\n".join(
    (
        """
-- KEYS: the user's rooms set (a cache with the member '' as its marker; see
--       chatstate.membership). ARGV: key prefix, user, room ids (none: the set's)
-- Per room, 5 values: room, state, unread, pointer id ('' if none), newest cached id ('' if
-- none). State 1: exact; 0: cold (no counter or no pointer; unread then counts a missing
-- pointer as nothing read, a missing counter as no message). Returns {-1} when the rooms set
-- is missing (rebuild it from the store first). The keys of each room are built here (the
-- functions below are ChatKeys'): this needs a Redis whose keys all live on one node (no
-- Redis Cluster).
local prefix, user = ARGV[1], ARGV[2]
""",
        lua_key_function("room_seq_key", ChatKeys.room_seq, "room"),
        lua_key_function("read_key", ChatKeys.read, "room", "user"),
        lua_key_function("recent_key", ChatKeys.recent, "room"),
        lua_key_function("holes_key", ChatKeys.holes, "room"),
        """
local rooms
if #ARGV > 2 then
  rooms = {}
  for i = 3, #ARGV do rooms[#rooms + 1] = ARGV[i] end
else
  if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
  rooms = redis.call('SMEMBERS', KEYS[1])
end
local out = {}
for _, room in ipairs(rooms) do
  if room ~= '' then
    local room_seq = redis.call('GET', room_seq_key(room))
    local pointer = redis.call('HMGET', read_key(room, user), 'id', 'seq')
    local newest = redis.call('ZRANGE', recent_key(room), -1, -1)
    local last = ''
    if #newest > 0 then last = string.match(newest[1], '^0*(%d+):') end
    local unread = 0
    if room_seq then
      local id, seq = pointer[1] or '0', pointer[2] or '0'
      local padded = string.rep('0', 19 - #id) .. id
      local holes = redis.call('ZLEXCOUNT', holes_key(room), '(' .. padded, '+')
      unread = tonumber(room_seq) - tonumber(seq) - holes
      if unread < 0 then unread = 0 end
    end
    out[#out + 1] = room
    out[#out + 1] = (room_seq and pointer[1]) and 1 or 0
    out[#out + 1] = unread
    out[#out + 1] = pointer[1] or ''
    out[#out + 1] = last
  end
end
return out
""",
    )
)

_FIELDS = 5


@dataclass(frozen=True, slots=True)
class UnreadRow:
    room: str
    exact: bool
    """Redis had the room's counter and the user's pointer (see the module docstring)."""
    unread: int
    read_id: int
    """The user's read pointer (0: nothing read, or not in Redis)."""
    last_id: int | None
    """The room's newest message id in the recent cache (None: the cache is empty)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class UnreadReader:
    def __init__(self, redis: aioredis.Redis, keys: ChatKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._many = redis.register_script(UNREAD_MANY)

    async def rows(self, user: str, rooms: Sequence[str] = ()) -> list[UnreadRow] | None:
        """A row per room of ``rooms`` (none given: per room of the user's rooms set), in the
        set's order; None when no rooms are given and the user's rooms set is missing."""
        reply = await self._many(
            keys=[self._keys.user_rooms(user)], args=[self._keys.prefix, user, *rooms]
        )
        if reply and not isinstance(reply[0], bytes | str) and int(reply[0]) == -1:
            return None
        rows = []
        for i in range(0, len(reply), _FIELDS):
            room, state, unread, read_id, last = (_text(v) for v in reply[i : i + _FIELDS])
            rows.append(
                UnreadRow(
                    room, state == "1", int(unread), int(read_id or 0), int(last) if last else None
                )
            )
        return rows

    async def unread(self, user: str, room: str) -> int:
        """The user's unread count in ``room`` (the row's, exact or not)."""
        [row] = await self.rows(user, [room]) or []
        return row.unread

    async def last_read(self, user: str, room: str) -> int | None:
        """The id of the last message the user read in ``room`` (None: none, as Redis has
        it)."""
        value = await self._redis.hget(self._keys.read(room, user), "id")
        if value is None:
            return None
        return int(_text(value)) or None
