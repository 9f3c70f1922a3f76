"""The MongoDB message store, on PyMongo's native asyncio client (`pymongo.AsyncMongoClient`).

Layout: one collection, `messages`, one document per message::

    {_id: <message id, int64>, room, sender, client_id, sent_at: <int64 ms>, event: <BinData>}

Indexes (created by `open()`, idempotently):

- `room_id`: {room: 1, _id: 1} -- every history read is an equality on `room` plus a range and
  sort on `_id`, so it walks this index in either direction (keyset pagination, no skip).
- `sender_client_id`: unique {sender: 1, client_id: 1} -- a client's retry after a lost
  receipt carries the same client message id and is skipped as a duplicate.

`count(room, upto=X)` and `newest_id(room, sender=...)` (the chat layer's exact unread counts,
read only when a read pointer is rebuilt or older than the Redis cache) walk `room_id` too.

Writes are `insert_many(ordered=False)`: every document is tried; any write error other than
a duplicate key (code 11000) is raised. Duplicate keys are then told apart with one `find` of
the refused documents' ids (projection room, sender, client_id): an id stored as the same
(room, sender, client_id) is a true duplicate, an id absent was refused on `sender_client_id`
(a client's retry under a new id): both count as "already stored"; an id stored as another
message is a conflict, raised as `StoreConflictError` after the rest of the batch is in.

Sharding: the shard key is {room: 1, _id: 1} (or {room: "hashed"} to spread hot rooms of
similar ids; then keep {room: 1, _id: 1} as a secondary index). History reads then target a
single shard, and Snowflake ids keep each room's inserts append-only. MongoDB enforces a unique
index on a sharded collection only when the index starts with the shard key, so on a sharded
cluster `sender_client_id` cannot stay unique: create the collection unsharded, or dedupe
(sender, client_id) in a separate collection whose `_id` is that pair (sharded on it) before
inserting. `_id` stays unique because Snowflake ids are globally unique.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson import Int64
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

from store.base import (
    Conflict,
    StoreConflictError,
    StoredMessage,
    check_limit,
    is_same_message,
)
from store.mongo_db import Document, MongoBacked

DUPLICATE_KEY = 11000
COLLECTION = "messages"

INDEXES = (
    IndexModel([("room", ASCENDING), ("_id", ASCENDING)], name="room_id"),
    IndexModel(
        [("sender", ASCENDING), ("client_id", ASCENDING)], name="sender_client_id", unique=True
    ),
)


class MongoStore(MongoBacked):
    """`MessageStore` on a MongoDB collection."""

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        collection: str = COLLECTION,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(url, database=database, client_options=client_options)
        self.collection_name = collection
        self.INDEXES = {collection: INDEXES}

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        collection = self.collection(self.collection_name)
        if not messages:
            return 0
        documents = [to_document(m) for m in messages]
        try:
            result = await collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if not only_duplicates(exc):
                raise
            stored = int(exc.details.get("nInserted", 0))
            refused = [messages[e["index"]] for e in exc.details.get("writeErrors", [])]
            conflicts = await self._conflicts(refused)
            if conflicts:
                raise StoreConflictError(stored, conflicts) from None
            return stored
        return len(result.inserted_ids)

    async def _conflicts(self, refused: Sequence[StoredMessage]) -> list[Conflict]:
        """Those of `refused` whose id is stored as another message."""
        collection = self.collection(self.collection_name)
        ids = sorted({m.id for m in refused})
        found: dict[int, Mapping[str, Any]] = {}
        cursor = collection.find(
            {"_id": {"$in": [Int64(i) for i in ids]}},
            projection={"room": 1, "sender": 1, "client_id": 1},
        )
        async for doc in cursor:
            found[int(doc["_id"])] = doc
        conflicts = []
        for m in refused:
            if m.id not in found:
                continue
            stored = found[m.id]
            room, sender, client_id = stored["room"], stored["sender"], stored["client_id"]
            if not is_same_message(m, room, sender, client_id):
                conflicts.append(Conflict(m, room, sender, client_id))
        return conflicts

    async def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        collection = self.collection(self.collection_name)
        check_limit(limit)
        if limit == 0:
            return []
        id_range: dict[str, Int64] = {}
        if after is not None:
            id_range["$gt"] = Int64(after)
        if before is not None:
            id_range["$lt"] = Int64(before)
        query: Document = {"room": room}
        if id_range:
            query["_id"] = id_range
        direction = ASCENDING if after is not None else DESCENDING
        cursor = collection.find(query, sort=[("_id", direction)], limit=limit)
        return [from_document(doc) async for doc in cursor]

    async def count(self, room: str | None = None, *, upto: int | None = None) -> int:
        collection = self.collection(self.collection_name)
        query: Document = {} if room is None else {"room": room}
        if upto is not None:
            if room is None:
                raise ValueError("`upto` counts the messages of one room: give the room")
            query["_id"] = {"$lte": Int64(upto)}
        return await collection.count_documents(query)

    async def newest_id(self, room: str, *, sender: str) -> int | None:
        """Walks `room_id` backwards from the newest message of the room to the sender's."""
        collection = self.collection(self.collection_name)
        doc = await collection.find_one(
            {"room": room, "sender": sender}, projection={"_id": 1}, sort=[("_id", DESCENDING)]
        )
        return None if doc is None else int(doc["_id"])


def only_duplicates(exc: BulkWriteError) -> bool:
    """Whether every error of an unordered bulk insert is a duplicate key (nothing else
    failed: the other documents are in)."""
    details = exc.details
    return not details.get("writeConcernErrors") and all(
        e.get("code") == DUPLICATE_KEY for e in details.get("writeErrors", [])
    )


def to_document(message: StoredMessage) -> Document:
    return {
        "_id": Int64(message.id),
        "room": message.room,
        "sender": message.sender,
        "client_id": message.client_id,
        "sent_at": Int64(message.sent_at),
        "event": message.event,
    }


def from_document(doc: Mapping[str, Any]) -> StoredMessage:
    return StoredMessage(
        id=int(doc["_id"]),
        room=doc["room"],
        sender=doc["sender"],
        client_id=doc["client_id"],
        sent_at=int(doc["sent_at"]),
        event=bytes(doc["event"]),
    )
