"""What presence needs to know of rooms: which rooms a user is in (and how big they are), and
who is in a room.

`RoomsOfUser` is the narrow protocol presence is written against. `RoomMembership` answers it
from the rooms' membership (`gateway.chat.membership.Membership`: the rosters and users' rooms
cached in Redis, rebuilt from the room store when Redis has lost them), so presence is told
to the rooms made through the rooms API. A node without a store has no rooms (`NoRooms`):
presence is then only read on demand, for lists of users.
"""

from __future__ import annotations

from typing import Protocol

from gateway.chat.membership import Membership

__all__ = ["NoRooms", "RoomMembership", "RoomsOfUser"]


class RoomsOfUser(Protocol):
    async def rooms_of(self, user: str) -> list[tuple[str, int]]:
        """(room, number of members) for every room ``user`` is a member of."""
        ...

    async def members(self, room: str) -> list[str]:
        """The members of ``room`` (no order promised)."""
        ...


class RoomMembership:
    def __init__(self, membership: Membership) -> None:
        self._membership = membership

    async def rooms_of(self, user: str) -> list[tuple[str, int]]:
        rooms = await self._membership.rooms_of(user)
        sizes = await self._membership.sizes(rooms)
        return list(zip(rooms, sizes, strict=True))

    async def members(self, room: str) -> list[str]:
        return await self._membership.members(room)


class NoRooms:
    """No room membership (a node without a store): nobody is in any room."""

    async def rooms_of(self, user: str) -> list[tuple[str, int]]:
        return []

    async def members(self, room: str) -> list[str]:
        return []
