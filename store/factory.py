"""`open_store(url)`: pick a message store backend from a URL; `open_room_store(url)`,
`open_profile_store(url)`, `open_translation_store(url)`, `open_push_store(url)`: the room
store (rooms, members, read pointers), the profile store, the translation store and the push
store (push subscriptions, room mutes) of the same backend (same file or database).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's convention),
  `sqlite://:memory:` or `sqlite:///:memory:`; an optional `?synchronous=normal`.
- `mongodb://host[:port]/database[?options]` and `mongodb+srv://...`; the database defaults
  to `stompgate` when the URL names none.

The store comes back unopened: call `await store.open()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs

from store.mongo import MongoStore
from store.profiles_mongo import MongoProfileStore
from store.profiles_sqlite import SQLiteProfileStore
from store.push import PushStore
from store.push_mongo import MongoPushStore
from store.push_sqlite import SQLitePushStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore
from store.translations_mongo import MongoTranslationStore
from store.translations_sqlite import SQLiteTranslationStore

S = TypeVar("S")
M = TypeVar("M")


def open_store(url: str) -> SQLiteStore | MongoStore:
    return _pick(url, SQLiteStore, MongoStore)


def open_room_store(url: str) -> SQLiteRoomStore | MongoRoomStore:
    return _pick(url, SQLiteRoomStore, MongoRoomStore)


def open_profile_store(url: str) -> SQLiteProfileStore | MongoProfileStore:
    return _pick(url, SQLiteProfileStore, MongoProfileStore)


def open_translation_store(url: str) -> SQLiteTranslationStore | MongoTranslationStore:
    return _pick(url, SQLiteTranslationStore, MongoTranslationStore)


def open_push_store(url: str) -> PushStore:
    return _pick(url, SQLitePushStore, MongoPushStore)


def _pick(url: str, sqlite: Callable[..., S], mongo: Callable[[str], M]) -> S | M:
    """``sqlite(path, synchronous=...)`` or ``mongo(url)``, by the URL's scheme."""
    if url.startswith("sqlite://"):
        path, synchronous = _sqlite_path(url)
        return sqlite(path, synchronous=synchronous)
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
