"""Reading a room's history from the recent cache and, where it falls short, the store.

Both directions merge the two sources by id without duplicates. The cache holds the newest
messages of a room (a suffix); the store holds what the persist worker wrote so far. What
the store must have before a page that reaches below the cache is served is tracked by
`gateway.chat.unstored`: every unstored id within the page's range must be in the page, or
the read raises `StoreBehindError` (never a page with a silent gap). A store that cannot be
read now (one of `store.UNAVAILABLE_ERRORS`) is `StoreUnreachableError`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from gateway.chat.errors import StoreBehindError, StoreUnreachableError
from gateway.chat.recent import RecentCache
from gateway.chat.store_api import MessageReader, StoredMessageLike
from gateway.chat.unstored import UnstoredSet
from store import UNAVAILABLE_ERRORS


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    event: bytes
    """chat.message.v1 JSON."""


class HistoryReader:
    def __init__(
        self, cache: RecentCache, store: MessageReader | None, unstored: UnstoredSet
    ) -> None:
        self._cache = cache
        self._store = store
        self._unstored = unstored

    async def after(self, room: str, after_id: int, limit: int) -> list[HistoryEntry]:
        """The oldest ``limit`` messages with id > after_id, ascending.

        `StoreBehindError` when they reach below the cache and the store lacks one of them.
        """
        oldest, cached = await self._cache.after(room, after_id, limit)
        entries = {m.id: m.event for m in cached}
        complete = oldest is not None and oldest <= after_id + 1
        if complete or self._store is None:
            return [HistoryEntry(i, entries[i]) for i in sorted(entries)[:limit]]
        # The unstored set is read before the store: an id pruned from it meanwhile was
        # found in the store by someone else, so this store read sees it too.
        unstored = await self._unstored.after(room, after_id, limit)
        stored = await self._stored(self._store, room, after=after_id, limit=limit)
        for message in stored:
            entries.setdefault(message.id, message.event)
        page = sorted(entries)[:limit]
        # A full page covers ids up to its last one; a short one, everything above after_id.
        # (`limit` unstored ids suffice: if all were in the page, the page is exactly them.)
        upper = page[-1] if len(page) >= limit else None
        await self._check(
            room, unstored, entries, {m.id for m in stored}, lambda i: upper is None or i < upper
        )
        return [HistoryEntry(i, entries[i]) for i in page]

    async def before(self, room: str, before_id: int | None, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` messages with id < before_id (or overall), ascending.

        `StoreBehindError` when they reach below the cache and the store lacks one of them.
        """
        cached = await self._cache.before(room, before_id, limit)
        entries = {m.id: m.event for m in cached}
        if len(entries) >= limit or self._store is None:
            newest = sorted(entries)[-limit:]
            return [HistoryEntry(i, entries[i]) for i in newest]
        unstored = await self._unstored.before(room, before_id, limit)
        stored = await self._stored(self._store, room, before=before_id, limit=limit)
        for message in stored:
            entries.setdefault(message.id, message.event)
        page = sorted(entries)[-limit:]
        lower = page[0] if len(page) >= limit else None
        await self._check(
            room, unstored, entries, {m.id for m in stored}, lambda i: lower is None or i > lower
        )
        return [HistoryEntry(i, entries[i]) for i in page]

    @staticmethod
    async def _stored(
        store: MessageReader,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> Sequence[StoredMessageLike]:
        try:
            return await store.history(room, before=before, after=after, limit=limit)
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnreachableError(str(exc)) from exc

    async def _check(
        self,
        room: str,
        unstored: list[int],
        entries: Collection[int],
        stored: Collection[int],
        in_range: Callable[[int], bool],
    ) -> None:
        if not unstored:
            return
        await self._unstored.stored(room, [i for i in unstored if i in stored])
        missing = [i for i in unstored if i not in entries and in_range(i)]
        outstanding = await self._unstored.outstanding(room, missing)
        if outstanding:
            raise StoreBehindError(room, sorted(outstanding))
