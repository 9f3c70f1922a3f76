"""Who reads a room, in which languages: what the translation worker translates each message
into, and the language a sender writes in, read from the room and profile stores.

A room needs its own language (`store.Room.lang`, set when it was created), the preferred
language of each member (`store.Profile.preferred_lang`: the one they chose, else the one
their token claims), and the worker's `TARGETS` (every room). Tags are normalized
(`languages.normalize`: ``pt_br`` is ``pt-BR``); one that is not an ISO 639-1 tag cannot reach
a provider and is left out. A room the room store does not know (a topic nobody made with the
rooms API) has no members: only the `TARGETS`.

Answers are reused for ``ttl`` seconds (a member who joins, or changes their language, is
heard within that), for at most ``max_entries`` rooms and users, and a burst of messages to
one room reads the stores once: concurrent asks for the same key share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

from store.profiles import ProfileStore
from store.rooms import RoomStore
from workers.translate import languages

__all__ = ["Audience", "usable"]

V = TypeVar("V")


def usable(tags: Iterable[str]) -> frozenset[str]:
    """The tags that are language tags a provider can take, normalized."""
    found = set()
    for tag in tags:
        if not tag:
            continue
        try:
            found.add(languages.normalize(tag))
        except ValueError:
            continue
    return frozenset(found)


class _Reused(Generic[V]):
    """Values by key, reused for ``ttl`` seconds; one load at a time per key."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[V]] = {}

    def put(self, key: str, value: V) -> None:
        self._values[key] = (self._clock() + self._ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self._max:
            self._values.popitem(last=False)

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        found = self._values.get(key)
        if found is not None and found[0] > self._clock():
            return found[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        self.put(key, value)
        return value


class Audience:
    def __init__(
        self,
        rooms: RoomStore,
        profiles: ProfileStore,
        *,
        targets: Sequence[str] = (),
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rooms = rooms
        self._profiles = profiles
        self._targets = usable(targets)
        self._room_langs: _Reused[frozenset[str]] = _Reused(ttl, max_entries, clock)
        self._user_langs: _Reused[str | None] = _Reused(ttl, max_entries, clock)

    async def languages(self, room: str) -> frozenset[str]:
        """Every language the room's messages are translated into (the source language of a
        message is left out later, per message)."""
        return await self._room_langs.get(room, lambda: self._read_room(room))

    async def language_of(self, user: str) -> str | None:
        """The language ``user`` reads and writes (their profile's), or None."""
        return await self._user_langs.get(user, lambda: self._read_user(user))

    async def _read_room(self, room_id: str) -> frozenset[str]:
        room = await self._rooms.room(room_id)
        members = [m.user for m in await self._rooms.members(room_id)] if room else []
        profiles = {p.user: p for p in await self._profiles.profiles(members)} if members else {}
        wanted = [] if room is None else [room.lang]
        for user in members:
            profile = profiles.get(user)
            lang = self._one(profile.preferred_lang if profile is not None else "")
            self._user_langs.put(user, lang)
            if lang is not None:
                wanted.append(lang)
        return usable(wanted) | self._targets

    async def _read_user(self, user: str) -> str | None:
        profile = await self._profiles.profile(user)
        return None if profile is None else self._one(profile.preferred_lang)

    @staticmethod
    def _one(tag: str) -> str | None:
        found = usable([tag])
        return next(iter(found)) if found else None
