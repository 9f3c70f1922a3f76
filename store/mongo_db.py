"""One MongoDB database with the indexes of its collections: what every MongoDB store of the
package shares (`MongoBacked`).

The client is PyMongo's native asyncio client (not connected yet when made: PyMongo connects
on first use); `open()` creates each collection's indexes (one ``createIndexes`` per
collection, idempotently), `close()` closes the client. The database is the one the store is
given, else the URL's, else `DEFAULT_DATABASE`.

`UNAVAILABLE_ERRORS`: PyMongo's errors for a database that cannot be reached now (no server
selectable, a connection lost, a network timeout), i.e. failures that pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure

from store.base import StoreClosedError

DEFAULT_DATABASE = "stompgate"
#: ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, ... derive from it.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (ConnectionFailure,)

Document = dict[str, Any]


class MongoBacked:
    """A store on MongoDB collections; a subclass names them and their indexes in
    ``INDEXES``."""

    INDEXES: Mapping[str, Sequence[IndexModel]] = {}

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.database = database
        self.client_options = dict(client_options or {})
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None

    async def open(self) -> None:
        if self._client is not None:
            return
        client, db = connect(self.url, self.database, self.client_options)
        try:
            for name, indexes in self.INDEXES.items():
                await db[name].create_indexes(list(indexes))
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    def collection(self, name: str) -> AsyncCollection[Document]:
        if self._db is None:
            raise StoreClosedError(f"{type(self).__name__} is not open")
        return self._db[name]


def connect(
    url: str, database: str | None, options: Mapping[str, Any]
) -> tuple[AsyncMongoClient[Document], AsyncDatabase[Document]]:
    """A client (not connected yet: PyMongo connects on first use) and the database named by
    ``database``, or by the URL, or `DEFAULT_DATABASE`."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, **options)
    db = client[database] if database else client.get_default_database(DEFAULT_DATABASE)
    return client, db
