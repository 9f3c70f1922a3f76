from __future__ import annotations

from collections.abc import Callable

import pytest

from store import (
    MongoProfileStore,
    MongoRoomStore,
    MongoStore,
    MongoTranslationStore,
    SQLiteProfileStore,
    SQLiteRoomStore,
    SQLiteStore,
    SQLiteTranslationStore,
    open_profile_store,
    open_room_store,
    open_store,
    open_translation_store,
)


@pytest.mark.parametrize(
    ("url", "path", "sync"),
    [
        ("sqlite:///var/stompgate.db", "var/stompgate.db", "FULL"),
        ("sqlite:////tmp/x/stompgate.db", "/tmp/x/stompgate.db", "FULL"),
        ("sqlite://:memory:", ":memory:", "FULL"),
        ("sqlite:///:memory:", ":memory:", "FULL"),
        ("sqlite:///a.db?synchronous=normal", "a.db", "NORMAL"),
    ],
)
def test_sqlite_urls(url: str, path: str, sync: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == path
    assert store.synchronous == sync


@pytest.mark.parametrize("url", ["mongodb://localhost/chat", "mongodb+srv://cluster.example/db"])
def test_mongodb_urls(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, MongoStore)
    assert store.url == url


@pytest.mark.parametrize(
    "url", ["postgres://x/y", "sqlite://", "sqlite:///", "sqlite:///a.db?journal=off", "nonsense"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages vary by case
        open_store(url)


@pytest.mark.parametrize(
    ("opener", "sqlite", "mongo"),
    [
        (open_room_store, SQLiteRoomStore, MongoRoomStore),
        (open_profile_store, SQLiteProfileStore, MongoProfileStore),
        (open_translation_store, SQLiteTranslationStore, MongoTranslationStore),
    ],
)
def test_the_other_stores_pick_the_same_backend(
    opener: Callable[[str], object], sqlite: type, mongo: type
) -> None:
    on_file = opener("sqlite:///a.db?synchronous=normal")
    assert isinstance(on_file, sqlite)
    assert (getattr(on_file, "path", None), getattr(on_file, "synchronous", None)) == (
        "a.db",
        "NORMAL",
    )
    on_mongo = opener("mongodb://localhost/chat")
    assert isinstance(on_mongo, mongo)
    with pytest.raises(ValueError, match="unsupported store URL scheme"):
        opener("postgres://x/y")
