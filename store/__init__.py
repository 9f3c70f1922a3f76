"""Message stores behind one small interface (`MessageStore`); see base.py for the contract.

A core package: the gateway (history reads, catch-up) and the workers (the persist worker)
both import it, and it imports neither of them.
"""

from store.base import MessageStore, StoreClosedError, StoredMessage
from store.factory import open_store
from store.mongo import MongoStore
from store.sqlite import SQLiteStore

__all__ = [
    "MessageStore",
    "MongoStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoredMessage",
    "open_store",
]
