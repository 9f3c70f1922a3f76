"""Message stores behind one small interface (`MessageStore`; see base.py for the contract),
the room stores of the same backends (`RoomStore`: rooms, members, read pointers; see
rooms.py), and push subscriptions and room mutes behind another (`PushStore`, push.py).

A core package: the gateway (history reads, catch-up) and the workers (the persist worker)
both import it, and it imports neither of them.
"""

from store.base import MessageCounts, MessageStore, StoreClosedError, StoredMessage
from store.factory import open_push_store, open_room_store, open_store
from store.mongo import MongoStore
from store.push import KINDS, PushStore, PushSubscription, new_subscription, subscription_id
from store.push_mongo import MongoPushStore
from store.push_sqlite import SQLitePushStore
from store.rooms import Member, Room, RoomFullError, RoomNotFoundError, RoomStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore

__all__ = [
    "KINDS",
    "Member",
    "MessageCounts",
    "MessageStore",
    "MongoPushStore",
    "MongoRoomStore",
    "MongoStore",
    "PushStore",
    "PushSubscription",
    "Room",
    "RoomFullError",
    "RoomNotFoundError",
    "RoomStore",
    "SQLitePushStore",
    "SQLiteRoomStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoredMessage",
    "new_subscription",
    "open_push_store",
    "open_room_store",
    "open_store",
    "subscription_id",
]
