"""`RoomStore` on MongoDB (PyMongo's native asyncio client), in the messages' database.

Collections and indexes (created by `open()`, idempotently, one ``createIndexes`` each):

- ``rooms``: ``{_id: <room id>, kind, name, lang, owner, created_at: <int64 ms>,
  member_count}``. ``member_count`` is how the group limit holds without a transaction: an
  add first reserves its places with one conditional update
  (``{_id, member_count: {$lte: limit - n}}``, ``$inc`` by n), so two concurrent adds can
  never both pass it; places it did not use (a concurrent add of the same user) are given
  back.
- ``room_members``: ``{room, user, role, joined_at: <int64 ms>}``; unique index
  ``room_user`` {room: 1, user: 1} (a room's members, and one membership per pair), index
  ``user_room`` {user: 1, room: 1} (a user's rooms).
- ``read_pointers``: ``{room, user, message_id: <int64>}``; unique index ``room_user``
  {room: 1, user: 1} (a room's pointers; a user's pointers in given rooms are point lookups
  on it). Written with ``$max`` and ``upsert``: a pointer never moves back.

Sharding: ``room_members`` and ``read_pointers`` shard on {room: 1, user: 1} (their unique
index starts with it); ``rooms`` on ``_id``. A user's rooms (``user_room``) is then a
scatter-gather read, done once when the gateway's Redis cache of it is rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson import Int64
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from store.mongo import only_duplicates
from store.mongo_db import Document, MongoBacked
from store.rooms import Member, Room, RoomFullError, RoomNotFoundError

ROOMS = "rooms"
MEMBERS = "room_members"
POINTERS = "read_pointers"

ROOM_USER = IndexModel([("room", ASCENDING), ("user", ASCENDING)], name="room_user", unique=True)
INDEXES: dict[str, tuple[IndexModel, ...]] = {
    MEMBERS: (ROOM_USER, IndexModel([("user", ASCENDING), ("room", ASCENDING)], name="user_room")),
    POINTERS: (ROOM_USER,),
}


class MongoRoomStore(MongoBacked):
    """`RoomStore` on three MongoDB collections (see the module docstring)."""

    INDEXES = INDEXES

    async def create_room(self, room: Room, members: Sequence[Member]) -> bool:
        rooms = self.collection(ROOMS)
        document = {**room_document(room), "member_count": len(members)}
        try:
            await rooms.insert_one(document)
        except DuplicateKeyError:
            return False
        if members:
            await self.collection(MEMBERS).insert_many(
                [member_document(m) for m in members], ordered=False
            )
        return True

    async def room(self, room_id: str) -> Room | None:
        doc = await self.collection(ROOMS).find_one({"_id": room_id})
        return None if doc is None else room_from(doc)

    async def rooms(self, room_ids: Sequence[str]) -> list[Room]:
        ids = list(dict.fromkeys(room_ids))
        if not ids:
            return []
        cursor = self.collection(ROOMS).find({"_id": {"$in": ids}})
        return [room_from(doc) async for doc in cursor]

    async def add_members(self, room: str, members: Sequence[Member], *, limit: int) -> list[str]:
        wanted = list(dict((m.user, m) for m in members).values())
        if not wanted:
            return []
        table = self.collection(MEMBERS)
        cursor = table.find(
            {"room": room, "user": {"$in": [m.user for m in wanted]}}, projection={"user": 1}
        )
        present = {doc["user"] async for doc in cursor}
        new = [m for m in wanted if m.user not in present]
        if not new:
            return []
        rooms = self.collection(ROOMS)
        reserved = await rooms.update_one(
            {"_id": room, "member_count": {"$lte": limit - len(new)}},
            {"$inc": {"member_count": len(new)}},
        )
        if reserved.matched_count == 0:
            doc = await rooms.find_one({"_id": room}, projection={"member_count": 1})
            if doc is None:
                raise RoomNotFoundError(room)
            raise RoomFullError(room, limit, int(doc.get("member_count", 0)))
        try:
            await table.insert_many([member_document(m) for m in new], ordered=False)
        except BulkWriteError as exc:
            if not only_duplicates(exc):
                raise
            # added by a concurrent call meanwhile
            clashed = {int(e["index"]) for e in exc.details.get("writeErrors", [])}
            await rooms.update_one({"_id": room}, {"$inc": {"member_count": -len(clashed)}})
            return [m.user for i, m in enumerate(new) if i not in clashed]
        return [m.user for m in new]

    async def remove_member(self, room: str, user: str) -> bool:
        deleted = await self.collection(MEMBERS).delete_one({"room": room, "user": user})
        if deleted.deleted_count == 0:
            return False
        await self.collection(ROOMS).update_one({"_id": room}, {"$inc": {"member_count": -1}})
        return True

    async def members(self, room: str) -> list[Member]:
        cursor = self.collection(MEMBERS).find(
            {"room": room}, sort=[("joined_at", ASCENDING), ("user", ASCENDING)]
        )
        return [member_from(doc) async for doc in cursor]

    async def rooms_of(self, user: str) -> list[str]:
        cursor = self.collection(MEMBERS).find(
            {"user": user}, projection={"room": 1, "_id": 0}, sort=[("room", ASCENDING)]
        )
        return [doc["room"] async for doc in cursor]

    async def set_read_pointer(self, room: str, user: str, message_id: int) -> int:
        doc = await self.collection(POINTERS).find_one_and_update(
            {"room": room, "user": user},
            {"$max": {"message_id": Int64(message_id)}},
            projection={"message_id": 1, "_id": 0},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upsert with AFTER always returns the document
        return int(doc["message_id"])

    async def read_pointers(self, room: str) -> dict[str, int]:
        cursor = self.collection(POINTERS).find(
            {"room": room}, projection={"user": 1, "message_id": 1, "_id": 0}
        )
        return {doc["user"]: int(doc["message_id"]) async for doc in cursor}

    async def pointers_of(self, user: str, rooms: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(rooms))
        if not ids:
            return {}
        cursor = self.collection(POINTERS).find(
            {"room": {"$in": ids}, "user": user}, projection={"room": 1, "message_id": 1, "_id": 0}
        )
        return {doc["room"]: int(doc["message_id"]) async for doc in cursor}


def room_document(room: Room) -> Document:
    return {
        "_id": room.id,
        "kind": room.kind,
        "name": room.name,
        "lang": room.lang,
        "owner": room.owner,
        "created_at": Int64(room.created_at),
    }


def room_from(doc: Mapping[str, Any]) -> Room:
    return Room(
        id=doc["_id"],
        kind=doc["kind"],
        name=doc["name"],
        lang=doc["lang"],
        owner=doc["owner"],
        created_at=int(doc["created_at"]),
    )


def member_document(member: Member) -> Document:
    return {
        "room": member.room,
        "user": member.user,
        "role": member.role,
        "joined_at": Int64(member.joined_at),
    }


def member_from(doc: Mapping[str, Any]) -> Member:
    return Member(
        room=doc["room"], user=doc["user"], role=doc["role"], joined_at=int(doc["joined_at"])
    )
