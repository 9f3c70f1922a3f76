"""Message stores behind one small interface (`MessageStore`); see base.py for the contract.
Push subscriptions and room mutes behind another (`PushStore`, push.py), on the same backends.

A core package: the gateway (history reads, catch-up) and the workers (the persist worker)
both import it, and it imports neither of them.
"""

from store.base import MessageStore, StoreClosedError, StoredMessage
from store.factory import open_push_store, open_store
from store.mongo import MongoStore
from store.push import KINDS, PushStore, PushSubscription, new_subscription, subscription_id
from store.push_mongo import MongoPushStore
from store.push_sqlite import SQLitePushStore
from store.sqlite import SQLiteStore

__all__ = [
    "KINDS",
    "MessageStore",
    "MongoPushStore",
    "MongoStore",
    "PushStore",
    "PushSubscription",
    "SQLitePushStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoredMessage",
    "new_subscription",
    "open_push_store",
    "open_store",
    "subscription_id",
]
