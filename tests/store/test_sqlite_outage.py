"""An SQLite store whose file is locked by another writer says so as `StoreUnavailableError`
(a failure that passes), and keeps raising a bug as the `sqlite3` error it is."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import StoreUnavailableError
from store.sqlite_db import SQLiteDatabase

SCHEMA = ("CREATE TABLE IF NOT EXISTS t (x INTEGER)",)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    database = SQLiteDatabase(str(tmp_path / "t.db"), synchronous="full", schema=SCHEMA)
    await database.open()
    # The store waits 5 s for a lock; the test need not.
    await database.run(lambda: database.connection().execute("PRAGMA busy_timeout=50"))
    yield database
    await database.close()


def _insert(database: SQLiteDatabase) -> None:
    database.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))


async def test_a_write_while_another_connection_holds_the_lock_is_unavailable(
    db: SQLiteDatabase,
) -> None:
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            await db.run(_insert, db)
        # WAL: reads go on meanwhile.
        assert await db.run(db.fetch, "SELECT COUNT(*) FROM t", ()) == [(0,)]
        other.execute("ROLLBACK")
    finally:
        other.close()
    await db.run(_insert, db)  # the lock gone, the same write succeeds
    assert await db.run(db.fetch, "SELECT COUNT(*) FROM t", ()) == [(1,)]


async def test_a_bug_is_not_an_outage(db: SQLiteDatabase) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table") as raised:
        await db.run(db.fetch, "SELECT * FROM missing", ())
    assert not isinstance(raised.value, StoreUnavailableError)
