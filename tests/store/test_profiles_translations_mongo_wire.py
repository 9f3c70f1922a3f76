"""The exact commands MongoProfileStore and MongoTranslationStore send, against mockupdb.

As for the other stores (test_mongo_wire.py): no MongoDB server runs here; these pin what the
stores ask MongoDB to do, and the shared suites run against a real one when MONGODB_URI is
set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from bson import Int64
from mockupdb import MockupDB

from store import MongoProfileStore, MongoTranslationStore, Profile, StoredTranslation

from .test_mongo_wire import HELLO, Wire, command, cursor

OPTIONS = {"directConnection": True, "serverSelectionTimeoutMS": 5000}
DUPLICATE = {"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    mock = MockupDB(auto_ismaster=HELLO)
    mock.run()
    yield mock
    mock.stop()


@pytest.fixture
async def profiles(server: Any) -> AsyncIterator[tuple[Wire[MongoProfileStore], MongoProfileStore]]:
    store = MongoProfileStore(server.uri, database="chat", client_options=OPTIONS)
    await store.open()  # no index beyond _id: nothing is sent
    try:
        yield Wire(server, store), store
    finally:
        await store.close()


@pytest.fixture
async def translations(
    server: Any,
) -> AsyncIterator[tuple[Wire[MongoTranslationStore], MongoTranslationStore]]:
    store = MongoTranslationStore(server.uri, database="chat", client_options=OPTIONS)
    wire = Wire(server, store)
    try:
        await wire.call(store.open(), {"ok": 1})
        yield wire, store
    finally:
        await store.close()


async def test_set_lang_is_one_upserting_find_and_modify(
    profiles: tuple[Wire[MongoProfileStore], MongoProfileStore],
) -> None:
    wire, store = profiles
    doc = {"_id": "alice", "lang": "es", "token_lang": "en", "updated_at": Int64(7)}
    reply = {"ok": 1, "value": doc, "lastErrorObject": {"n": 1}}
    profile, [request] = await wire.call(store.set_lang("alice", "es", at=7), reply)
    assert profile == Profile("alice", "es", "en", 7)
    assert command(request) == {
        "findAndModify": "profiles",
        "query": {"_id": "alice"},
        "new": True,
        "update": {
            "$set": {"lang": "es", "updated_at": Int64(7)},
            "$setOnInsert": {"token_lang": ""},
        },
        "upsert": True,
    }


async def test_recording_a_claim_matches_only_another_claim(
    profiles: tuple[Wire[MongoProfileStore], MongoProfileStore],
) -> None:
    wire, store = profiles
    changed, [request] = await wire.call(
        store.record_token_lang("bob", "de", at=3), {"ok": 1, "n": 1, "nModified": 1}
    )
    assert changed
    assert command(request) == {
        "update": "profiles",
        "ordered": True,
        "updates": [
            {
                "q": {"_id": "bob", "token_lang": {"$ne": "de"}},
                "u": {
                    "$set": {"token_lang": "de", "updated_at": Int64(3)},
                    "$setOnInsert": {"lang": ""},
                },
                "multi": False,
                "upsert": True,
            }
        ],
    }
    # The same claim: the filter misses, the upsert collides with the profile's _id.
    changed, _ = await wire.call(store.record_token_lang("bob", "de", at=4), DUPLICATE)
    assert not changed


async def test_profiles_of_users_is_one_find_on_ids(
    profiles: tuple[Wire[MongoProfileStore], MongoProfileStore],
) -> None:
    wire, store = profiles
    docs = [{"_id": "a", "lang": "", "token_lang": "fr", "updated_at": Int64(1)}]
    found, [request] = await wire.call(store.profiles(["a", "b", "a"]), cursor(docs))
    assert found == [Profile("a", "", "fr", 1)]
    assert command(request) == {"find": "profiles", "filter": {"_id": {"$in": ["a", "b"]}}}
    assert await store.profiles([]) == []
    one, [request] = await wire.call(store.profile("zed"), cursor([]))
    assert one is None
    assert command(request)["filter"] == {"_id": "zed"}


async def test_translations_index_message_and_language(server: Any) -> None:
    store = MongoTranslationStore(server.uri + "/chat", client_options={"directConnection": True})
    try:
        _, [request] = await Wire(server, store).call(store.open(), {"ok": 1})
        assert command(request) == {
            "createIndexes": "translations",
            "indexes": [
                {"key": {"message_id": 1, "lang": 1}, "name": "message_lang", "unique": True}
            ],
        }
        assert list(command(request)["indexes"][0]["key"]) == ["message_id", "lang"]
    finally:
        await store.close()


async def test_a_translation_is_inserted_once(
    translations: tuple[Wire[MongoTranslationStore], MongoTranslationStore],
) -> None:
    wire, store = translations
    t = StoredTranslation(2**62, "es", "lobby", "apertium", b'{"x":1}')
    stored, [request] = await wire.call(store.insert(t), {"ok": 1, "n": 1})
    assert stored
    cmd = command(request)
    assert (cmd["insert"], cmd["ordered"]) == ("translations", True)
    [doc] = cmd["documents"]
    assert {k: v for k, v in doc.items() if k != "_id"} == {
        "message_id": Int64(2**62),
        "lang": "es",
        "room": "lobby",
        "provider": "apertium",
        "event": b'{"x":1}',
    }
    assert isinstance(doc["message_id"], Int64)
    stored, _ = await wire.call(store.insert(t), DUPLICATE)
    assert not stored


async def test_translations_of_messages_walk_the_index(
    translations: tuple[Wire[MongoTranslationStore], MongoTranslationStore],
) -> None:
    wire, store = translations
    docs = [{"message_id": Int64(5), "lang": "de", "room": "r", "provider": "p", "event": b"{}"}]
    found, [request] = await wire.call(store.of_messages([9, 5, 9]), cursor(docs))
    assert found == [StoredTranslation(5, "de", "r", "p", b"{}")]
    assert command(request) == {
        "find": "translations",
        "filter": {"message_id": {"$in": [Int64(5), Int64(9)]}},
        "sort": {"message_id": 1, "lang": 1},
        "projection": {"_id": 0},
    }
    assert await store.of_messages([]) == []
