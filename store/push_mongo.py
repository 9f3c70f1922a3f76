"""`PushStore` on MongoDB (PyMongo's async client), two collections beside `messages`:

    push_subscriptions  {_id: <subscription id>, user, kind, address, p256dh, auth,
                         created_at: <int64 ms>}
                        index user_created {user: 1, created_at: 1}
    room_mutes          {_id: ObjectId, user, room}
                        unique index user_room {user: 1, room: 1}

`save_subscription` is one `update_one(upsert=True)` on the id (derived from user, kind and
address): `$set` the keys, `$setOnInsert` the rest, so a second registration keeps the
first's `created_at`; `upserted_id` tells whether it was new. Mutes are upserts and deletes
on (user, room).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import Int64
from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from store.base import StoreClosedError
from store.mongo import Document, open_collections
from store.push import PushSubscription

SUBSCRIPTIONS = "push_subscriptions"
MUTES = "room_mutes"
INDEXES = {
    SUBSCRIPTIONS: (
        IndexModel([("user", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
    ),
    MUTES: (IndexModel([("user", ASCENDING), ("room", ASCENDING)], name="user_room", unique=True),),
}


class MongoPushStore:
    """`PushStore` on a MongoDB database."""

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.database = database
        self.client_options = dict(client_options or {})
        self._client: AsyncMongoClient[Document] | None = None
        self._collections: tuple[AsyncCollection[Document], AsyncCollection[Document]] | None = None

    async def open(self) -> None:
        if self._client is not None:
            return
        client, (subscriptions, mutes) = await open_collections(
            self.url, self.database, self.client_options, INDEXES
        )
        self._client, self._collections = client, (subscriptions, mutes)

    async def close(self) -> None:
        client, self._client, self._collections = self._client, None, None
        if client is not None:
            await client.close()

    async def save_subscription(self, subscription: PushSubscription) -> bool:
        subscriptions, _ = self._require()
        result = await subscriptions.update_one(
            {"_id": subscription.id},
            {
                "$set": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                "$setOnInsert": {
                    "user": subscription.user,
                    "kind": subscription.kind,
                    "address": subscription.address,
                    "created_at": Int64(subscription.created_at),
                },
            },
            upsert=True,
        )
        return result.upserted_id is not None

    async def subscriptions(self, user: str) -> list[PushSubscription]:
        subscriptions, _ = self._require()
        cursor = subscriptions.find(
            {"user": user}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_subscription(doc) async for doc in cursor]

    async def subscription(self, subscription_id: str) -> PushSubscription | None:
        subscriptions, _ = self._require()
        doc = await subscriptions.find_one({"_id": subscription_id})
        return None if doc is None else _subscription(doc)

    async def delete_subscription(self, subscription_id: str, *, user: str | None = None) -> bool:
        subscriptions, _ = self._require()
        query: Document = {"_id": subscription_id}
        if user is not None:
            query["user"] = user
        result = await subscriptions.delete_one(query)
        return result.deleted_count > 0

    async def set_muted(self, user: str, room: str, muted: bool) -> None:
        _, mutes = self._require()
        pair = {"user": user, "room": room}
        if muted:
            await mutes.update_one(pair, {"$setOnInsert": pair}, upsert=True)
        else:
            await mutes.delete_one(pair)

    async def muted_rooms(self, user: str) -> list[str]:
        _, mutes = self._require()
        cursor = mutes.find({"user": user}, projection={"room": 1}, sort=[("room", ASCENDING)])
        return [str(doc["room"]) async for doc in cursor]

    async def is_muted(self, user: str, room: str) -> bool:
        _, mutes = self._require()
        return await mutes.find_one({"user": user, "room": room}, projection={"_id": 1}) is not None

    def _require(self) -> tuple[AsyncCollection[Document], AsyncCollection[Document]]:
        if self._collections is None:
            raise StoreClosedError("MongoPushStore is not open")
        return self._collections


def _subscription(doc: Mapping[str, Any]) -> PushSubscription:
    return PushSubscription(
        id=str(doc["_id"]),
        user=doc["user"],
        kind=doc["kind"],
        address=doc["address"],
        p256dh=doc.get("p256dh", ""),
        auth=doc.get("auth", ""),
        created_at=int(doc.get("created_at", 0)),
    )
