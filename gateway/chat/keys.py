"""Redis key names used by the chat layer (all under one configurable prefix).

Room ids never contain ``:`` and client ids never contain ``:``, so user ids (which may)
can sit in the middle or at the end of a key without two keys ever colliding.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatKeys:
    prefix: str

    def recent(self, room: str) -> str:
        """Sorted set: the newest messages of a room (see `gateway.chat.recent`)."""
        return f"{self.prefix}room:{room}:recent"

    def unstored(self, room: str) -> str:
        """Sorted set: ids trimmed out of the recent cache not yet seen in the store (see
        `gateway.chat.unstored`)."""
        return f"{self.prefix}room:{room}:unstored"

    def inflight(self, room: str) -> str:
        """Hash {id (19 digits) -> client key}: posts reserved and not yet confirmed/aborted."""
        return f"{self.prefix}room:{room}:inflight"

    def room_seq(self, room: str) -> str:
        """Counter: the room ordinals handed out, one per accepted post (for unread counts;
        set from the store when Redis has lost it)."""
        return f"{self.prefix}room:{room}:seq"

    def holes(self, room: str) -> str:
        """Sorted set (score 0, members the 19-digit id): posts that took a room ordinal and
        never became a message (aborted, or found dead); unread counts skip them."""
        return f"{self.prefix}room:{room}:holes"

    def roster_version(self, room: str) -> str:
        """Counter: bumped by every membership change of the room, so a rebuild of its
        roster cache from the store never writes back what a change made stale."""
        return f"{self.prefix}roster-v:{room}"

    def user_rooms(self, user: str) -> str:
        """Set: the rooms ``user`` belongs to (a cache of the room store; the member ``''``
        marks it as built, so an empty cache and a lost one differ)."""
        return f"{self.prefix}user-rooms:{user}"

    def user_rooms_version(self, user: str) -> str:
        """Counter: bumped by every change of the user's rooms (see `roster_version`)."""
        return f"{self.prefix}user-rooms-v:{user}"

    def control_channel(self) -> str:
        """Pub/sub channel every node listens to for membership changes."""
        return f"{self.prefix}rooms:control"

    def client(self, user: str, client_id: str) -> str:
        """String: the message id a (user, client message id) pair was given."""
        return f"{self.prefix}client:{user}:{client_id}"

    def read(self, room: str, user: str) -> str:
        """Hash {id, seq}: the user's read pointer in the room, and how many room ordinals
        belong to ids up to it (see `gateway.chat.read_state`)."""
        return f"{self.prefix}read:{room}:{user}"
