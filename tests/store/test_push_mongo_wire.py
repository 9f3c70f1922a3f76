"""The exact commands MongoPushStore sends, checked against mockupdb (see test_mongo_wire.py).

The shared suite (test_push_contract.py) runs against a real MongoDB when MONGODB_URI is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import Int64

from store import MongoPushStore, new_subscription

from .test_mongo_wire import Wire, command, server

__all__ = ["server"]  # the module-scoped mock server fixture, shared

SUB = new_subscription(
    "bob", "webpush", "https://push.example/1", p256dh="k", auth="a", created_at=1_700_000_000_000
)


@pytest.fixture
async def wire(server: Any) -> AsyncIterator[Wire[MongoPushStore]]:
    store = MongoPushStore(
        server.uri,
        database="chat",
        client_options={"directConnection": True, "serverSelectionTimeoutMS": 5000},
    )
    w = Wire(server, store)
    try:
        await w.call(store.open(), {"ok": 1}, {"ok": 1})
        yield w
    finally:
        await store.close()


def cursor(collection: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ok": 1, "cursor": {"id": Int64(0), "ns": f"chat.{collection}", "firstBatch": docs}}


def document() -> dict[str, Any]:
    return {
        "_id": SUB.id,
        "user": "bob",
        "kind": "webpush",
        "address": SUB.address,
        "p256dh": "k",
        "auth": "a",
        "created_at": Int64(SUB.created_at),
    }


async def test_open_creates_the_indexes(server: Any) -> None:
    store = MongoPushStore(server.uri + "/chat", client_options={"directConnection": True})
    try:
        _, requests = await Wire(server, store).call(store.open(), {"ok": 1}, {"ok": 1})
        assert [command(r) for r in requests] == [
            {
                "createIndexes": "push_subscriptions",
                "indexes": [{"key": {"user": 1, "created_at": 1}, "name": "user_created"}],
            },
            {
                "createIndexes": "room_mutes",
                "indexes": [{"key": {"user": 1, "room": 1}, "name": "user_room", "unique": True}],
            },
        ]
        assert requests[0].doc["$db"] == "chat"
    finally:
        await store.close()


async def test_save_is_an_upsert_on_the_id(wire: Wire[MongoPushStore]) -> None:
    reply = {"ok": 1, "n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": SUB.id}]}
    new, [request] = await wire.call(wire.store.save_subscription(SUB), reply)
    assert new is True
    cmd = command(request)
    assert cmd["update"] == "push_subscriptions"
    [update] = cmd["updates"]
    assert update["q"] == {"_id": SUB.id}
    assert update["upsert"] is True
    assert update["u"] == {
        "$set": {"p256dh": "k", "auth": "a"},
        "$setOnInsert": {
            "user": "bob",
            "kind": "webpush",
            "address": SUB.address,
            "created_at": Int64(SUB.created_at),
        },
    }
    again, _ = await wire.call(
        wire.store.save_subscription(SUB),
        {"ok": 1, "n": 1, "nModified": 1},
    )
    assert again is False


async def test_list_and_find(wire: Wire[MongoPushStore]) -> None:
    found, [request] = await wire.call(
        wire.store.subscriptions("bob"),
        cursor("push_subscriptions", [document()]),
    )
    assert found == [SUB]
    assert command(request) == {
        "find": "push_subscriptions",
        "filter": {"user": "bob"},
        "sort": {"created_at": 1, "_id": 1},
    }
    one, [request] = await wire.call(
        wire.store.subscription(SUB.id),
        cursor("push_subscriptions", []),
    )
    assert one is None
    assert command(request)["filter"] == {"_id": SUB.id}
    assert command(request)["limit"] == 1


async def test_delete_by_id_and_owner(wire: Wire[MongoPushStore]) -> None:
    done, [request] = await wire.call(
        wire.store.delete_subscription(SUB.id, user="bob"),
        {"ok": 1, "n": 1},
    )
    assert done is True
    cmd = command(request)
    assert cmd["delete"] == "push_subscriptions"
    assert cmd["deletes"] == [{"q": {"_id": SUB.id, "user": "bob"}, "limit": 1}]
    none, _ = await wire.call(
        wire.store.delete_subscription(SUB.id),
        {"ok": 1, "n": 0},
    )
    assert none is False


async def test_mutes(wire: Wire[MongoPushStore]) -> None:
    _, [mute] = await wire.call(
        wire.store.set_muted("bob", "r1", True),
        {"ok": 1, "n": 1, "nModified": 0},
    )
    [update] = command(mute)["updates"]
    assert command(mute)["update"] == "room_mutes"
    assert update["q"] == {"user": "bob", "room": "r1"}
    assert update["u"] == {"$setOnInsert": {"user": "bob", "room": "r1"}}
    assert update["upsert"] is True
    _, [unmute] = await wire.call(
        wire.store.set_muted("bob", "r1", False),
        {"ok": 1, "n": 1},
    )
    assert command(unmute)["deletes"] == [{"q": {"user": "bob", "room": "r1"}, "limit": 1}]
    rooms, [request] = await wire.call(
        wire.store.muted_rooms("bob"),
        cursor("room_mutes", [{"_id": 1, "room": "a"}, {"_id": 2, "room": "b"}]),
    )
    assert rooms == ["a", "b"]
    assert command(request) == {
        "find": "room_mutes",
        "filter": {"user": "bob"},
        "sort": {"room": 1},
        "projection": {"room": 1},
    }
    muted, [request] = await wire.call(
        wire.store.is_muted("bob", "a"),
        cursor("room_mutes", [{"_id": 1}]),
    )
    assert muted is True
    assert command(request)["filter"] == {"user": "bob", "room": "a"}
