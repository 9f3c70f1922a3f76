"""The embedded message store: SQLite through the standard library, in one dedicated thread.

The file, its thread and WAL mode are `store.sqlite_db.SQLiteDatabase`'s. `insert_many` is
one `executemany` of `INSERT OR IGNORE` in one transaction per batch: the primary key on `id`
and the unique constraint on (`sender`, `client_id`) make it idempotent, and the changes
counter tells how many rows were new. When fewer rows were new than given, the batch's ids are
read back (same thread, same transaction) and every row whose id is stored with another room,
sender or client id is a conflict (`StoreConflictError`); the rest were true duplicates.

Durability: `synchronous=FULL` by default, so a batch the persist worker acknowledges to the
broker survives a power cut; `?synchronous=normal` in the URL trades that for speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.base import (
    Conflict,
    StoreConflictError,
    StoredMessage,
    check_limit,
    is_same_message,
)
from store.sqlite_db import IN_BATCH, SQLiteBacked

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
_BY_ID = "SELECT id, room, sender, client_id FROM messages WHERE id IN ({marks})"

Row = tuple[int, str, str, str, int, bytes]


class SQLiteStore(SQLiteBacked):
    """`MessageStore` (and `MessageCounts`) on an SQLite file (or `:memory:`)."""

    SCHEMA = _SCHEMA

    # -- MessageStore ---------------------------------------------------------------------

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        if not messages:
            return 0
        rows = [(m.id, m.room, m.sender, m.client_id, m.sent_at, m.event) for m in messages]
        stored, found = await self._db.run(self._insert_sync, rows)
        if stored < len(messages):
            conflicts = _conflicts(messages, found)
            if conflicts:
                raise StoreConflictError(stored, conflicts)
        return stored

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
        rows = await self._db.run(self._db.fetch, sql, params)
        return [StoredMessage(*row) for row in rows]

    async def count(self, room: str | None = None, *, upto: int | None = None) -> int:
        sql: str = "SELECT COUNT(*) FROM messages"
        params: tuple[Any, ...] = ()
        if room is not None and upto is not None:
            sql, params = "SELECT COUNT(*) FROM messages WHERE room = ? AND id <= ?", (room, upto)
        elif room is not None:
            sql, params = "SELECT COUNT(*) FROM messages WHERE room = ?", (room,)
        elif upto is not None:
            raise ValueError("`upto` counts the messages of one room: give the room")
        rows = await self._db.run(self._db.fetch, sql, params)
        return int(rows[0][0])

    # -- MessageCounts --------------------------------------------------------------------

    async def newest_id(self, room: str, *, sender: str) -> int | None:
        rows = await self._db.run(
            self._db.fetch,
            "SELECT id FROM messages WHERE room = ? AND sender = ? ORDER BY id DESC LIMIT 1",
            (room, sender),
        )
        return int(rows[0][0]) if rows else None

    # -- the store thread -------------------------------------------------------------------

    def _insert_sync(self, rows: list[Row]) -> tuple[int, dict[int, tuple[str, str, str]]]:
        """(rows newly stored, {id: (room, sender, client_id)} of the batch's ids as stored
        when some row was not new; empty otherwise)."""
        conn = self._db.connection()
        before = conn.total_changes
        found: dict[int, tuple[str, str, str]] = {}

        def insert(c: Any) -> None:
            c.executemany(_INSERT, rows)
            if conn.total_changes - before < len(rows):
                ids = sorted({row[0] for row in rows})
                for start in range(0, len(ids), IN_BATCH):
                    chunk = ids[start : start + IN_BATCH]
                    sql = _BY_ID.format(marks=",".join("?" * len(chunk)))
                    for id_, room, sender, client_id in c.execute(sql, chunk):
                        found[int(id_)] = (room, sender, client_id)

        self._db.transaction(insert)
        return conn.total_changes - before, found


def _conflicts(
    messages: Sequence[StoredMessage], found: dict[int, tuple[str, str, str]]
) -> list[Conflict]:
    """The messages whose id is stored as another message (absent ids: client retries)."""
    conflicts = []
    for m in messages:
        stored = found.get(m.id)
        if stored is not None and not is_same_message(m, *stored):
            conflicts.append(Conflict(m, *stored))
    return conflicts


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
