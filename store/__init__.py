"""Message stores behind one small interface (`MessageStore`; see base.py for the contract),
and the room stores of the same backends (`RoomStore`: rooms, members, read pointers; see
rooms.py).

A core package: the gateway (history reads, catch-up) and the workers (the persist worker)
both import it, and it imports neither of them.
"""

from store.base import MessageCounts, MessageStore, StoreClosedError, StoredMessage
from store.factory import open_room_store, open_store
from store.mongo import MongoStore
from store.rooms import Member, Room, RoomFullError, RoomNotFoundError, RoomStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore

__all__ = [
    "Member",
    "MessageCounts",
    "MessageStore",
    "MongoRoomStore",
    "MongoStore",
    "Room",
    "RoomFullError",
    "RoomNotFoundError",
    "RoomStore",
    "SQLiteRoomStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoredMessage",
    "open_room_store",
    "open_store",
]
