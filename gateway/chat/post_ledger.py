"""Redis side of posting a message: idempotency on the client id, and the recent cache.

A post goes through three states, each one atomic Lua step:

1. ``reserve``: unless ``{prefix}client:{user}:{client_id}`` exists, pick the post's id,
   set the key to ``p<id>`` (pending, short TTL), take the next room ordinal, add the message
   to the recent cache and trim it, and move the poster's read pointer to the post. If the
   key exists, report the earlier id (``<id>``: done; ``p<id>``: in flight).
   The id is the candidate the node's generator issued, unless the room already holds an id
   at least as high (a node whose clock is ahead posted there, or a concurrent post got
   there first) or the node issued one as high in another room: then it is the smallest id
   of the same node above both, picked inside the same Lua step. So ids rise with the room
   ordinal, whatever the clocks of the nodes and however posts interleave, a device's
   highest id is a sound catch-up cursor, and no post ever has to try again for an id. The
   event is built from a `MessageTemplate` in that step too (its id and ``sent_at``). A room
   with no counter (it never had a post, or Redis lost it) reserves nothing: the ledger sets
   the counter (from the store) and reserves again.
2. ``confirm`` (after the broker confirmed the publish): the key becomes ``<id>`` for
   ``idempotency_ttl_s`` (the gateway's ``--post-idempotency-ttl``, 24 h by default), so a
   retry with the same client id within it gets the original id and publishes nothing.
3. ``abort`` (the publish failed): delete the key if still ours and take the message out of
   the cache, so a retry goes through as new; its ordinal becomes a hole (unread counts skip
   it).

A retry that finds the key pending (the first attempt's node died between 1 and 2, or its
publish is still in flight) *takes the post over*: it publishes the same message again, with
the same id and the exact cached bytes, and confirms (``confirm_takeover``). The message is
stored once (the store is idempotent on the id) and a live subscriber may see the id twice
(the same message: clients de-duplicate by id). After ``pending_ttl_ms`` without a retry the
pending key expires; a later retry then gets a new id (the persist worker's idempotency on
(sender, client id) still keeps one copy).

With ``track_unstored`` (the gateway reads history from a store) the same steps keep the
bookkeeping of `gateway.chat.unstored`: ``reserve`` records the post as in flight and moves
every id it trims out of the cache into the room's unstored set; ``confirm`` and
``confirm_takeover`` clear the in-flight mark (a takeover also records its message as
unstored when the cache does not hold it); ``abort`` removes the message from both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat import lua
from gateway.chat.events import MessageTemplate
from gateway.chat.recent import as_bytes, encode_member, id_key
from gateway.chat.snowflake import EPOCH_MS, parse


@dataclass(frozen=True, slots=True)
class Reserved:
    """The post is new, under ``message_id``; ``member`` is its recent-cache entry."""

    message_id: int
    ordinal: int
    member: bytes
    event: bytes
    """The chat.message.v1 the post is published as."""
    unstored: int = 0
    """How many ids of the room await the store (0 when not tracked)."""


@dataclass(frozen=True, slots=True)
class Existing:
    """The client id was used before: ``message_id`` is the earlier id."""

    message_id: int
    pending: bool


class PostLedger:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: ChatKeys,
        *,
        recent_limit: int,
        recent_ttl_s: int,
        pending_ttl_ms: int,
        idempotency_ttl_s: int,
        track_unstored: bool = True,
        count_room: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        """``count_room(room)`` sets the room's ordinal counter when it has none (see
        `gateway.chat.read_state.ReadState.ensure_counter`); by default it starts at 0."""
        self._keys = keys
        self._count_room = count_room or self._zero
        self._track = b"1" if track_unstored else b"0"
        self._recent_limit = recent_limit
        self._recent_ttl_s = recent_ttl_s
        self._pending_ttl_ms = pending_ttl_ms
        self._idempotency_ttl_s = idempotency_ttl_s
        self._reserve = redis.register_script(lua.RESERVE_POST)
        self._confirm = redis.register_script(lua.CONFIRM_POST)
        self._abort = redis.register_script(lua.ABORT_POST)
        self._takeover = redis.register_script(lua.TAKEOVER_CONFIRM)
        self._redis = redis

    async def reserve(
        self, *, user: str, client_id: str, room: str, candidate: int, event: MessageTemplate
    ) -> Reserved | Existing:
        """Reserve the post under ``candidate`` or, if the room or the candidate's node has
        an id as high, the smallest id of that node above them (see above)."""
        keys = [
            self._keys.client(user, client_id),
            self._keys.recent(room),
            self._keys.room_seq(room),
            self._keys.unstored(room),
            self._keys.inflight(room),
            self._keys.read(room, user),
            self._keys.node_last_id(parse(candidate).node),
        ]
        args: list[bytes | int] = [
            self._pending_ttl_ms,
            id_key(candidate),
            event.head,
            event.middle,
            event.tail,
            self._recent_limit,
            self._recent_ttl_s,
            self._track,
            EPOCH_MS,
        ]
        status, *values = await self._reserve(keys=keys, args=args)
        if int(status) == 3:  # no counter yet: set it (from the store), then reserve again
            await self._count_room(room)
            status, *values = await self._reserve(keys=keys, args=args)
        value, *rest = values
        if int(status):
            ordinal, message_id = int(value), int(as_bytes(rest[1]))
            body = event.fill(message_id)
            member = encode_member(message_id, ordinal, body)
            return Reserved(message_id, ordinal, member, body, int(rest[0]))
        raw = as_bytes(value)
        pending = raw.startswith(b"p")
        return Existing(int(raw[1:] if pending else raw), pending)

    async def _zero(self, room: str) -> None:
        await self._redis.set(self._keys.room_seq(room), 0, nx=True)

    async def confirm(self, *, user: str, client_id: str, room: str, message_id: int) -> None:
        await self._confirm(
            keys=[self._keys.client(user, client_id), self._keys.inflight(room)],
            args=[
                b"p%d" % message_id,
                b"%d" % message_id,
                self._idempotency_ttl_s,
                id_key(message_id),
            ],
        )

    async def cached_member(self, room: str, message_id: int) -> bytes | None:
        """The recent-cache entry of ``message_id``, if the cache still has it."""
        low = id_key(message_id)
        members = await self._redis.zrangebylex(
            self._keys.recent(room), b"[" + low + b":", b"(" + low + b";", start=0, num=1
        )
        return as_bytes(members[0]) if members else None

    def _settle_keys(self, user: str, client_id: str, room: str) -> list[str]:
        """The keys a pending post is settled with (taken over, or aborted)."""
        keys = self._keys
        return [
            keys.client(user, client_id),
            keys.recent(room),
            keys.unstored(room),
            keys.inflight(room),
            keys.holes(room),
        ]

    async def confirm_takeover(
        self, *, user: str, client_id: str, room: str, message_id: int, member: bytes | None
    ) -> None:
        """After a retry republished a post still pending (its first attempt died)."""
        await self._takeover(
            keys=self._settle_keys(user, client_id, room),
            args=[
                b"p%d" % message_id,
                b"%d" % message_id,
                self._idempotency_ttl_s,
                member or b"",
                id_key(message_id),
                self._recent_ttl_s,
                self._track,
            ],
        )

    async def abort(self, *, user: str, client_id: str, room: str, reserved: Reserved) -> None:
        await self._abort(
            keys=self._settle_keys(user, client_id, room),
            args=[b"p%d" % reserved.message_id, reserved.member, id_key(reserved.message_id)],
        )
