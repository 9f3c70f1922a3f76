"""Read pointers and exact unread counts.

What they mean
--------------
A user's read pointer in a room is the id of the last message they have read; it only
moves forward. ``/read`` moves it, and so does posting: the poster has read everything up to
their own message, so a user's own messages are never unread (and a device that sees its
user's post knows the room is read up to there). ``unread(user, room)`` is the number of the
room's messages with an id above the pointer.

How they are counted
--------------------
Nothing fans out per member when a message arrives. Every accepted post takes the next room
ordinal (``room:{r}:seq``, in the reserve step, `gateway.chat.post_ledger`), and ids rise with
the ordinal (the reserve step refuses an id below the room's newest), so the ordinals of the
ids up to a pointer are exactly 1..``seq``. An ordinal that never became a message (its
publish failed, or the post was found dead) is a *hole* (``room:{r}:holes``, by id). So::

    unread = room counter - pointer seq - holes with an id above the pointer

three reads per room (one Lua step for many rooms: `gateway.chat.unread`). A pointer is the
hash ``read:{r}:{u}`` {id, seq}; its seq is found when it moves (Lua `MARK_READ`):

* from the recent cache: the ordinal of the newest cached message at or below the pointer,
  plus the holes between that message and the pointer;
* below the cache, from the store: the stored messages with id <= pointer plus the holes
  up to it. Exact when the store has every message up to the pointer; when it lacks one (the
  unstored set, `gateway.chat.unstored`, still has an id at or below the pointer after a
  prune) the count is refused with `StoreBehindError` rather than guessed.

What Redis loses, the store rebuilds: each pointer that moves is written to the store
(`ReadPointerStore`, forward-only) and every message is stored by the persist worker. A
pointer Redis does not have is rebuilt as the later of the stored pointer and the user's
newest stored message (`warm`); a room counter Redis does not have is set to the number of
stored messages (`ensure_counter`), so counts stay exact after a restart of everything,
provided the persist worker has stored what was published before it.

Without a store (recent cache only) the counter starts at 0 and a pointer below the cache is
counted from the oldest cached message: a lower bound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat import lua
from gateway.chat.errors import StoreBehindError
from gateway.chat.recent import as_bytes, decode_member, id_key
from gateway.chat.store_api import HistoryStore, ReadPointerStore
from gateway.chat.unstored import UnstoredSet

log = logging.getLogger("stompgate.chat")

#: Rounds of one pointer step that may find something to set up first (counter, pointer,
#: the store's ordinal); each round sets up one of them.
MAX_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class ReadPointer:
    moved: bool
    message_id: int
    unread: int
    last_id: int | None = None
    """The room's newest cached message id when counted (None: the cache is empty)."""


class ReadState:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: ChatKeys,
        *,
        store: HistoryStore | None = None,
        pointers: ReadPointerStore | None = None,
        unstored: UnstoredSet | None = None,
        prune: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``prune(room)`` drops from the unstored set what the store has by now (the chat
        layer's); pointers below the cache read the store only once it has caught up."""
        self._redis = redis
        self._keys = keys
        self._store = store
        self._pointers = pointers
        self._unstored = unstored or UnstoredSet(redis, keys)
        self._prune = prune
        self._mark = redis.register_script(lua.MARK_READ)

    async def ensure_counter(self, room: str) -> None:
        """Give the room its ordinal counter if it has none: the number of stored messages
        (0 without a store: a new room)."""
        key = self._keys.room_seq(room)
        if await self._redis.exists(key):
            return
        count = 0 if self._store is None else await self._store.count(room)
        await self._redis.set(key, count, nx=True)

    async def mark_read(self, user: str, room: str, message_id: int) -> ReadPointer:
        """Move the pointer forward to ``message_id`` (at most to the newest cached message);
        the pointer and the count after it. A moved pointer is written to the store too."""
        result = await self._step(user, room, message_id, b"read")
        if result.moved and self._pointers is not None:
            try:
                await self._pointers.set_read_pointer(room, user, result.message_id)
            except Exception:  # Redis has it; the store gets the next move
                log.warning("could not store the read pointer of %s in %s", user, room)
        return result

    async def warm(self, user: str, room: str) -> None:
        """Rebuild the pointer from the store if Redis has none (after Redis lost it, or for
        a user who never read nor posted there: then 0)."""
        stored = 0
        if self._pointers is not None:
            stored = (await self._pointers.pointers_of(user, [room])).get(room, 0)
        if self._store is not None:
            stored = max(stored, await self._store.newest_id(room, sender=user) or 0)
        await self._step(user, room, stored, b"warm")

    async def pointer(self, user: str, room: str) -> int | None:
        """The user's read pointer in the room, if any (as Redis has it)."""
        value = await self._redis.hget(self._keys.read(room, user), "id")
        pointer = None if value is None else int(as_bytes(value))
        return pointer or None

    async def pointers(self, room: str, users: Sequence[str]) -> dict[str, int]:
        """The read pointers of ``users`` in ``room`` (those who have read something); the
        ones Redis lost are rebuilt from the store first."""
        found = await self._read_pointers(room, users)
        missing = [user for user in users if user not in found]
        if not missing:
            return {user: pointer for user, pointer in found.items() if pointer}
        for user in missing:
            await self.warm(user, room)
        found = await self._read_pointers(room, users)
        return {user: pointer for user, pointer in found.items() if pointer}

    async def _read_pointers(self, room: str, users: Sequence[str]) -> dict[str, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hget(self._keys.read(room, user), "id")
            values = await pipe.execute()
        return {
            user: int(as_bytes(value))
            for user, value in zip(users, values, strict=True)
            if value is not None
        }

    async def _step(self, user: str, room: str, message_id: int, mode: bytes) -> ReadPointer:
        keys = [
            self._keys.read(room, user),
            self._keys.recent(room),
            self._keys.room_seq(room),
            self._keys.holes(room),
        ]
        store_seq = b""
        for _ in range(MAX_ROUNDS):
            reply = await self._mark(keys=keys, args=[id_key(message_id), mode, store_seq])
            status = int(reply[0])
            if status == -1:
                await self.ensure_counter(room)
            elif status == -2:
                await self.warm(user, room)
            elif status == -3:
                store_seq = b"%d" % await self._store_seq(room, message_id)
            else:
                _, pointer, seq, room_seq, holes, last = reply
                unread = max(int(room_seq) - int(seq) - int(holes), 0)
                newest = as_bytes(last)
                return ReadPointer(
                    bool(status), int(as_bytes(pointer)), unread, int(newest) if newest else None
                )
        raise RuntimeError(f"the read pointer of {user!r} in {room} did not settle")

    async def _store_seq(self, room: str, message_id: int) -> int:
        """How many room ordinals belong to ids <= ``message_id``, when the recent cache has
        no message at or below it: from the store (see the module docstring)."""
        if message_id == 0:
            return 0
        below = self._keys.holes(room), b"-", b"[" + id_key(message_id)
        if self._store is None:  # the oldest cached message and all before it: a lower bound
            oldest = await self._redis.zrange(self._keys.recent(room), 0, 0)
            if oldest:
                return decode_member(oldest[0]).ordinal - 1
            return int(await self._redis.get(self._keys.room_seq(room)) or 0)
        pending = await self._unstored.before(room, message_id + 1, 1)
        if pending and self._prune is not None:
            await self._prune(room)
            pending = await self._unstored.before(room, message_id + 1, 1)
        if pending:
            raise StoreBehindError(room, pending)
        holes = int(await self._redis.zlexcount(*below))
        return await self._store.count(room, upto=message_id) + holes
