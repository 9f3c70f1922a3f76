"""`ProfileStore` on MongoDB, in the messages' database: collection ``profiles``, one document
per user, ``{_id: <user>, lang, token_lang, updated_at: <int64 ms>}`` (no index beyond
``_id``; shard on ``_id``).

`set_lang` is one ``findAndModify`` with ``upsert`` that sets ``lang`` (``token_lang`` only
when it inserts). `record_token_lang` is one upserting update whose filter matches only a
profile with another ``token_lang``: when the recorded one is the same, the upsert's insert
collides with the existing ``_id`` (duplicate key), which means "nothing changed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson import Int64
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from store.mongo_db import MongoBacked
from store.profiles import Profile

PROFILES = "profiles"


class MongoProfileStore(MongoBacked):
    """`ProfileStore` on one MongoDB collection (see the module docstring)."""

    async def profile(self, user: str) -> Profile | None:
        doc = await self.collection(PROFILES).find_one({"_id": user})
        return None if doc is None else profile_from(doc)

    async def profiles(self, users: Sequence[str]) -> list[Profile]:
        ids = list(dict.fromkeys(users))
        if not ids:
            return []
        cursor = self.collection(PROFILES).find({"_id": {"$in": ids}})
        return [profile_from(doc) async for doc in cursor]

    async def set_lang(self, user: str, lang: str, *, at: int) -> Profile:
        doc = await self.collection(PROFILES).find_one_and_update(
            {"_id": user},
            {"$set": {"lang": lang, "updated_at": Int64(at)}, "$setOnInsert": {"token_lang": ""}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upsert with AFTER always returns the document
        return profile_from(doc)

    async def record_token_lang(self, user: str, lang: str, *, at: int) -> bool:
        try:
            await self.collection(PROFILES).update_one(
                {"_id": user, "token_lang": {"$ne": lang}},
                {
                    "$set": {"token_lang": lang, "updated_at": Int64(at)},
                    "$setOnInsert": {"lang": ""},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the profile exists with this very token_lang
        return True


def profile_from(doc: Mapping[str, Any]) -> Profile:
    return Profile(
        user=doc["_id"],
        lang=doc.get("lang", ""),
        token_lang=doc.get("token_lang", ""),
        updated_at=int(doc.get("updated_at", 0)),
    )
