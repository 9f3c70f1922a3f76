"""One SQLite database file in one dedicated thread: what every SQLite store of the package
shares.

One connection lives in one worker thread for its whole life (sqlite3 connections are not
shared between threads); every call is a job submitted to that thread, so the event loop never
blocks on disk. The database runs in WAL mode, so several stores (and processes) can use the
same file: readers never wait, a writer waits up to 5 s for another (``busy_timeout``).

An error that passes (the file locked past that wait, an I/O error, the disk full: SQLite's
BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL) is raised as `StoreUnavailableError`, so the
caller can tell "try again later" from a bug.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from store.base import StoreClosedError, StoreUnavailableError

T = TypeVar("T")

SYNCHRONOUS = frozenset({"off", "normal", "full", "extra"})
#: Values of one ``IN (...)`` list per statement: SQLite's default limit of host parameters
#: in one statement is 999 (older builds).
IN_BATCH = 500
#: SQLite's primary result codes for failures that pass (a later try may succeed).
_PASSING = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


class SQLiteDatabase:
    """An SQLite file (or ``:memory:``) opened with ``schema`` (statements run at open)."""

    def __init__(
        self, path: str, *, synchronous: str, schema: Sequence[str], name: str = "SQLite store"
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS)}")
        self.path = path
        self.synchronous = synchronous.upper()
        self._schema = tuple(schema)
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self.run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self.run(self._close_sync)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the database's thread (`StoreUnavailableError` for a failure
        that passes)."""
        if self._executor is None:
            raise StoreClosedError(f"{self._name} is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _PASSING:
                raise StoreUnavailableError(f"{self._name} unavailable: {exc}") from exc
            raise

    def connection(self) -> sqlite3.Connection:
        """The connection (only from inside a job that `run` runs)."""
        if self._conn is None:
            raise StoreClosedError(f"{self._name} is not open")
        return self._conn

    def fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Rows of one query (only from inside a job that `run` runs)."""
        return self.connection().execute(sql, params).fetchall()

    async def fetch_in(
        self, sql: str, values: Sequence[Any], *, leading: tuple[Any, ...] = ()
    ) -> list[Any]:
        """Rows of ``sql`` for every one of ``values``: ``sql`` has ``{marks}`` where the list
        of an ``IN (...)`` goes, and is run once per `IN_BATCH` values (SQLite caps the host
        parameters of one statement), after the ``leading`` parameters; one job in all."""
        return await self.run(self._fetch_in_sync, sql, list(values), leading)

    def _fetch_in_sync(self, sql: str, values: list[Any], leading: tuple[Any, ...]) -> list[Any]:
        rows: list[Any] = []
        for start in range(0, len(values), IN_BATCH):
            chunk = values[start : start + IN_BATCH]
            rows += self.fetch(sql.format(marks=",".join("?" * len(chunk))), (*leading, *chunk))
        return rows

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if it
        raises (only from inside a job that `run` runs)."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are explicit BEGIN/COMMIT.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            for statement in self._schema:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SQLiteBacked:
    """What every SQLite store shares: its database (one file, one thread), opened and closed
    with it. A subclass names its tables in ``SCHEMA``."""

    SCHEMA: tuple[str, ...] = ()

    def __init__(self, path: str, *, synchronous: str = "full") -> None:
        self._db = SQLiteDatabase(
            path, synchronous=synchronous, schema=self.SCHEMA, name=type(self).__name__
        )

    @property
    def path(self) -> str:
        return self._db.path

    @property
    def synchronous(self) -> str:
        return self._db.synchronous

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()
