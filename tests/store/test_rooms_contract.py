"""The one room-store suite every RoomStore backend must pass (MongoDB when MONGODB_URI is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import (
    Member,
    Room,
    RoomFullError,
    RoomNotFoundError,
    RoomStore,
    SQLiteRoomStore,
    SQLiteStore,
    StoreClosedError,
)

from .backends import BACKENDS, opened_room_store


@pytest.fixture(params=BACKENDS)
async def rooms(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RoomStore]:
    async with opened_room_store(request.param, tmp_path) as s:
        yield s


def group(room_id: str = "g1", owner: str = "alice", name: str = "Team") -> Room:
    return Room(
        id=room_id, kind="group", name=name, lang="en", owner=owner, created_at=1_700_000_000_000
    )


def member(user: str, room: str = "g1", role: str = "member", at: int = 1) -> Member:
    return Member(room=room, user=user, role="owner" if role == "owner" else "member", joined_at=at)


async def test_protocol_conformance(rooms: RoomStore) -> None:
    assert isinstance(rooms, RoomStore)


async def test_create_round_trips_and_is_idempotent_on_the_id(rooms: RoomStore) -> None:
    odd = Room(id="d-1", kind="direct", name="", lang="", owner="", created_at=2**62)
    assert await rooms.create_room(group(), [member("alice", role="owner"), member("bob", at=2)])
    assert await rooms.create_room(odd, [member("ünï", "d-1"), member("x/y", "d-1")])
    assert await rooms.room("g1") == group()
    assert await rooms.room("d-1") == odd
    assert await rooms.room("nope") is None
    # The same id again changes nothing, members included.
    assert not await rooms.create_room(group(name="Other"), [member("carol")])
    assert await rooms.room("g1") == group()
    assert [m.user for m in await rooms.members("g1")] == ["alice", "bob"]
    assert sorted(r.id for r in await rooms.rooms(["d-1", "g1", "nope", "g1"])) == ["d-1", "g1"]
    assert await rooms.rooms([]) == []


async def test_members_in_join_order_then_user(rooms: RoomStore) -> None:
    await rooms.create_room(
        group(), [member("zed", at=1), member("bob", at=5), member("amy", at=5)]
    )
    assert await rooms.members("g1") == [
        member("zed", at=1),
        member("amy", at=5),
        member("bob", at=5),
    ]
    assert await rooms.members("nope") == []


async def test_add_members_skips_members_and_returns_the_added(rooms: RoomStore) -> None:
    await rooms.create_room(group(), [member("alice", role="owner")])
    added = await rooms.add_members(
        "g1", [member("bob"), member("alice"), member("carol"), member("bob")], limit=10
    )
    assert added == ["bob", "carol"]
    assert await rooms.add_members("g1", [member("bob")], limit=10) == []
    assert [m.user for m in await rooms.members("g1")] == ["alice", "bob", "carol"]
    assert [m.role for m in await rooms.members("g1")] == ["owner", "member", "member"]


async def test_the_limit_holds_and_a_refused_add_adds_nobody(rooms: RoomStore) -> None:
    await rooms.create_room(group(), [member("alice", role="owner"), member("bob")])
    with pytest.raises(RoomFullError) as info:
        await rooms.add_members("g1", [member("carol"), member("dave")], limit=3)
    assert (info.value.room, info.value.limit, info.value.count) == ("g1", 3, 2)
    assert [m.user for m in await rooms.members("g1")] == ["alice", "bob"]
    assert await rooms.add_members("g1", [member("carol"), member("bob")], limit=3) == ["carol"]
    # Members already in do not count against the limit.
    assert await rooms.add_members("g1", [member("bob")], limit=3) == []
    # After someone leaves there is a place again.
    assert await rooms.remove_member("g1", "bob")
    assert await rooms.add_members("g1", [member("dave")], limit=3) == ["dave"]


async def test_concurrent_adds_never_pass_the_limit(rooms: RoomStore) -> None:
    await rooms.create_room(group(), [member("alice", role="owner")])

    async def add(user: str) -> int:
        try:
            return len(await rooms.add_members("g1", [member(user)], limit=5))
        except RoomFullError:
            return 0

    added = await asyncio.gather(*(add(f"u{i}") for i in range(12)))
    assert sum(added) == 4
    assert len(await rooms.members("g1")) == 5


async def test_add_to_an_unknown_room_is_refused(rooms: RoomStore) -> None:
    with pytest.raises(RoomNotFoundError):
        await rooms.add_members("nope", [member("bob", "nope")], limit=10)
    assert await rooms.members("nope") == []


async def test_remove_member(rooms: RoomStore) -> None:
    await rooms.create_room(group(), [member("alice", role="owner"), member("bob")])
    assert await rooms.remove_member("g1", "bob")
    assert not await rooms.remove_member("g1", "bob")
    assert not await rooms.remove_member("nope", "bob")
    assert [m.user for m in await rooms.members("g1")] == ["alice"]


async def test_rooms_of_a_user(rooms: RoomStore) -> None:
    await rooms.create_room(group("g2"), [member("alice", "g2"), member("bob", "g2")])
    await rooms.create_room(group("g1"), [member("alice")])
    await rooms.create_room(group("g3"), [member("bob", "g3")])
    assert await rooms.rooms_of("alice") == ["g1", "g2"]
    assert await rooms.rooms_of("bob") == ["g2", "g3"]
    assert await rooms.rooms_of("carol") == []
    await rooms.remove_member("g2", "alice")
    assert await rooms.rooms_of("alice") == ["g1"]


async def test_read_pointers_only_move_forward(rooms: RoomStore) -> None:
    assert await rooms.set_read_pointer("g1", "bob", 10) == 10
    assert await rooms.set_read_pointer("g1", "bob", 7) == 10
    assert await rooms.set_read_pointer("g1", "bob", 2**63 - 1) == 2**63 - 1
    assert await rooms.set_read_pointer("g1", "amy", 3) == 3
    assert await rooms.set_read_pointer("g2", "bob", 5) == 5
    assert await rooms.read_pointers("g1") == {"bob": 2**63 - 1, "amy": 3}
    assert await rooms.read_pointers("nope") == {}
    assert await rooms.pointers_of("bob", ["g2", "g1", "g3"]) == {"g1": 2**63 - 1, "g2": 5}
    assert await rooms.pointers_of("bob", []) == {}


async def test_concurrent_pointer_writes_keep_the_largest(rooms: RoomStore) -> None:
    values = list(range(1, 41))
    await asyncio.gather(*(rooms.set_read_pointer("g1", "bob", v) for v in reversed(values)))
    assert await rooms.read_pointers("g1") == {"bob": 40}


async def test_many_rooms_at_once(rooms: RoomStore) -> None:
    for i in range(1200):  # more than one SQL batch of parameters
        await rooms.set_read_pointer(f"r{i}", "bob", i + 1)
    wanted = [f"r{i}" for i in range(0, 1200, 2)]
    found = await rooms.pointers_of("bob", wanted)
    assert found == {f"r{i}": i + 1 for i in range(0, 1200, 2)}


async def test_closed_store_refuses(rooms: RoomStore) -> None:
    await rooms.close()
    with pytest.raises(StoreClosedError):
        await rooms.members("g1")
    await rooms.open()  # the fixture closes it again


async def test_sqlite_rooms_and_messages_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    messages, rooms = SQLiteStore(path), SQLiteRoomStore(path)
    await messages.open()
    await rooms.open()
    try:
        await rooms.create_room(group(), [member("alice")])
        assert await messages.count() == 0
    finally:
        await rooms.close()
        await messages.close()
    again = SQLiteRoomStore(path)
    await again.open()
    try:
        assert await again.room("g1") == group()
    finally:
        await again.close()
