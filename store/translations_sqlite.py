"""`TranslationStore` on SQLite: one table, ``translations``, primary key (``message_id``,
``lang``), beside the messages when the URL is the same (`store.sqlite_db`). ``INSERT OR
IGNORE`` on that key makes `insert` idempotent; `of_messages` walks it.
"""

from __future__ import annotations

from collections.abc import Sequence

from store.sqlite_db import SQLiteBacked
from store.translations import StoredTranslation

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS translations (
        message_id INTEGER NOT NULL,
        lang       TEXT    NOT NULL,
        room       TEXT    NOT NULL,
        provider   TEXT    NOT NULL,
        event      BLOB    NOT NULL,
        PRIMARY KEY (message_id, lang)
    ) WITHOUT ROWID
    """,
)
_COLUMNS = "message_id, lang, room, provider, event"
_INSERT = f"INSERT OR IGNORE INTO translations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608


class SQLiteTranslationStore(SQLiteBacked):
    """`TranslationStore` on an SQLite file (or `:memory:`)."""

    SCHEMA = _SCHEMA

    async def insert(self, translation: StoredTranslation) -> bool:
        t = translation
        row = (t.message_id, t.lang, t.room, t.provider, t.event)
        return await self._db.run(
            self._db.transaction, lambda c: c.execute(_INSERT, row).rowcount > 0
        )

    async def of_messages(self, message_ids: Sequence[int]) -> list[StoredTranslation]:
        sql = (
            f"SELECT {_COLUMNS} FROM translations"  # noqa: S608
            " WHERE message_id IN ({marks}) ORDER BY message_id, lang"
        )
        # ascending ids, so the batches' rows follow each other in order
        rows = await self._db.fetch_in(sql, sorted(set(message_ids)))
        return [StoredTranslation(*row) for row in rows]
