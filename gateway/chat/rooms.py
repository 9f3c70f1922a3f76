"""Rooms people belong to: the rules of the rooms API, over the room store and its caches.

- A *group* room is made by any user, who becomes its owner and a member, with the members
  they name (at most ``group_limit`` in all), a name and a preferred language. Its id is
  ``g-`` and 20 random hex digits.
- The *one-to-one* room of two users has one id per pair, whoever opens it: ``dm-`` and the
  first 40 hex digits of SHA-256 over the two user ids, sorted, joined by a NUL (no user id
  holds one). Opening it again makes both members again if one had left.
- Who may add and remove members: the room's owner, or a user with the ``admin`` role
  (`may_manage`). Anyone may remove themselves (leave). One-to-one rooms take no members.
- Who may list a room's members: its members and admins.
- A member who joins starts with the room read up to its newest message (nothing before
  their joining counts as unread for them).

Every change is made in the store first, then in the Redis caches (`Membership`), then
published to the room as an event (chat.member_joined.v1, chat.member_left.v1). A removal is
then announced to every node (``on_removed``), which ends the removed user's live
subscriptions to the room and forgets the ACL's cached answer.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.chat import events
from gateway.chat.destinations import room_topic
from gateway.chat.errors import (
    DirectRoomError,
    NotAllowedError,
    NotAMemberError,
    RoomFullClientError,
    RoomNotFoundClientError,
    StoreBehindError,
)
from gateway.chat.layer import ChatLayer, PublishFn
from gateway.chat.membership import Membership
from gateway.chat.store_api import Member, Room, RoomFullError, RoomNotFoundError, RoomStore
from schemas.models import RoomCreate

ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls the rooms API: the authenticated user and their token roles."""

    user: str
    roles: frozenset[str] = frozenset()

    @property
    def admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def direct_room_id(a: str, b: str) -> str:
    """The one id of the one-to-one room of ``a`` and ``b`` (either order)."""
    first, second = sorted((a, b))
    digest = hashlib.sha256(first.encode() + b"\0" + second.encode()).hexdigest()
    return "dm-" + digest[:40]


def may_manage(actor: Actor, room: Room) -> bool:
    """The rule for adding and removing others: the owner, or the admin role."""
    return actor.admin or (room.owner != "" and actor.user == room.owner)


class RoomService:
    def __init__(
        self,
        *,
        store: RoomStore,
        membership: Membership,
        chat: ChatLayer,
        publish: PublishFn,
        clock: Callable[[], int],
        group_limit: int = 100,
        seen_by_limit: int = 100,
        on_removed: Callable[[str, str], Awaitable[None]] | None = None,
        new_id: Callable[[], str] = lambda: "g-" + secrets.token_hex(10),
    ) -> None:
        self.store = store
        self.membership = membership
        self._chat = chat
        self._publish = publish
        self._clock = clock
        self.group_limit = group_limit
        self.seen_by_limit = seen_by_limit
        self._on_removed = on_removed
        self._new_id = new_id

    # -- changes ---------------------------------------------------------------------------

    async def create_group(self, actor: Actor, request: RoomCreate) -> tuple[Room, list[str]]:
        """A new group room owned by ``actor``; the room and its members."""
        users = list(dict.fromkeys([actor.user, *request.members]))
        if len(users) > self.group_limit:
            raise RoomFullClientError("", self.group_limit, len(users))
        now = self._clock()
        lang = request.lang if isinstance(request.lang, str) else ""
        room = Room(self._new_id(), "group", request.name, lang, actor.user, now)
        members = [
            Member(room.id, user, "owner" if user == actor.user else "member", now)
            for user in users
        ]
        await self.store.create_room(room, members)
        await self._joined(room.id, [(m.user, m.role) for m in members], actor.user, fresh=True)
        return room, users

    async def open_direct(self, actor: Actor, other: str) -> tuple[Room, list[str]]:
        """The one-to-one room of ``actor`` and ``other``, made (or both made members again)
        if need be; the room and its members."""
        if other == actor.user:
            raise DirectRoomError("cannot open a one-to-one room with yourself")
        room_id = direct_room_id(actor.user, other)
        now = self._clock()
        pair = sorted((actor.user, other))
        members = [Member(room_id, user, "member", now) for user in pair]
        room = Room(room_id, "direct", "", "", "", now)
        if await self.store.create_room(room, members):
            await self._joined(room_id, [(u, "member") for u in pair], actor.user, fresh=True)
            return room, pair
        stored = await self.store.room(room_id)
        assert stored is not None  # create_room found it
        added = await self.store.add_members(room_id, members, limit=2)
        await self._joined(room_id, [(u, "member") for u in added], actor.user)
        return stored, pair

    async def add_members(self, actor: Actor, room_id: str, users: Sequence[str]) -> list[str]:
        """Add ``users`` (owner or admin only); those who were not members yet."""
        room = await self._room(room_id)
        if room.kind == "direct":
            raise DirectRoomError("a one-to-one room takes no other members")
        if not may_manage(actor, room):
            raise NotAllowedError(room_id, "add members")
        now = self._clock()
        members = [Member(room_id, user, "member", now) for user in users]
        try:
            added = await self.store.add_members(room_id, members, limit=self.group_limit)
        except RoomFullError as exc:
            raise RoomFullClientError(room_id, exc.limit, exc.count + len(users)) from None
        except RoomNotFoundError:
            raise RoomNotFoundClientError(room_id) from None
        await self._joined(room_id, [(user, "member") for user in added], actor.user)
        return added

    async def remove_member(self, actor: Actor, room_id: str, user: str) -> None:
        """Remove ``user`` (owner or admin; anyone may remove themselves: leave)."""
        room = await self._room(room_id)
        if user != actor.user and not may_manage(actor, room):
            raise NotAllowedError(room_id, "remove members")
        if not await self.store.remove_member(room_id, user):
            raise NotAMemberError(room_id, user)
        await self.membership.left(room_id, user)
        reason = "left" if user == actor.user else "removed"
        event = events.member_event(
            "member-left", room=room_id, user=user, reason=reason, by=actor.user, at=self._clock()
        )
        await self._publish(room_topic(room_id), events.event_headers("member-left", user), event)
        if self._on_removed is not None:
            await self._on_removed(room_id, user)

    async def _joined(
        self, room_id: str, joined: list[tuple[str, str]], by: str, *, fresh: bool = False
    ) -> None:
        """After the store: caches, read pointers (at the newest message), then the events."""
        if not joined:
            return
        await self.membership.joined(room_id, [user for user, _ in joined])
        read_state = self._chat.read_state
        await read_state.ensure_counter(room_id)
        # A new room has nothing to read (its pointers are made when first asked for).
        newest = None if fresh else await self._newest_id(room_id)
        if newest is not None:
            for user, _ in joined:
                await read_state.mark_read(user, room_id, newest)
        topic = room_topic(room_id)
        for user, role in joined:
            event = events.member_event(
                "member-joined", room=room_id, user=user, role=role, by=by, at=self._clock()
            )
            await self._publish(topic, events.event_headers("member-joined", user), event)

    async def _newest_id(self, room_id: str) -> int | None:
        try:
            entries = await self._chat.history.before(room_id, None, 1)
        except StoreBehindError:
            return None
        return entries[-1].id if entries else None

    # -- reads -----------------------------------------------------------------------------

    async def _room(self, room_id: str) -> Room:
        room = await self.store.room(room_id)
        if room is None:
            raise RoomNotFoundClientError(room_id)
        return room

    async def room(self, actor: Actor, room_id: str) -> tuple[Room, list[str]]:
        """A room and its members (members and admins only)."""
        room = await self._room(room_id)
        users = await self.membership.members(room_id)
        if actor.user not in users and not actor.admin:
            raise NotAllowedError(room_id, "see this room")
        return room, users

    async def members(
        self, actor: Actor, room_id: str
    ) -> tuple[list[Member], dict[str, int] | None]:
        """A room's members by join time (members and admins only), and their read pointers
        when the room has at most ``seen_by_limit`` members."""
        await self._room(room_id)
        members = await self.store.members(room_id)
        users = [m.user for m in members]
        if actor.user not in users and not actor.admin:
            raise NotAllowedError(room_id, "see this room")
        pointers = None
        if len(users) <= self.seen_by_limit:
            pointers = await self._chat.read_state.pointers(room_id, users)
        return members, pointers

    async def seen_by(self, room_id: str) -> dict[str, int] | None:
        """The members' read pointers of a room of the rooms API of at most
        ``seen_by_limit`` members (None otherwise)."""
        users = await self.membership.members(room_id)
        if not users or len(users) > self.seen_by_limit:
            return None
        return await self._chat.read_state.pointers(room_id, users)

    async def unread_snapshot(self, user: str) -> list[dict[str, Any]]:
        """The unread counts of all of ``user``'s rooms (chat.unread_snapshot.v1 entries)."""
        return [
            events.unread_entry(room=c.room, unread=c.unread, read_id=c.read_id, last_id=c.last_id)
            for c in await self._chat.unread_counts.snapshot(user)
        ]

    async def my_rooms(self, user: str) -> list[dict[str, Any]]:
        """The rooms ``user`` belongs to, by id, as rooms.list.v1 entries: unread count, read
        pointer, newest message."""
        ids = await self.membership.rooms_of(user)
        if not ids:
            return []
        rooms = {room.id: room for room in await self.store.rooms(ids)}
        counts = {c.room: c for c in await self._chat.unread_counts.of(user, list(rooms))}
        listed: list[dict[str, Any]] = []
        for room_id in sorted(rooms):
            room = rooms[room_id]
            count = counts.get(room_id)
            entry = room_entry(room)
            entry["unread"] = count.unread if count else 0
            entry["read_id"] = str(count.read_id if count else 0)
            last = await self._last_message(room_id)
            if last is not None:
                entry["last_message"] = last
            listed.append(entry)
        return listed

    async def _last_message(self, room_id: str) -> Any:
        """The newest message (chat.message.v1, parsed): the cache, else the store."""
        cached = await self._chat.recent.before(room_id, None, 1)
        if cached:
            return orjson.loads(cached[0].event)
        try:
            entries = await self._chat.history.before(room_id, None, 1)
        except StoreBehindError:
            return None
        return orjson.loads(entries[-1].event) if entries else None


def room_entry(room: Room) -> dict[str, Any]:
    """The fields of rooms.room.v1 (and of a rooms.list.v1 entry) a room gives."""
    entry: dict[str, Any] = {
        "id": room.id,
        "kind": room.kind,
        "name": room.name,
        "created_at": room.created_at,
    }
    if room.lang:
        entry["lang"] = room.lang
    if room.owner:
        entry["owner"] = room.owner
    return entry


__all__ = ["Actor", "RoomService", "direct_room_id", "may_manage", "room_entry"]
