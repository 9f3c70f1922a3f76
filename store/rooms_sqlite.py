"""`RoomStore` on SQLite: three tables beside `messages`, in the same file when the URL is the
same (`store.sqlite_db`: one thread, WAL mode).

- ``rooms`` (``id`` primary key);
- ``room_members`` (primary key (``room``, ``user``), index (``user``, ``room``) for a user's
  rooms); the group limit is checked and the members added in one ``BEGIN IMMEDIATE``
  transaction, so concurrent adds never pass it;
- ``read_pointers`` (primary key (``room``, ``user``)), written with an upsert that keeps the
  larger id: a pointer never moves back, whatever order the writes arrive in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store.rooms import Member, Room, RoomFullError, RoomNotFoundError
from store.sqlite_db import SQLiteBacked

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS rooms (
        id         TEXT    PRIMARY KEY,
        kind       TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        lang       TEXT    NOT NULL,
        owner      TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS room_members (
        room      TEXT    NOT NULL,
        user      TEXT    NOT NULL,
        role      TEXT    NOT NULL,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (room, user)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS room_members_user ON room_members (user, room)",
    """
    CREATE TABLE IF NOT EXISTS read_pointers (
        room       TEXT    NOT NULL,
        user       TEXT    NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (room, user)
    ) WITHOUT ROWID
    """,
)

_ROOM_COLUMNS = "id, kind, name, lang, owner, created_at"
_INSERT_ROOM = (
    "INSERT OR IGNORE INTO rooms (id, kind, name, lang, owner, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_MEMBER = (
    "INSERT OR IGNORE INTO room_members (room, user, role, joined_at) VALUES (?, ?, ?, ?)"
)
_UPSERT_POINTER = (
    "INSERT INTO read_pointers (room, user, message_id) VALUES (?, ?, ?)"
    " ON CONFLICT (room, user) DO UPDATE SET message_id = max(message_id, excluded.message_id)"
)


def _member_rows(members: Sequence[Member]) -> list[tuple[str, str, str, int]]:
    return [(m.room, m.user, m.role, m.joined_at) for m in members]


class SQLiteRoomStore(SQLiteBacked):
    """`RoomStore` on an SQLite file (or `:memory:`)."""

    SCHEMA = _SCHEMA

    async def create_room(self, room: Room, members: Sequence[Member]) -> bool:
        row = (room.id, room.kind, room.name, room.lang, room.owner, room.created_at)
        rows = _member_rows(members)

        def create(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(_INSERT_ROOM, row)
            if cursor.rowcount == 0:
                return False
            conn.executemany(_INSERT_MEMBER, rows)
            return True

        return await self._db.run(self._db.transaction, create)

    async def room(self, room_id: str) -> Room | None:
        found = await self.rooms([room_id])
        return found[0] if found else None

    async def rooms(self, room_ids: Sequence[str]) -> list[Room]:
        sql = f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id IN ({{marks}})"  # noqa: S608
        return [Room(*row) for row in await self._db.fetch_in(sql, list(dict.fromkeys(room_ids)))]

    async def add_members(self, room: str, members: Sequence[Member], *, limit: int) -> list[str]:
        def add(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM rooms WHERE id = ?", (room,)).fetchone() is None:
                raise RoomNotFoundError(room)
            present = {
                user
                for (user,) in conn.execute("SELECT user FROM room_members WHERE room = ?", (room,))
            }
            new = [m for m in dict((m.user, m) for m in members).values() if m.user not in present]
            if len(present) + len(new) > limit:
                raise RoomFullError(room, limit, len(present))
            conn.executemany(_INSERT_MEMBER, _member_rows(new))
            return [m.user for m in new]

        return await self._db.run(self._db.transaction, add)

    async def remove_member(self, room: str, user: str) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM room_members WHERE room = ? AND user = ?", (room, user)
            )
            return cursor.rowcount > 0

        return await self._db.run(self._db.transaction, remove)

    async def members(self, room: str) -> list[Member]:
        rows = await self._db.run(
            self._db.fetch,
            "SELECT room, user, role, joined_at FROM room_members WHERE room = ?"
            " ORDER BY joined_at, user",
            (room,),
        )
        return [Member(*row) for row in rows]

    async def rooms_of(self, user: str) -> list[str]:
        rows = await self._db.run(
            self._db.fetch,
            "SELECT room FROM room_members WHERE user = ? ORDER BY room",
            (user,),
        )
        return [room for (room,) in rows]

    async def set_read_pointer(self, room: str, user: str, message_id: int) -> int:
        def upsert(conn: sqlite3.Connection) -> int:
            conn.execute(_UPSERT_POINTER, (room, user, message_id))
            (stored,) = conn.execute(
                "SELECT message_id FROM read_pointers WHERE room = ? AND user = ?", (room, user)
            ).fetchone()
            return int(stored)

        return await self._db.run(self._db.transaction, upsert)

    async def read_pointers(self, room: str) -> dict[str, int]:
        rows = await self._db.run(
            self._db.fetch, "SELECT user, message_id FROM read_pointers WHERE room = ?", (room,)
        )
        return {user: int(message_id) for user, message_id in rows}

    async def pointers_of(self, user: str, rooms: Sequence[str]) -> dict[str, int]:
        sql = "SELECT room, message_id FROM read_pointers WHERE user = ? AND room IN ({marks})"
        rows = await self._db.fetch_in(sql, list(dict.fromkeys(rooms)), leading=(user,))
        return {room: int(message_id) for room, message_id in rows}
