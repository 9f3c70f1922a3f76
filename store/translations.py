"""Translations of chat messages, stored with them: the contract every backend meets
(`TranslationStore`; SQLite in `translations_sqlite.py`, MongoDB in `translations_mongo.py`).

The translation worker writes one `StoredTranslation` per (message id, language) after it
published the ``translation`` event; the gateway's history API and catch-up replay read
them with the messages. Semantics every backend honours
(tests/store/test_translations_contract.py checks them):

- `insert` is idempotent on (``message_id``, ``lang``): a second translation of a message
  into a language is skipped (returns False) and the first one is kept;
- `of_messages` returns the translations of the given messages, by message id then language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec


class StoredTranslation(msgspec.Struct, frozen=True):
    """One message in one language; ``event`` is the exact chat.translation.v1 JSON as
    published."""

    message_id: int
    lang: str
    room: str
    provider: str
    event: bytes


@runtime_checkable
class TranslationStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, translation: StoredTranslation) -> bool:
        """Store ``translation``; False when the message has one in that language already."""
        ...

    async def of_messages(self, message_ids: Sequence[int]) -> list[StoredTranslation]: ...
