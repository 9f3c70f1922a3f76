"""The store contracts the chat layer reads and writes through.

Implemented by the top-level ``store`` package (SQLite, MongoDB); tests use in-memory fakes.
The contracts are structural:

* `MessageReader`: history (any object whose ``history`` returns a sequence of objects with
  the `StoredMessageLike` attributes conforms); `HistoryStore` adds the counts exact unread
  counts need (``store``'s `MessageCounts`);
* `ReadPointerStore`: the durable read pointers (``store``'s `RoomStore` has them);
* `RoomStore` and its records, re-exported from ``store.rooms``; `ProfileStore` (preferred
  languages) and `TranslationStore` (messages' translations), from ``store``.

The concrete message record is ``store``'s `StoredMessage`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from store.base import StoredMessage
from store.profiles import Profile, ProfileStore
from store.rooms import Member, Room, RoomFullError, RoomNotFoundError, RoomStore
from store.translations import StoredTranslation, TranslationStore

__all__ = [
    "HistoryStore",
    "Member",
    "MessageReader",
    "Profile",
    "ProfileStore",
    "ReadPointerStore",
    "Room",
    "RoomFullError",
    "RoomNotFoundError",
    "RoomStore",
    "StoredMessage",
    "StoredMessageLike",
    "StoredTranslation",
    "TranslationStore",
]


class StoredMessageLike(Protocol):
    """What the chat layer reads from a stored message."""

    @property
    def id(self) -> int: ...

    @property
    def room(self) -> str: ...

    @property
    def sender(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def sent_at(self) -> int: ...

    @property
    def event(self) -> bytes:
        """The exact chat.message.v1 JSON as published."""
        ...


class MessageReader(Protocol):
    async def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> Sequence[StoredMessageLike]:
        """Keyset pagination over a room's messages.

        ``before``: newest first, ids < ``before``. ``after``: ascending, ids > ``after``.
        Neither: newest first. At most ``limit`` messages. (The chat layer never passes both.)
        """
        ...


class HistoryStore(MessageReader, Protocol):
    """History plus what exact unread counts read (see `gateway.chat.read_state`)."""

    async def count(self, room: str | None = None, *, upto: int | None = None) -> int:
        """Messages stored of ``room`` (with ``upto``: with id <= ``upto``)."""
        ...

    async def newest_id(self, room: str, *, sender: str) -> int | None:
        """The newest stored message ``sender`` posted in ``room``."""
        ...


class ReadPointerStore(Protocol):
    """The durable read pointers: they only move forward."""

    async def set_read_pointer(self, room: str, user: str, message_id: int) -> int: ...

    async def read_pointers(self, room: str) -> dict[str, int]: ...

    async def pointers_of(self, user: str, rooms: Sequence[str]) -> dict[str, int]: ...
