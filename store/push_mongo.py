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
from pymongo import ASCENDING, IndexModel

from store.mongo_db import Document, MongoBacked
from store.push import PushSubscription

SUBSCRIPTIONS = "push_subscriptions"
MUTES = "room_mutes"
INDEXES = {
    SUBSCRIPTIONS: (
        IndexModel([("user", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
    ),
    MUTES: (IndexModel([("user", ASCENDING), ("room", ASCENDING)], name="user_room", unique=True),),
}


class MongoPushStore(MongoBacked):
    """`PushStore` on a MongoDB database."""

    INDEXES = INDEXES

    async def save_subscription(self, subscription: PushSubscription) -> bool:
        subscriptions = self.collection(SUBSCRIPTIONS)
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
        subscriptions = self.collection(SUBSCRIPTIONS)
        cursor = subscriptions.find(
            {"user": user}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_subscription(doc) async for doc in cursor]

    async def subscription(self, subscription_id: str) -> PushSubscription | None:
        subscriptions = self.collection(SUBSCRIPTIONS)
        doc = await subscriptions.find_one({"_id": subscription_id})
        return None if doc is None else _subscription(doc)

    async def delete_subscription(self, subscription_id: str, *, user: str | None = None) -> bool:
        subscriptions = self.collection(SUBSCRIPTIONS)
        query: Document = {"_id": subscription_id}
        if user is not None:
            query["user"] = user
        result = await subscriptions.delete_one(query)
        return result.deleted_count > 0

    async def set_muted(self, user: str, room: str, muted: bool) -> None:
        mutes = self.collection(MUTES)
        pair = {"user": user, "room": room}
        if muted:
            await mutes.update_one(pair, {"$setOnInsert": pair}, upsert=True)
        else:
            await mutes.delete_one(pair)

    async def muted_rooms(self, user: str) -> list[str]:
        mutes = self.collection(MUTES)
        cursor = mutes.find({"user": user}, projection={"room": 1}, sort=[("room", ASCENDING)])
        return [str(doc["room"]) async for doc in cursor]

    async def is_muted(self, user: str, room: str) -> bool:
        mutes = self.collection(MUTES)
        return await mutes.find_one({"user": user, "room": room}, projection={"_id": 1}) is not None


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
