"""`TranslationStore` on MongoDB, in the messages' database: collection ``translations``,
``{message_id: <int64>, lang, room, provider, event: <BinData>}``, unique index
``message_lang`` {message_id: 1, lang: 1}: it makes `insert` idempotent (a duplicate key
means the message has that language already) and serves `of_messages` (``$in`` on
``message_id``, sorted by the index). Shard on {message_id: 1, lang: 1}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson import Int64
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from store.mongo_db import MongoBacked
from store.translations import StoredTranslation

TRANSLATIONS = "translations"


class MongoTranslationStore(MongoBacked):
    """`TranslationStore` on one MongoDB collection (see the module docstring)."""

    INDEXES = {
        TRANSLATIONS: (
            IndexModel(
                [("message_id", ASCENDING), ("lang", ASCENDING)], name="message_lang", unique=True
            ),
        )
    }

    async def insert(self, translation: StoredTranslation) -> bool:
        t = translation
        document = {
            "message_id": Int64(t.message_id),
            "lang": t.lang,
            "room": t.room,
            "provider": t.provider,
            "event": t.event,
        }
        try:
            await self.collection(TRANSLATIONS).insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def of_messages(self, message_ids: Sequence[int]) -> list[StoredTranslation]:
        ids = sorted(set(message_ids))
        if not ids:
            return []
        cursor = self.collection(TRANSLATIONS).find(
            {"message_id": {"$in": [Int64(i) for i in ids]}},
            projection={"_id": 0},
            sort=[("message_id", ASCENDING), ("lang", ASCENDING)],
        )
        return [translation_from(doc) async for doc in cursor]


def translation_from(doc: Mapping[str, Any]) -> StoredTranslation:
    return StoredTranslation(
        message_id=int(doc["message_id"]),
        lang=doc["lang"],
        room=doc["room"],
        provider=doc["provider"],
        event=bytes(doc["event"]),
    )
