"""The exact commands MongoStore sends, checked against mockupdb (a wire-protocol server).

No MongoDB server runs here; these tests pin what the store asks MongoDB to do. The shared
suite (test_contract.py) runs against a real MongoDB when MONGODB_URI is set.
mockupdb 1.8.1 speaks OP_MSG; PyMongo 4.20 needs a hello reply with maxWireVersion >= 8, so
the mock advertises 21 (MongoDB 7.0).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pytest
from bson import Int64
from mockupdb import MockupDB
from pymongo.errors import BulkWriteError

from store import Conflict, MongoStore, StoreConflictError, StoredMessage

T = TypeVar("T")
S = TypeVar("S")
HELLO = {"maxWireVersion": 21, "minWireVersion": 0}
IGNORED = {"$db", "lsid", "$readPreference", "$clusterTime", "txnNumber"}


@dataclass
class Wire(Generic[S]):
    server: Any
    store: S

    async def call(self, coro: Awaitable[T], *replies: dict[str, Any]) -> tuple[T, list[Any]]:
        """Run `coro`, answering the next requests with `replies`; return (result, requests)."""
        task = asyncio.ensure_future(coro)
        requests = []
        for reply in replies:
            request = await asyncio.to_thread(self.server.receives, timeout=10)
            requests.append(request)
            request.reply(reply)
        return await asyncio.wait_for(task, 10), requests


def command(request: Any) -> dict[str, Any]:
    return {k: v for k, v in request.doc.items() if k not in IGNORED}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """One mock server for the module (stopping one takes a second)."""
    mock = MockupDB(auto_ismaster=HELLO)
    mock.run()
    yield mock
    mock.stop()


@pytest.fixture
async def wire(server: Any) -> AsyncIterator[Wire[MongoStore]]:
    store = MongoStore(
        server.uri,
        database="chat",
        client_options={"directConnection": True, "serverSelectionTimeoutMS": 5000},
    )
    w = Wire(server, store)
    try:
        await w.call(store.open(), {"ok": 1})
        yield w
    finally:
        await store.close()


def message(id_: int, client_id: str) -> StoredMessage:
    return StoredMessage(
        id=id_,
        room="r1",
        sender="alice",
        client_id=client_id,
        sent_at=1_700_000_000_123,
        event=b'{"id":' + str(id_).encode() + b"}",
    )


def document(m: StoredMessage) -> dict[str, Any]:
    return {
        "_id": Int64(m.id),
        "room": m.room,
        "sender": m.sender,
        "client_id": m.client_id,
        "sent_at": Int64(m.sent_at),
        "event": m.event,
    }


async def test_open_creates_the_two_indexes(server: Any) -> None:
    store = MongoStore(server.uri + "/chat", client_options={"directConnection": True})
    try:
        _, [request] = await Wire(server, store).call(store.open(), {"ok": 1})
        assert request.doc["$db"] == "chat"
        cmd = command(request)
        assert cmd == {
            "createIndexes": "messages",
            "indexes": [
                {"key": {"room": 1, "_id": 1}, "name": "room_id"},
                {"key": {"sender": 1, "client_id": 1}, "name": "sender_client_id", "unique": True},
            ],
        }
        # key order matters for a compound index
        assert [list(i["key"]) for i in cmd["indexes"]] == [
            ["room", "_id"],
            ["sender", "client_id"],
        ]
    finally:
        await store.close()


async def test_insert_is_unordered_with_int64_ids(wire: Wire[MongoStore]) -> None:
    batch = [message(10, "a"), message(2**62, "b")]
    stored, [request] = await wire.call(wire.store.insert_many(batch), {"ok": 1, "n": 2})
    assert stored == 2
    cmd = command(request)
    assert cmd == {
        "insert": "messages",
        "ordered": False,
        "documents": [document(m) for m in batch],
    }
    assert all(isinstance(d["_id"], Int64) for d in cmd["documents"])
    assert list(cmd["documents"][0]) == [
        "_id",
        "room",
        "sender",
        "client_id",
        "sent_at",
        "event",
    ]


async def test_duplicate_key_write_errors_are_a_partial_success(wire: Wire[MongoStore]) -> None:
    batch = [message(1, "a"), message(2, "b"), message(3, "c")]
    reply = {
        "ok": 1,
        "n": 1,
        "writeErrors": [
            {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error: _id"},
            {"index": 2, "code": 11000, "errmsg": "E11000 duplicate key error: sender_client_id"},
        ],
    }
    # id 1 is stored as the same message (a redelivery); id 3 is not stored (a client retry)
    found = cursor([{"_id": Int64(1), "room": "r1", "sender": "alice", "client_id": "a"}])
    stored, [insert, find] = await wire.call(wire.store.insert_many(batch), reply, found)
    assert stored == 1
    assert command(insert)["ordered"] is False
    assert command(find) == {
        "find": "messages",
        "filter": {"_id": {"$in": [Int64(1), Int64(3)]}},
        "projection": {"room": 1, "sender": 1, "client_id": 1},
    }


async def test_an_id_stored_as_another_message_is_a_conflict(wire: Wire[MongoStore]) -> None:
    batch = [message(1, "a"), message(2, "b")]
    reply = {
        "ok": 1,
        "n": 1,
        "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error: _id"}],
    }
    found = cursor([{"_id": Int64(1), "room": "r9", "sender": "bob", "client_id": "z"}])
    with pytest.raises(StoreConflictError) as raised:
        await wire.call(wire.store.insert_many(batch), reply, found)
    assert raised.value.stored == 1
    assert raised.value.conflicts == (Conflict(batch[0], "r9", "bob", "z"),)


async def test_other_write_errors_are_raised(wire: Wire[MongoStore]) -> None:
    reply = {
        "ok": 1,
        "n": 0,
        "writeErrors": [
            {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error"},
            {"index": 1, "code": 121, "errmsg": "Document failed validation"},
        ],
    }
    with pytest.raises(BulkWriteError):
        await wire.call(wire.store.insert_many([message(1, "a"), message(2, "b")]), reply)


async def test_empty_insert_sends_nothing(wire: Wire[MongoStore]) -> None:
    assert await wire.store.insert_many([]) == 0


def cursor(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ok": 1, "cursor": {"id": Int64(0), "ns": "chat.messages", "firstBatch": docs}}


async def test_history_before_sorts_descending_on_id(wire: Wire[MongoStore]) -> None:
    docs = [document(message(9, "x")), document(message(8, "y"))]
    result, [request] = await wire.call(wire.store.history("r1", before=10, limit=2), cursor(docs))
    assert command(request) == {
        "find": "messages",
        "filter": {"room": "r1", "_id": {"$lt": Int64(10)}},
        "sort": {"_id": -1},
        "limit": 2,
    }
    assert result == [message(9, "x"), message(8, "y")]


async def test_history_after_sorts_ascending_on_id(wire: Wire[MongoStore]) -> None:
    docs = [document(message(11, "x"))]
    result, [request] = await wire.call(wire.store.history("r1", after=10, limit=30), cursor(docs))
    assert command(request) == {
        "find": "messages",
        "filter": {"room": "r1", "_id": {"$gt": Int64(10)}},
        "sort": {"_id": 1},
        "limit": 30,
    }
    assert result == [message(11, "x")]


async def test_history_between_and_latest(wire: Wire[MongoStore]) -> None:
    _, [between] = await wire.call(wire.store.history("r1", after=3, before=8), cursor([]))
    assert command(between)["filter"] == {"room": "r1", "_id": {"$gt": Int64(3), "$lt": Int64(8)}}
    assert command(between)["sort"] == {"_id": 1}
    _, [latest] = await wire.call(wire.store.history("r1"), cursor([]))
    assert command(latest) == {
        "find": "messages",
        "filter": {"room": "r1"},
        "sort": {"_id": -1},
        "limit": 50,
    }


async def test_count_per_room_and_total(wire: Wire[MongoStore]) -> None:
    n, [request] = await wire.call(wire.store.count("r1"), cursor([{"_id": 1, "n": 3}]))
    assert n == 3
    cmd = command(request)
    assert cmd["aggregate"] == "messages"
    assert cmd["pipeline"][0] == {"$match": {"room": "r1"}}
    total, [request] = await wire.call(wire.store.count(), cursor([]))
    assert total == 0
    assert command(request)["pipeline"][0] == {"$match": {}}
