"""Backends the shared store suite runs on: SQLite always, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from store import (
    MessageStore,
    MongoRoomStore,
    MongoStore,
    RoomStore,
    SQLiteRoomStore,
    SQLiteStore,
)

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
async def opened_store(backend: str, tmp_path: Path) -> AsyncIterator[MessageStore]:
    store: MessageStore
    database = f"stompgate_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite-memory":
        store = SQLiteStore(":memory:")
    elif backend == "sqlite-file":
        store = SQLiteStore(str(tmp_path / "messages.db"))
    elif backend == "mongodb":
        assert MONGODB_URI is not None
        store = MongoStore(MONGODB_URI, database=database)
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
