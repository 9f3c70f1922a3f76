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
        """Counter: how many messages were ever accepted in the room (for unread counts)."""
        return f"{self.prefix}room:{room}:seq"

    def client(self, user: str, client_id: str) -> str:
        """String: the message id a (user, client message id) pair was given."""
        return f"{self.prefix}client:{user}:{client_id}"

    def read(self, room: str, user: str) -> str:
        """Hash {id, seq}: the user's read pointer in the room and its room ordinal."""
        return f"{self.prefix}read:{room}:{user}"
