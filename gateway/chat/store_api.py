"""The message-store contract the chat layer reads history through.

Implemented by the top-level ``store`` package (SQLite, MongoDB); tests use an in-memory
fake. The contract is structural: any object whose ``history`` returns a sequence of
objects with the `StoredMessageLike` attributes conforms. The concrete record is
``store``'s `StoredMessage`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from store.base import StoredMessage

__all__ = ["MessageReader", "StoredMessage", "StoredMessageLike"]


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
