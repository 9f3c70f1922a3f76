"""`ProfileStore` on SQLite: one table, ``profiles`` (primary key ``user``), beside the
messages and rooms when the URL is the same (`store.sqlite_db`: one thread, WAL mode).

Each write is one upsert that touches only its own column, so a user's choice and their
token's claim never overwrite each other; recording a claim that did not change writes
nothing (the upsert's ``WHERE``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store.profiles import Profile
from store.sqlite_db import SQLiteBacked

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS profiles (
        user       TEXT    PRIMARY KEY,
        lang       TEXT    NOT NULL,
        token_lang TEXT    NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)
_COLUMNS = "user, lang, token_lang, updated_at"
_SET_LANG = (
    "INSERT INTO profiles (user, lang, token_lang, updated_at) VALUES (?, ?, '', ?)"
    " ON CONFLICT (user) DO UPDATE SET lang = excluded.lang, updated_at = excluded.updated_at"
)
_RECORD_CLAIMED_LANG = (
    "INSERT INTO profiles (user, lang, token_lang, updated_at) VALUES (?, '', ?, ?)"
    " ON CONFLICT (user) DO UPDATE SET token_lang = excluded.token_lang,"
    " updated_at = excluded.updated_at WHERE token_lang <> excluded.token_lang"
)


class SQLiteProfileStore(SQLiteBacked):
    """`ProfileStore` on an SQLite file (or `:memory:`)."""

    SCHEMA = _SCHEMA

    async def profile(self, user: str) -> Profile | None:
        found = await self.profiles([user])
        return found[0] if found else None

    async def profiles(self, users: Sequence[str]) -> list[Profile]:
        sql = f"SELECT {_COLUMNS} FROM profiles WHERE user IN ({{marks}})"  # noqa: S608
        return [Profile(*row) for row in await self._db.fetch_in(sql, list(dict.fromkeys(users)))]

    async def set_lang(self, user: str, lang: str, *, at: int) -> Profile:
        def write(conn: sqlite3.Connection) -> Profile:
            conn.execute(_SET_LANG, (user, lang, at))
            row = conn.execute(f"SELECT {_COLUMNS} FROM profiles WHERE user = ?", (user,))  # noqa: S608
            return Profile(*row.fetchone())

        return await self._db.run(self._db.transaction, write)

    async def record_token_lang(self, user: str, lang: str, *, at: int) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute(_RECORD_CLAIMED_LANG, (user, lang, at)).rowcount > 0

        return await self._db.run(self._db.transaction, write)
