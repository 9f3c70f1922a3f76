"""Reading a room's history from the recent cache and, where it falls short, the store.

Both directions merge the two sources by id without duplicates. They assume what the system
guarantees: the cache holds the newest messages of a room (a suffix) and the store holds all
but possibly the newest few not yet persisted (a prefix), and the two overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.chat.recent import RecentCache
from gateway.chat.store_api import MessageReader


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    event: bytes
    """chat.message.v1 JSON."""


class HistoryReader:
    def __init__(self, cache: RecentCache, store: MessageReader | None) -> None:
        self._cache = cache
        self._store = store

    async def after(self, room: str, after_id: int, limit: int) -> list[HistoryEntry]:
        """The oldest ``limit`` messages with id > after_id, ascending."""
        oldest, cached = await self._cache.after(room, after_id, limit)
        entries = {m.id: m.event for m in cached}
        complete = oldest is not None and oldest <= after_id + 1
        if not complete and self._store is not None:
            for stored in await self._store.history(room, after=after_id, limit=limit):
                entries.setdefault(stored.id, stored.event)
        return [HistoryEntry(i, entries[i]) for i in sorted(entries)[:limit]]

    async def before(self, room: str, before_id: int | None, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` messages with id < before_id (or overall), ascending."""
        cached = await self._cache.before(room, before_id, limit)
        entries = {m.id: m.event for m in cached}
        if len(entries) < limit and self._store is not None:
            for stored in await self._store.history(room, before=before_id, limit=limit):
                entries.setdefault(stored.id, stored.event)
        newest = sorted(entries)[-limit:]
        return [HistoryEntry(i, entries[i]) for i in newest]
