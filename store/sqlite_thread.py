"""One SQLite connection in one dedicated thread, so the event loop never blocks on disk.

sqlite3 connections are not shared between threads: the connection lives in a
single-worker thread for its whole life, and every call is a job submitted to that thread
(`await thread.run(fn, *args)`, where `fn` gets the connection first). The database runs in
WAL mode (readers never wait for the writer, and several processes may share the file) with
a busy timeout, so the gateway and the workers can use one file.

`SQLiteStore` (messages) and `SQLitePushStore` (push subscriptions and mutes) each hold one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from store.base import StoreClosedError

T = TypeVar("T")

SYNCHRONOUS = {"off", "normal", "full", "extra"}


class SQLiteThread:
    """`open()` connects and runs `schema` (idempotent statements); `run(fn, *args)` calls
    `fn(connection, *args)` in the thread; `close()` closes the connection and the thread."""

    def __init__(
        self, path: str, schema: Sequence[str], *, synchronous: str = "full", name: str
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS)}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.schema = tuple(schema)
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        try:
            await self._submit(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self._submit(self._close_sync)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` in the store's thread."""
        return await self._submit(self._call, fn, args)

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreClosedError(f"{self.name} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:
            raise StoreClosedError(f"{self.name} is not open")
        return fn(self._conn, *args)

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are explicit BEGIN/COMMIT.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            for statement in self.schema:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def in_transaction(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
    """`fn()` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
