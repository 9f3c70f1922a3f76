"""`open_store(url)`: pick a message store backend from a URL; `open_room_store(url)`: the
room store of the same backend (rooms, members, read pointers; same file or database).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's convention),
  `sqlite://:memory:` or `sqlite:///:memory:`; an optional `?synchronous=normal`.
- `mongodb://host[:port]/database[?options]` and `mongodb+srv://...`; the database defaults
  to `stompgate` when the URL names none.

The store comes back unopened: call `await store.open()`.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from store.mongo import MongoStore
from store.rooms_mongo import MongoRoomStore
from store.rooms_sqlite import SQLiteRoomStore
from store.sqlite import SQLiteStore


def open_store(url: str) -> SQLiteStore | MongoStore:
    if _backend(url) == "sqlite":
        path, synchronous = _sqlite(url)
        return SQLiteStore(path, synchronous=synchronous)
    return MongoStore(url)


def open_room_store(url: str) -> SQLiteRoomStore | MongoRoomStore:
    if _backend(url) == "sqlite":
        path, synchronous = _sqlite(url)
        return SQLiteRoomStore(path, synchronous=synchronous)
    return MongoRoomStore(url)


def _backend(url: str) -> str:
    if url.startswith("sqlite://"):
        return "sqlite"
    if url.startswith(("mongodb://", "mongodb+srv://")):
        return "mongodb"
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(f"unsupported store URL scheme {scheme!r}: use sqlite:// or mongodb://")


def _sqlite(url: str) -> tuple[str, str]:
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
