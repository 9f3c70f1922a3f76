"""Backends the shared store suite runs on: SQLite always, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from pymongo import AsyncMongoClient

from store import (
    MessageStore,
    MongoProfileStore,
    MongoPushStore,
    MongoRoomStore,
    MongoStore,
    MongoTranslationStore,
    ProfileStore,
    PushStore,
    RoomStore,
    SQLiteProfileStore,
    SQLitePushStore,
    SQLiteRoomStore,
    SQLiteStore,
    SQLiteTranslationStore,
    TranslationStore,
)


class _Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=_Store)
MONGODB_URI = os.environ.get("MONGODB_URI")
NO_MONGO = "MongoDB not verified here: set MONGODB_URI=mongodb://host:port to run this backend"

BACKENDS = [
    pytest.param("sqlite-memory", id="sqlite-memory"),
    pytest.param("sqlite-file", id="sqlite-file"),
    pytest.param(
        "mongodb",
        id="mongodb",
        marks=pytest.mark.skipif(MONGODB_URI is None, reason=NO_MONGO),
    ),
]


@asynccontextmanager
async def _opened(
    backend: str, tmp_path: Path, sqlite: Callable[[str], S], mongo: Callable[..., S]
) -> AsyncIterator[S]:
    """``sqlite(path)`` or ``mongo(MONGODB_URI, database=...)`` opened (SQLite: every kind
    of store of a test in one file, as the gateway has them), closed and dropped after."""
    database = f"stompgate_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite-memory":
        store = sqlite(":memory:")
    elif backend == "sqlite-file":
        store = sqlite(str(tmp_path / "messages.db"))
    elif backend == "mongodb":
        assert MONGODB_URI is not None
        store = mongo(MONGODB_URI, database=database)
    else:  # pragma: no cover
        raise ValueError(backend)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        if backend == "mongodb":
            await _drop(database)


def opened_store(backend: str, tmp_path: Path) -> AbstractAsyncContextManager[MessageStore]:
    sqlite: Callable[[str], MessageStore] = SQLiteStore
    return _opened(backend, tmp_path, sqlite, MongoStore)


def opened_room_store(backend: str, tmp_path: Path) -> AbstractAsyncContextManager[RoomStore]:
    sqlite: Callable[[str], RoomStore] = SQLiteRoomStore
    return _opened(backend, tmp_path, sqlite, MongoRoomStore)


def opened_profile_store(backend: str, tmp_path: Path) -> AbstractAsyncContextManager[ProfileStore]:
    sqlite: Callable[[str], ProfileStore] = SQLiteProfileStore
    return _opened(backend, tmp_path, sqlite, MongoProfileStore)


def opened_translation_store(
    backend: str, tmp_path: Path
) -> AbstractAsyncContextManager[TranslationStore]:
    sqlite: Callable[[str], TranslationStore] = SQLiteTranslationStore
    return _opened(backend, tmp_path, sqlite, MongoTranslationStore)


def opened_push_store(backend: str, tmp_path: Path) -> AbstractAsyncContextManager[PushStore]:
    """The push-subscription store of `backend`, opened (on a fresh database for MongoDB)."""
    sqlite: Callable[[str], PushStore] = SQLitePushStore
    return _opened(backend, tmp_path, sqlite, MongoPushStore)


async def _drop(database: str) -> None:
    assert MONGODB_URI is not None
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI)
    try:
        await client.drop_database(database)
    finally:
        await client.close()
