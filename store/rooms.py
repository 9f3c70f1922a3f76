"""Rooms, their members and read pointers: the durable side of chat rooms, and the contract
every backend meets (`RoomStore`; SQLite in `rooms_sqlite.py`, MongoDB in `rooms_mongo.py`).

The gateway keeps a cache of this in Redis (membership for the ACL, read pointers for unread
counts) and rebuilds it from here whenever Redis has lost it: this is the truth. Semantics
every backend honours (tests/store/test_rooms_contract.py checks them):

- `create_room` stores a room and its first members at once; a room id that exists already
  changes nothing (returns False): one-to-one rooms have one id per pair, whoever opens them.
- `add_members` skips users who are members already and returns the ones it added, in the
  order given; it raises `RoomFullError` (adding nobody) when the room would then have more
  than ``limit`` members, and `RoomNotFoundError` for an unknown room.
- `remove_member` returns whether the user was a member.
- `members` lists a room's members by join time, then user id; `rooms_of` a user's room ids,
  sorted.
- `set_read_pointer` only ever moves a (room, user) pointer forward and returns the stored
  value; pointers exist for any room id, in the store's rooms or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import msgspec

RoomKind = Literal["group", "direct"]
Role = Literal["owner", "member"]


class Room(msgspec.Struct, frozen=True):
    """A room. ``lang`` and ``owner`` are "" when there is none (one-to-one rooms have no
    owner)."""

    id: str
    kind: RoomKind
    name: str
    lang: str
    owner: str
    created_at: int
    """Epoch milliseconds."""


class Member(msgspec.Struct, frozen=True):
    room: str
    user: str
    role: Role
    joined_at: int
    """Epoch milliseconds."""


class RoomFullError(Exception):
    """Adding these members would put the room over its limit; nobody was added."""

    def __init__(self, room: str, limit: int, count: int) -> None:
        super().__init__(f"room {room} has {count} members; the limit is {limit}")
        self.room = room
        self.limit = limit
        self.count = count


class RoomNotFoundError(LookupError):
    """No room has this id."""


@runtime_checkable
class RoomStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_room(self, room: Room, members: Sequence[Member]) -> bool: ...

    async def room(self, room_id: str) -> Room | None: ...

    async def rooms(self, room_ids: Sequence[str]) -> list[Room]:
        """The rooms of these ids that exist, in no particular order."""
        ...

    async def add_members(
        self, room: str, members: Sequence[Member], *, limit: int
    ) -> list[str]: ...

    async def remove_member(self, room: str, user: str) -> bool: ...

    async def members(self, room: str) -> list[Member]: ...

    async def rooms_of(self, user: str) -> list[str]: ...

    async def set_read_pointer(self, room: str, user: str, message_id: int) -> int: ...

    async def read_pointers(self, room: str) -> dict[str, int]:
        """Every stored pointer of ``room``: user -> message id."""
        ...

    async def pointers_of(self, user: str, rooms: Sequence[str]) -> dict[str, int]:
        """``user``'s stored pointers in ``rooms``: room -> message id (absent: none)."""
        ...
