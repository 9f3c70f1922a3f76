"""What the notify worker needs to know about rooms and users, as three small protocols.

- `Members.members_of(room)`: the room's members (user ids).
- `Presence.is_online(user)`: whether the user has a live session anywhere.
- `Unread.unread(user, room)` / `last_read(user, room)`: the user's unread count in the room
  and the id of the last message they read there (None: never read).

The worker codes against these only. What it reads by default is the gateway's own live
state, through the readers the two share (`chatstate`: one key layout, one query each):
`chatstate.membership.RoomMembers` (the room's roster, or the room store's members when Redis
has lost it), `chatstate.presence.PresenceReader` (a session on a node whose lease runs) and
`chatstate.unread.UnreadReader` (the exact count the rooms API shows; see there for what a
pointer Redis has lost counts as).
"""

from __future__ import annotations

from typing import Protocol


class Members(Protocol):
    async def members_of(self, room: str) -> set[str]: ...


class Presence(Protocol):
    async def is_online(self, user: str) -> bool: ...


class Unread(Protocol):
    async def unread(self, user: str, room: str) -> int: ...

    async def last_read(self, user: str, room: str) -> int | None: ...
