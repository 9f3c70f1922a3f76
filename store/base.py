"""The message-store contract: one stored chat message and the interface every backend meets.

The gateway's history reader and the persist worker both code against `MessageStore`; keep it
small. Semantics every backend must honour (the shared test suite in tests/store checks them):

- `insert_many` is idempotent on true duplicates: a message whose `id` is already stored with
  the same room, sender and client id, or whose (`sender`, `client_id`) pair is already stored
  (a client's retry, stamped with a new id), is skipped silently, also within one call. It
  returns how many messages were newly stored.
- A message whose `id` is already stored with a different room, sender or client id is a
  *conflict* (two issuers of one Snowflake id, e.g. two deployments sharing a node-id lease):
  never dropped silently. Every other message of the call is stored as usual, then
  `insert_many` raises `StoreConflictError` naming each conflicting message and the stored
  one it met (`stored` says how many were newly stored).
- `history` pages by keyset on the message id, never by offset:
  `before=X` gives the newest messages with id < X, newest first;
  `after=X` gives the oldest messages with id > X, oldest first (catch-up);
  both give the oldest messages with after < id < before, oldest first (filling a gap);
  neither gives the newest messages, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

#: Message ids are Snowflake ids: positive and below 2**63 (a signed 64-bit integer).
MAX_MESSAGE_ID = 2**63 - 1


class StoredMessage(msgspec.Struct, frozen=True):
    """One chat message as stored; `event` is the exact chat.message.v1 JSON as published."""

    id: int
    room: str
    sender: str
    client_id: str
    sent_at: int
    event: bytes


@runtime_checkable
class MessageStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int: ...

    async def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]: ...

    async def count(self, room: str | None = None) -> int: ...


@runtime_checkable
class MessageCounts(Protocol):
    """What the chat layer's exact unread counts read from a message store (both backends
    implement it beside `MessageStore`)."""

    async def count(self, room: str | None = None, *, upto: int | None = None) -> int:
        """Messages stored (of ``room``; with ``upto``, those with id <= ``upto``)."""
        ...

    async def newest_id(self, room: str, *, sender: str) -> int | None:
        """The id of the newest stored message ``sender`` posted in ``room``, if any."""
        ...


class Conflict(msgspec.Struct, frozen=True):
    """A message the store refused: its id is taken by `existing` (another message)."""

    message: StoredMessage
    existing_room: str
    existing_sender: str
    existing_client_id: str

    def describe(self) -> str:
        m = self.message
        return (
            f"id {m.id}: room {m.room!r} client id {m.sender}/{m.client_id!r} conflicts with"
            f" the stored room {self.existing_room!r} client id"
            f" {self.existing_sender}/{self.existing_client_id!r}"
        )


class StoreConflictError(Exception):
    """`insert_many` met messages whose id another message already has. The rest of the
    call was stored (`stored` of them newly); `conflicts` are not stored."""

    def __init__(self, stored: int, conflicts: Sequence[Conflict]) -> None:
        self.stored = stored
        self.conflicts = tuple(conflicts)
        first = self.conflicts[0].describe() if self.conflicts else "none"
        super().__init__(f"{len(self.conflicts)} message id conflict(s); first: {first}")


def is_same_message(message: StoredMessage, room: str, sender: str, client_id: str) -> bool:
    """Whether a stored (room, sender, client id) under `message.id` is `message` itself."""
    return (message.room, message.sender, message.client_id) == (room, sender, client_id)


class StoreClosedError(RuntimeError):
    """The store was used before `open()` or after `close()`."""


class StoreUnavailableError(RuntimeError):
    """The store cannot do this now, for a reason that passes (the database locked by another
    writer, an I/O error, the disk full): the same call may succeed later. Callers retry
    (the persist worker) or answer "try again" (the history API: 503 with Retry-After)."""


def check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
