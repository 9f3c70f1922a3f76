"""Backends the shared store suite runs on: SQLite always, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from pymongo import AsyncMongoClient

from store import (
    MessageStore,
    MongoPushStore,
    MongoRoomStore,
    MongoStore,
    PushStore,
    RoomStore,
    SQLitePushStore,
    SQLiteRoomStore,
    SQLiteStore,
)

MONGODB_URI = os.environ.get("MONGODB_URI")
S = TypeVar("S", MessageStore, PushStore)
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
async def opened_store(backend: str, tmp_path: Path) -> AsyncIterator[MessageStore]:
    sqlite: Callable[[str], MessageStore] = SQLiteStore
    async with _opened(backend, tmp_path, sqlite, MongoStore) as store:
        yield store


@asynccontextmanager
async def opened_push_store(backend: str, tmp_path: Path) -> AsyncIterator[PushStore]:
    """The push-subscription store of `backend`, opened (on a fresh database for MongoDB)."""
    sqlite: Callable[[str], PushStore] = SQLitePushStore
    async with _opened(backend, tmp_path, sqlite, MongoPushStore) as store:
        yield store


@asynccontextmanager
async def _opened(
    backend: str,
    tmp_path: Path,
    sqlite: Callable[[str], S],
    mongo: Callable[..., S],
) -> AsyncIterator[S]:
    store: S
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


@asynccontextmanager
async def opened_room_store(backend: str, tmp_path: Path) -> AsyncIterator[RoomStore]:
    """The room store of a backend (SQLite: the same file as `opened_store`'s)."""
    store: RoomStore
    database = f"stompgate_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite-memory":
        store = SQLiteRoomStore(":memory:")
    elif backend == "sqlite-file":
        store = SQLiteRoomStore(str(tmp_path / "messages.db"))
    elif backend == "mongodb":
        assert MONGODB_URI is not None
        store = MongoRoomStore(MONGODB_URI, database=database)
    else:  # pragma: no cover
        raise ValueError(backend)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        if backend == "mongodb":
            await _drop(database)


async def _drop(database: str) -> None:
    assert MONGODB_URI is not None
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI)
    try:
        await client.drop_database(database)
    finally:
        await client.close()
