"""Message stores behind one small interface (`MessageStore`; see base.py for the contract),
and, on the same backends, the room stores (`RoomStore`: rooms, members, read pointers; see
rooms.py), the profile stores (`ProfileStore`: preferred languages; profiles.py), the
translation stores (`TranslationStore`: messages' translations; translations.py) and the push
stores (`PushStore`: push subscriptions and room mutes; push.py). Every SQLite store is an
`store.sqlite_db.SQLiteBacked` (one file, one thread), every MongoDB store a
`store.mongo_db.MongoBacked` (one client, the collections' indexes made at open).

A core package: the gateway (history reads, catch-up) and the workers (the persist worker)
both import it, and it imports neither of them.
"""

from store.base import (
    Conflict,
    MessageCounts,
    MessageStore,
    StoreClosedError,
    StoreConflictError,
    StoredMessage,
    StoreUnavailableError,
)
from store.factory import (
    open_profile_store,
    open_push_store,
    open_room_store,
    open_store,
    open_translation_store,
)
from store.mongo import MongoStore
from store.mongo_db import UNAVAILABLE_ERRORS as _MONGO_UNAVAILABLE
from store.profiles import Profile, ProfileStore
from store.profiles_mongo import MongoProfileStore
from store.profiles_sqlite import SQLiteProfileStore
from store.push import KINDS, PushStore, PushSubscription, new_subscription, subscription_id
from store.push_mongo import MongoPushStore
from store.push_sqlite import SQLitePushStore
from store.rooms import Member, Room, RoomFullError, RoomNotFoundError, RoomStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore
from store.translations import StoredTranslation, TranslationStore
from store.translations_mongo import MongoTranslationStore
from store.translations_sqlite import SQLiteTranslationStore

#: What a store raises while it cannot be used, for a reason that passes: SQLite's
#: `StoreUnavailableError`, and PyMongo's connection failures (raised as they are).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (StoreUnavailableError, *_MONGO_UNAVAILABLE)

__all__ = [
    "KINDS",
    "UNAVAILABLE_ERRORS",
    "Conflict",
    "Member",
    "MessageCounts",
    "MessageStore",
    "MongoProfileStore",
    "MongoPushStore",
    "MongoRoomStore",
    "MongoStore",
    "MongoTranslationStore",
    "Profile",
    "ProfileStore",
    "PushStore",
    "PushSubscription",
    "Room",
    "RoomFullError",
    "RoomNotFoundError",
    "RoomStore",
    "SQLiteProfileStore",
    "SQLitePushStore",
    "SQLiteRoomStore",
    "SQLiteStore",
    "SQLiteTranslationStore",
    "StoreClosedError",
    "StoreConflictError",
    "StoreUnavailableError",
    "StoredMessage",
    "StoredTranslation",
    "TranslationStore",
    "new_subscription",
    "open_profile_store",
    "open_push_store",
    "open_room_store",
    "open_store",
    "open_translation_store",
    "subscription_id",
]
