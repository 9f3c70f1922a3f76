"""Fixtures for presence tests: the real Redis (keys under the per-test prefix: the chat
tests' fixture), stores with short graces, and rooms made in a room store (SQLite in memory)
and read through the rooms' membership, as a node reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat.membership import Membership
from gateway.presence.membership import RoomMembership
from gateway.presence.store import PresenceStore
from store import Member, Room, SQLiteRoomStore
from tests.chat.conftest import redis

__all__ = ["GRACE_MS", "LEASE_MS", "StoreRooms", "redis", "rooms", "store"]

GRACE_MS = 1000
LEASE_MS = 300


@pytest.fixture
def store(redis: aioredis.Redis, redis_prefix: str) -> PresenceStore:
    return PresenceStore(redis, key_prefix=redis_prefix, grace_ms=GRACE_MS, lease_ms=LEASE_MS)


class StoreRooms(RoomMembership):
    """Presence's view of the rooms, and a way to make them (as the rooms API would)."""

    def __init__(self, store: SQLiteRoomStore, membership: Membership) -> None:
        super().__init__(membership)
        self._store = store
        self._membership = membership

    async def add(self, room: str, *users: str) -> None:
        """Make ``users`` the members of a new room ``room``."""
        await self._store.create_room(
            Room(id=room, kind="group", name=room, lang="", owner=users[0], created_at=1),
            [Member(room, user, "member", 1) for user in users],
        )
        await self._membership.joined(room, list(users))


@pytest.fixture
async def rooms(redis: aioredis.Redis, redis_prefix: str) -> AsyncIterator[StoreRooms]:
    room_store = SQLiteRoomStore(":memory:")
    await room_store.open()
    try:
        membership = Membership(
            redis, ChatKeys(redis_prefix), room_store, roster_prefix=redis_prefix + "acl:"
        )
        yield StoreRooms(room_store, membership)
    finally:
        await room_store.close()
