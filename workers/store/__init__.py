"""Message stores behind one small interface (`MessageStore`); see base.py for the contract."""

from workers.store.base import MessageStore, StoreClosedError, StoredMessage
from workers.store.factory import open_store
from workers.store.mongo import MongoStore
from workers.store.sqlite import SQLiteStore

__all__ = [
    "MessageStore",
    "MongoStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoredMessage",
    "open_store",
]
