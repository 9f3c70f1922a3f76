"""`PushStore` on SQLite: two tables beside the messages, in the same file.

    push_subscriptions (id PRIMARY KEY, user, kind, address, p256dh, auth, created_at)
        index on (user, created_at)
    room_mutes (user, room, PRIMARY KEY (user, room))

The id is derived from (user, kind, address) (`store.push.subscription_id`), so a second
registration of the same target is `INSERT ... ON CONFLICT (id) DO UPDATE` of its keys. Like
the message store, it runs in a thread of its own (`store.sqlite_db`), in WAL mode, so
the gateway (which writes subscriptions) and the notify worker (which reads them and removes
the ones a provider reports gone) can share the file.
"""

from __future__ import annotations

import sqlite3

from store.push import PushSubscription
from store.sqlite_db import SQLiteBacked

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS push_subscriptions (
        id         TEXT    PRIMARY KEY,
        user       TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        address    TEXT    NOT NULL,
        p256dh     TEXT    NOT NULL,
        auth       TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user, created_at)",
    """
    CREATE TABLE IF NOT EXISTS room_mutes (
        user TEXT NOT NULL,
        room TEXT NOT NULL,
        PRIMARY KEY (user, room)
    )
    """,
)
_COLUMNS = "id, user, kind, address, p256dh, auth, created_at"
_UPSERT = (
    f"INSERT INTO push_subscriptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (id) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth"
)


class SQLitePushStore(SQLiteBacked):
    """`PushStore` on an SQLite file (or `:memory:`)."""

    SCHEMA = _SCHEMA

    async def save_subscription(self, subscription: PushSubscription) -> bool:
        return await self._db.run(self._db.transaction, lambda conn: _save(conn, subscription))

    async def subscriptions(self, user: str) -> list[PushSubscription]:
        rows = await self._db.run(
            self._db.fetch,
            f"SELECT {_COLUMNS} FROM push_subscriptions"  # noqa: S608 - constant columns
            " WHERE user = ? ORDER BY created_at, id",
            (user,),
        )
        return [_subscription(row) for row in rows]

    async def subscription(self, subscription_id: str) -> PushSubscription | None:
        rows = await self._db.run(
            self._db.fetch,
            f"SELECT {_COLUMNS} FROM push_subscriptions WHERE id = ?",  # noqa: S608
            (subscription_id,),
        )
        return _subscription(rows[0]) if rows else None

    async def delete_subscription(self, subscription_id: str, *, user: str | None = None) -> bool:
        params: tuple[str, ...]
        if user is None:
            sql, params = "DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,)
        else:
            sql = "DELETE FROM push_subscriptions WHERE id = ? AND user = ?"
            params = (subscription_id, user)
        return await self._db.run(self._change, sql, params) > 0

    async def set_muted(self, user: str, room: str, muted: bool) -> None:
        sql = (
            "INSERT OR IGNORE INTO room_mutes (user, room) VALUES (?, ?)"
            if muted
            else "DELETE FROM room_mutes WHERE user = ? AND room = ?"
        )
        await self._db.run(self._change, sql, (user, room))

    async def muted_rooms(self, user: str) -> list[str]:
        rows = await self._db.run(
            self._db.fetch, "SELECT room FROM room_mutes WHERE user = ? ORDER BY room", (user,)
        )
        return [str(row[0]) for row in rows]

    async def is_muted(self, user: str, room: str) -> bool:
        rows = await self._db.run(
            self._db.fetch, "SELECT 1 FROM room_mutes WHERE user = ? AND room = ?", (user, room)
        )
        return bool(rows)

    def _change(self, sql: str, params: tuple[str, ...]) -> int:
        """Rows one statement changed (in the store thread)."""
        return self._db.connection().execute(sql, params).rowcount


# -- in the store thread ---------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str, int]


def _subscription(row: Row) -> PushSubscription:
    id_, user, kind, address, p256dh, auth, created_at = row
    return PushSubscription(
        id=id_,
        user=user,
        kind=kind,  # type: ignore[arg-type]  # only KINDS are ever written
        address=address,
        p256dh=p256dh,
        auth=auth,
        created_at=int(created_at),
    )


def _save(conn: sqlite3.Connection, s: PushSubscription) -> bool:
    """Insert or update ``s`` (in a transaction); whether it is new."""
    exists = conn.execute("SELECT 1 FROM push_subscriptions WHERE id = ?", (s.id,)).fetchone()
    conn.execute(_UPSERT, (s.id, s.user, s.kind, s.address, s.p256dh, s.auth, s.created_at))
    return exists is None
