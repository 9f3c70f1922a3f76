"""The exact commands MongoRoomStore (and the message store's counts) send, against mockupdb.

As for the message store (test_mongo_wire.py): no MongoDB server runs here; these pin what the
stores ask MongoDB to do, and the shared suites run against a real one when MONGODB_URI is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from bson import Int64
from mockupdb import MockupDB
from pymongo.errors import BulkWriteError

from store import Member, MongoRoomStore, MongoStore, Room, RoomFullError, RoomNotFoundError

from .test_mongo_wire import HELLO, Wire, command, cursor

OPTIONS = {"directConnection": True, "serverSelectionTimeoutMS": 5000}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    mock = MockupDB(auto_ismaster=HELLO)
    mock.run()
    yield mock
    mock.stop()


@pytest.fixture
async def rooms(server: Any) -> AsyncIterator[tuple[Wire[MongoRoomStore], MongoRoomStore]]:
    store = MongoRoomStore(server.uri, database="chat", client_options=OPTIONS)
    wire = Wire(server, store)
    try:
        await wire.call(store.open(), {"ok": 1}, {"ok": 1})
        yield wire, store
    finally:
        await store.close()


def ok(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"ok": 1, "n": n, **extra}


def without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


ROOM = Room(id="g1", kind="group", name="Team", lang="en", owner="alice", created_at=2**41)


async def test_open_creates_the_indexes_of_members_and_pointers(server: Any) -> None:
    store = MongoRoomStore(server.uri + "/chat", client_options={"directConnection": True})
    try:
        _, requests = await Wire(server, store).call(store.open(), {"ok": 1}, {"ok": 1})
        assert [r.doc["$db"] for r in requests] == ["chat", "chat"]
        members, pointers = (command(r) for r in requests)
        assert members == {
            "createIndexes": "room_members",
            "indexes": [
                {"key": {"room": 1, "user": 1}, "name": "room_user", "unique": True},
                {"key": {"user": 1, "room": 1}, "name": "user_room"},
            ],
        }
        assert [list(i["key"]) for i in members["indexes"]] == [["room", "user"], ["user", "room"]]
        assert pointers == {
            "createIndexes": "read_pointers",
            "indexes": [{"key": {"room": 1, "user": 1}, "name": "room_user", "unique": True}],
        }
    finally:
        await store.close()


async def test_create_room_inserts_the_room_with_its_count_then_the_members(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    members = [Member("g1", "alice", "owner", 5), Member("g1", "bob", "member", 5)]
    created, (room, people) = await wire.call(store.create_room(ROOM, members), ok(), ok(2))
    assert created
    assert command(room) == {
        "insert": "rooms",
        "ordered": True,
        "documents": [
            {
                "_id": "g1",
                "kind": "group",
                "name": "Team",
                "lang": "en",
                "owner": "alice",
                "created_at": Int64(2**41),
                "member_count": 2,
            }
        ],
    }
    assert isinstance(command(room)["documents"][0]["created_at"], Int64)
    people_cmd = command(people)
    assert (people_cmd["insert"], people_cmd["ordered"]) == ("room_members", False)
    assert [without_id(d) for d in people_cmd["documents"]] == [
        {"room": "g1", "user": "alice", "role": "owner", "joined_at": Int64(5)},
        {"room": "g1", "user": "bob", "role": "member", "joined_at": Int64(5)},
    ]


async def test_an_existing_room_id_is_not_created_again(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    duplicate = ok(0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate"}])
    created, requests = await wire.call(
        store.create_room(ROOM, [Member("g1", "x", "member", 1)]), duplicate
    )
    assert not created
    assert len(requests) == 1  # no member is inserted


async def test_add_members_reserves_places_with_one_conditional_update(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    new = [Member("g1", "bob", "member", 6), Member("g1", "carol", "member", 6)]
    added, (find, reserve, insert) = await wire.call(
        store.add_members("g1", new, limit=3),
        cursor([{"_id": 1, "user": "carol"}]),
        ok(1, nModified=1),
        ok(1),
    )
    assert added == ["bob"]
    assert command(find) == {
        "find": "room_members",
        "filter": {"room": "g1", "user": {"$in": ["bob", "carol"]}},
        "projection": {"user": 1},
    }
    assert command(reserve) == {
        "update": "rooms",
        "ordered": True,
        "updates": [
            {
                "q": {"_id": "g1", "member_count": {"$lte": 2}},
                "u": {"$inc": {"member_count": 1}},
                "multi": False,
                "upsert": False,
            }
        ],
    }
    assert [without_id(d) for d in command(insert)["documents"]] == [
        {"room": "g1", "user": "bob", "role": "member", "joined_at": Int64(6)}
    ]
    assert command(insert)["ordered"] is False


async def test_a_full_room_and_an_unknown_room_are_told_apart(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    bob = [Member("g1", "bob", "member", 6)]
    with pytest.raises(RoomFullError) as info:
        await wire.call(
            store.add_members("g1", bob, limit=3),
            cursor([]),
            ok(0, nModified=0),
            cursor([{"_id": "g1", "member_count": 3}]),
        )
    assert info.value.count == 3
    with pytest.raises(RoomNotFoundError):
        await wire.call(store.add_members("g1", bob, limit=3), cursor([]), ok(0), cursor([]))


async def test_a_concurrent_duplicate_gives_its_place_back(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    new = [Member("g1", "bob", "member", 6), Member("g1", "carol", "member", 6)]
    clash = ok(1, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate"}])
    added, requests = await wire.call(
        store.add_members("g1", new, limit=9), cursor([]), ok(1), clash, ok(1)
    )
    assert added == ["carol"]
    assert command(requests[-1])["updates"][0]["u"] == {"$inc": {"member_count": -1}}
    other = ok(0, writeErrors=[{"index": 0, "code": 121, "errmsg": "validation"}])
    with pytest.raises(BulkWriteError):
        await wire.call(store.add_members("g1", new, limit=9), cursor([]), ok(1), other)


async def test_remove_member_deletes_one_and_decrements(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    removed, (delete, update) = await wire.call(store.remove_member("g1", "bob"), ok(1), ok(1))
    assert removed
    assert command(delete) == {
        "delete": "room_members",
        "ordered": True,
        "deletes": [{"q": {"room": "g1", "user": "bob"}, "limit": 1}],
    }
    assert command(update)["updates"][0]["u"] == {"$inc": {"member_count": -1}}
    removed, requests = await wire.call(store.remove_member("g1", "bob"), ok(0))
    assert not removed
    assert len(requests) == 1


async def test_members_and_rooms_of_a_user(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    doc = {"_id": 1, "room": "g1", "user": "bob", "role": "member", "joined_at": Int64(6)}
    members, [request] = await wire.call(store.members("g1"), cursor([doc]))
    assert members == [Member("g1", "bob", "member", 6)]
    assert command(request) == {
        "find": "room_members",
        "filter": {"room": "g1"},
        "sort": {"joined_at": 1, "user": 1},
    }
    mine, [request] = await wire.call(store.rooms_of("bob"), cursor([{"room": "g1"}]))
    assert mine == ["g1"]
    assert command(request) == {
        "find": "room_members",
        "filter": {"user": "bob"},
        "sort": {"room": 1},
        "projection": {"room": 1, "_id": 0},
    }


async def test_read_pointer_is_one_upserting_max(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    reply = {"ok": 1, "value": {"message_id": Int64(2**62)}, "lastErrorObject": {"n": 1}}
    stored, [request] = await wire.call(store.set_read_pointer("g1", "bob", 7), reply)
    assert stored == 2**62
    assert command(request) == {
        "findAndModify": "read_pointers",
        "query": {"room": "g1", "user": "bob"},
        "new": True,
        "update": {"$max": {"message_id": Int64(7)}},
        "fields": {"message_id": 1, "_id": 0},
        "upsert": True,
    }
    assert isinstance(command(request)["update"]["$max"]["message_id"], Int64)


async def test_pointers_of_a_user_are_point_lookups(
    rooms: tuple[Wire[MongoRoomStore], MongoRoomStore],
) -> None:
    wire, store = rooms
    rows = [{"room": "g1", "message_id": Int64(9)}]
    found, [request] = await wire.call(store.pointers_of("bob", ["g1", "g2", "g1"]), cursor(rows))
    assert found == {"g1": 9}
    assert command(request) == {
        "find": "read_pointers",
        "filter": {"room": {"$in": ["g1", "g2"]}, "user": "bob"},
        "projection": {"room": 1, "message_id": 1, "_id": 0},
    }
    assert await store.pointers_of("bob", []) == {}


async def test_message_counts_walk_room_id(server: Any) -> None:
    store = MongoStore(server.uri, database="chat", client_options=OPTIONS)
    wire = Wire(server, store)
    await wire.call(store.open(), {"ok": 1})
    try:
        n, [request] = await wire.call(store.count("r1", upto=7), cursor([{"_id": 1, "n": 3}]))
        assert n == 3
        assert command(request)["pipeline"][0] == {
            "$match": {"room": "r1", "_id": {"$lte": Int64(7)}}
        }
        newest, [request] = await wire.call(
            store.newest_id("r1", sender="bob"), cursor([{"_id": Int64(4)}])
        )
        assert newest == 4
        assert command(request) == {
            "find": "messages",
            "filter": {"room": "r1", "sender": "bob"},
            "sort": {"_id": -1},
            "projection": {"_id": 1},
            "limit": 1,
            "singleBatch": True,
        }
    finally:
        await store.close()
