"""The embedded message store: SQLite through the standard library, in one dedicated thread.

One connection lives in one worker thread for its whole life (sqlite3 connections are not
shared between threads); every call is a job submitted to that thread, so the event loop never
blocks on disk. The database runs in WAL mode. `insert_many` is one `executemany` of
`INSERT OR IGNORE` in one transaction per batch: the primary key on `id` and the unique
constraint on (`sender`, `client_id`) make it idempotent, and the changes counter tells how
many rows were new.

Durability: `synchronous=FULL` by default, so a batch the persist worker acknowledges to the
broker survives a power cut; `?synchronous=normal` in the URL trades that for speed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from store.base import StoreClosedError, StoredMessage, check_limit

T = TypeVar("T")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS messages (
        id        INTEGER PRIMARY KEY,
        room      TEXT    NOT NULL,
        sender    TEXT    NOT NULL,
        client_id TEXT    NOT NULL,
        sent_at   INTEGER NOT NULL,
        event     BLOB    NOT NULL,
        UNIQUE (sender, client_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id)",
)

_INSERT = (
    "INSERT OR IGNORE INTO messages (id, room, sender, client_id, sent_at, event)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, room, sender, client_id, sent_at, event"
_SYNCHRONOUS = {"off", "normal", "full", "extra"}

Row = tuple[int, str, str, str, int, bytes]


class SQLiteStore:
    """`MessageStore` on an SQLite file (or `:memory:`)."""

    def __init__(self, path: str, *, synchronous: str = "full") -> None:
        if synchronous.lower() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        self.path = path
        self.synchronous = synchronous.upper()
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self._run(self._close_sync)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    # -- MessageStore ---------------------------------------------------------------------

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        if not messages:
            return 0
        rows = [(m.id, m.room, m.sender, m.client_id, m.sent_at, m.event) for m in messages]
        return await self._run(self._insert_sync, rows)

    async def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        check_limit(limit)
        if limit == 0:
            return []
        sql, params = _history_query(room, before, after, limit)
        rows = await self._run(self._fetch_sync, sql, params)
        return [StoredMessage(*row) for row in rows]

    async def count(self, room: str | None = None) -> int:
        sql: str = "SELECT COUNT(*) FROM messages"
        params: tuple[Any, ...] = ()
        if room is not None:
            sql, params = "SELECT COUNT(*) FROM messages WHERE room = ?", (room,)
        rows = await self._run(self._fetch_sync, sql, params)
        return int(rows[0][0])

    # -- the store thread -------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreClosedError("SQLiteStore is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are explicit BEGIN/COMMIT below.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("SQLiteStore is not open")
        return self._conn

    def _insert_sync(self, rows: list[Row]) -> int:
        conn = self._connection()
        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return conn.total_changes - before

    def _fetch_sync(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()


def _history_query(
    room: str, before: int | None, after: int | None, limit: int
) -> tuple[str, tuple[Any, ...]]:
    base = f"SELECT {_COLUMNS} FROM messages WHERE room = ?"  # noqa: S608 - constant columns
    if before is not None and after is not None:
        return f"{base} AND id > ? AND id < ? ORDER BY id ASC LIMIT ?", (room, after, before, limit)
    if after is not None:
        return f"{base} AND id > ? ORDER BY id ASC LIMIT ?", (room, after, limit)
    if before is not None:
        return f"{base} AND id < ? ORDER BY id DESC LIMIT ?", (room, before, limit)
    return f"{base} ORDER BY id DESC LIMIT ?", (room, limit)
