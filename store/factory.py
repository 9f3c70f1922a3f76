"""`open_store(url)`: pick a message store backend from a URL; `open_room_store(url)`: the
room store of the same backend (rooms, members, read pointers; same file or database).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's convention),
  `sqlite://:memory:` or `sqlite:///:memory:`; an optional `?synchronous=normal`.
- `mongodb://host[:port]/database[?options]` and `mongodb+srv://...`; the database defaults
  to `stompgate` when the URL names none.

The store comes back unopened: call `await store.open()`. `open_push_store(url)` takes the
same URLs and returns the push-subscription store on the same file or database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs

from store.mongo import MongoStore
from store.push import PushStore
from store.push_mongo import MongoPushStore
from store.push_sqlite import SQLitePushStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore

T = TypeVar("T")


def open_store(url: str) -> SQLiteStore | MongoStore:
    return _open(url, _sqlite_messages, MongoStore)


def open_room_store(url: str) -> SQLiteRoomStore | MongoRoomStore:
    return _open(url, _sqlite_rooms, MongoRoomStore)


def open_push_store(url: str) -> PushStore:
    return _open(url, _sqlite_push, MongoPushStore)


def _sqlite_messages(path: str, synchronous: str) -> SQLiteStore | MongoStore:
    return SQLiteStore(path, synchronous=synchronous)


def _sqlite_rooms(path: str, synchronous: str) -> SQLiteRoomStore | MongoRoomStore:
    return SQLiteRoomStore(path, synchronous=synchronous)


def _sqlite_push(path: str, synchronous: str) -> PushStore:
    return SQLitePushStore(path, synchronous=synchronous)


def _open(url: str, sqlite: Callable[[str, str], T], mongo: Callable[[str], T]) -> T:
    if url.startswith("sqlite://"):
        return sqlite(*_sqlite_path(url))
    if url.startswith(("mongodb://", "mongodb+srv://")):
        return mongo(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(f"unsupported store URL scheme {scheme!r}: use sqlite:// or mongodb://")


def _sqlite_path(url: str) -> tuple[str, str]:
    """(path, synchronous) of an sqlite:// URL."""
    rest = url.removeprefix("sqlite://")
    rest, _, query = rest.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"unknown sqlite store option(s): {sorted(unknown)}")
    if rest in (":memory:", "/:memory:"):
        path = ":memory:"
    elif rest.startswith("/") and len(rest) > 1:
        path = rest[1:]  # "sqlite:///a/b.db" -> "a/b.db"; "sqlite:////a/b.db" -> "/a/b.db"
    else:
        raise ValueError(f"bad sqlite store URL {url!r}: use sqlite:///path or sqlite://:memory:")
    return path, options.get("synchronous", "full")
