"""Room rosters and a user's rooms in Redis, rebuilt from the room store (real Redis, SQLite),
and the ACL's fallback to them; the rooms' id and management rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.auth.acl import MembershipLookup
from gateway.chat.membership import Membership
from gateway.chat.rooms import Actor, direct_room_id, may_manage
from store import Member, Room, SQLiteRoomStore

ROOM = Room(id="g1", kind="group", name="T", lang="", owner="alice", created_at=1)


@pytest.fixture
async def rooms() -> AsyncIterator[SQLiteRoomStore]:
    store = SQLiteRoomStore(":memory:")
    await store.open()
    try:
        await store.create_room(ROOM, [Member("g1", "alice", "owner", 1)])
        yield store
    finally:
        await store.close()


@pytest.fixture
def membership(redis: aioredis.Redis, redis_prefix: str, rooms: SQLiteRoomStore) -> Membership:
    return Membership(redis, ChatKeys(redis_prefix), rooms, roster_prefix=redis_prefix + "acl:")


async def test_a_lost_roster_is_rebuilt_and_changes_keep_it_right(
    membership: Membership, rooms: SQLiteRoomStore, redis: aioredis.Redis, redis_prefix: str
) -> None:
    roster = f"{redis_prefix}acl:roster:g1"
    assert await membership.members("g1") == ["alice"]  # rebuilt from the store
    assert await redis.smembers(roster) == {b"", b"alice"}
    await rooms.add_members("g1", [Member("g1", "bob", "member", 2)], limit=10)
    await membership.joined("g1", ["bob"])
    assert await membership.members("g1") == ["alice", "bob"]
    assert await membership.rooms_of("bob") == ["g1"]
    await rooms.remove_member("g1", "bob")
    await membership.left("g1", "bob")
    assert await membership.members("g1") == ["alice"]
    assert await membership.rooms_of("bob") == []  # cached as empty, not lost
    assert await redis.exists(f"{redis_prefix}user-rooms:bob") == 1
    assert await membership.members("nowhere") == []


async def test_a_rebuild_racing_a_change_never_writes_back_what_it_read(
    membership: Membership, rooms: SQLiteRoomStore, redis: aioredis.Redis, redis_prefix: str
) -> None:
    roster = f"{redis_prefix}acl:roster:g1"

    class Racing:
        """The store answers, then a change lands before the rebuild writes."""

        async def members(self, room: str) -> list[Member]:
            found = await rooms.members(room)
            await rooms.add_members(room, [Member(room, "bob", "member", 2)], limit=10)
            await membership.joined(room, ["bob"])  # the set is missing: only the version
            return found

    racing = Membership(
        redis,
        ChatKeys(redis_prefix),
        Racing(),  # type: ignore[arg-type]  # only members() is read
        roster_prefix=redis_prefix + "acl:",
    )
    assert await racing.members("g1") == ["alice"]  # what it read, but not written back
    assert await redis.exists(roster) == 0
    assert await membership.members("g1") == ["alice", "bob"]


async def test_the_acl_falls_back_to_the_store_only_for_rosters(
    membership: Membership, redis: aioredis.Redis, redis_prefix: str
) -> None:
    lookup = MembershipLookup(redis, redis_prefix + "acl:", cache_ttl=60, fallback=membership)
    assert await lookup.is_member("roster:g1", "alice")  # the set was missing: the store says
    assert not await lookup.is_member("roster:g1", "bob")
    assert not await lookup.is_member("room:g1:members", "alice")  # an operator's set: Redis only
    await redis.srem(f"{redis_prefix}acl:roster:g1", "alice")
    assert await lookup.is_member("roster:g1", "alice")  # cached
    lookup.invalidate("roster:g1", "alice")
    assert not await lookup.is_member("roster:g1", "alice")  # the set exists: its answer


def test_one_direct_room_per_pair_and_who_manages() -> None:
    assert direct_room_id("alice", "bob") == direct_room_id("bob", "alice")
    assert direct_room_id("alice", "bob") != direct_room_id("alice", "bobby")
    assert direct_room_id("a", "b\u00e9").startswith("dm-")
    assert len(direct_room_id("x" * 256, "y" * 256)) == 43
    assert may_manage(Actor("alice"), ROOM)
    assert not may_manage(Actor("bob"), ROOM)
    assert may_manage(Actor("bob", frozenset({"admin"})), ROOM)
    direct = Room(id="dm-1", kind="direct", name="", lang="", owner="", created_at=1)
    assert not may_manage(Actor(""), direct)
