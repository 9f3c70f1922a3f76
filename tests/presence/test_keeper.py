"""The keeper's loop and the service, in-process over the real Redis: events reach the rooms
(only the small ones), queries read presence as each asker may see it. The relay is replaced
by a recording publisher (the real one is covered by tests/e2e/test_presence.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

import schemas
from gateway.presence import (
    PresenceAnnouncer,
    PresenceError,
    PresenceKeeper,
    PresenceService,
    PresenceStore,
    PresenceTracker,
)
from gateway.presence.service import ROOM_SNAPSHOT_MAX
from tests.chat.fakes import RecordingPublisher
from tests.presence.conftest import GRACE_MS, StoreRooms


@dataclass
class Conn:
    user: str | None


@dataclass
class Node:
    tracker: PresenceTracker
    keeper: PresenceKeeper
    service: PresenceService
    published: RecordingPublisher


@pytest.fixture
async def node(store: PresenceStore, rooms: StoreRooms) -> AsyncIterator[Callable[[], Node]]:
    started: list[PresenceKeeper] = []

    def make() -> Node:
        published = RecordingPublisher()
        tracker = PresenceTracker(active_every=30.0)
        announcer = PresenceAnnouncer(rooms, published, fanout_max=3)
        keeper = PresenceKeeper(store, tracker, announcer, interval=0.05, node_id="n")
        started.append(keeper)
        return Node(tracker, keeper, PresenceService(store, rooms, announcer, published), published)

    yield make
    for keeper in started:
        await keeper.stop()


def events(published: RecordingPublisher, kind: str = "presence") -> list[dict[str, Any]]:
    found = []
    for pub in published.published:
        if dict(pub.headers)["event-type"] == kind:
            schemas.validate(f"chat.{kind}.v1", pub.body)
            found.append({"to": pub.destination, **orjson.loads(pub.body)})
    return found


async def wait_for(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_changes_go_to_the_user_s_small_rooms_only(
    node: Callable[[], Node], rooms: StoreRooms
) -> None:
    await rooms.add("small", "alice", "bob")
    await rooms.add("big", "alice", "bob", "carol", "dave")  # above fanout_max=3: on demand
    a = node()
    await a.keeper.start()
    alice = Conn("alice")
    a.tracker.on_authenticated(alice)
    await wait_for(lambda: bool(events(a.published)))
    [online] = events(a.published)
    assert online["to"] == "/topic/room.small"
    assert (online["user"], online["status"], online["room"]) == ("alice", "online", "small")
    assert dict(a.published.published[0].headers) == {
        "event-type": "presence",
        "content-type": "application/json",
        "persistent": "false",
    }
    a.tracker.on_closed(alice, "disconnect")
    started = time.monotonic()
    await wait_for(lambda: len(events(a.published)) == 2)
    assert time.monotonic() - started >= GRACE_MS / 1000 * 0.9  # not before the grace
    offline = events(a.published)[1]
    assert (offline["status"], offline["room"]) == ("offline", "small")


async def test_a_stopped_node_hands_its_users_to_the_others(
    node: Callable[[], Node], rooms: StoreRooms
) -> None:
    await rooms.add("r", "alice")
    a, b = node(), node()
    await a.keeper.start()
    await b.keeper.start()
    a.tracker.on_authenticated(alice := Conn("alice"))
    await wait_for(lambda: bool(events(a.published)))
    a.tracker.on_closed(alice, "shutdown")  # a drains...
    await a.keeper.stop()  # ... and hands alice over
    await wait_for(lambda: bool(events(b.published)))  # b's sweep tells the room
    assert [e["status"] for e in events(b.published)] == ["offline"]
    assert [e["status"] for e in events(a.published)] == ["online"]


async def test_queries_show_each_asker_what_they_may_see(
    node: Callable[[], Node], rooms: StoreRooms
) -> None:
    a = node()
    await a.keeper.start()
    await rooms.add("r", "alice", "bob")
    a.tracker.on_authenticated(Conn("alice"))
    await wait_for(lambda: bool(events(a.published)))
    query = orjson.dumps({"users": ["alice", "carol", "alice"], "query_id": "q1"})
    await a.service.handle_send("bob", "/app/presence/query", (), query)
    [answer] = events(a.published, "presence_snapshot")
    assert answer["to"] == "/user/bob/queue/presence"
    assert answer["query_id"] == "q1"
    users = answer["users"]
    assert [(u["user"], u["status"]) for u in users] == [("alice", "online"), ("carol", "offline")]
    assert "last_seen" not in users[1]  # carol was never seen

    await a.service.handle_send("alice", "/app/presence/invisible", (), b'{"invisible": true}')
    await a.service.handle_send("bob", "/app/rooms/r/presence", (), b"")
    await a.service.handle_send("alice", "/app/rooms/r/presence", (), b'{"query_id": "own"}')
    to_bob, to_alice = events(a.published, "presence_snapshot")[1:]
    assert to_bob["room"] == "r"
    assert to_bob["users"] == [
        {"user": "alice", "status": "offline", "last_seen": to_bob["users"][0]["last_seen"]},
        {"user": "bob", "status": "offline", "invisible": False},
    ]
    assert to_alice["to"] == "/user/alice/queue/presence"
    assert to_alice["users"][0]["status"] == "online"
    assert to_alice["users"][0]["invisible"] is True


async def test_bad_queries_are_the_client_s_mistake(node: Callable[[], Node]) -> None:
    service = node().service
    cases = {
        ("/app/presence/query", b"{}"): "`users` is required here",
        ("/app/presence/query", b'{"users": []}'): "invalid chat.presence_query",
        ("/app/rooms/r/presence", b'{"users": ["a"]}'): "`users` is not allowed here",
        ("/app/rooms/r!/presence", b""): "invalid room id 'r!'",
        ("/app/presence/invisible", b'{"invisible": 1}'): "invalid chat.presence_state",
    }
    for (destination, body), message in cases.items():
        assert service.handles(destination)
        with pytest.raises(PresenceError, match=message):
            await service.handle_send("bob", destination, (), body)
    with pytest.raises(PresenceError, match="`users` must have at most 100 entries"):
        await service.users_snapshot("bob", [f"u{n}" for n in range(101)])
    with pytest.raises(PresenceError, match="`users\\[0\\]` must be 1-256 characters"):
        await service.users_snapshot("bob", ["a\nb"])
    assert not service.handles("/app/rooms/r/messages")
    assert not service.handles("/app/presence")


async def test_a_room_snapshot_is_bounded(node: Callable[[], Node], rooms: StoreRooms) -> None:
    service = node().service
    await rooms.add("big", *(f"u{n:05d}" for n in range(ROOM_SNAPSHOT_MAX + 1)))
    answer = orjson.loads(await service.room_snapshot("u00000", "big"))
    assert len(answer["users"]) == ROOM_SNAPSHOT_MAX
    assert answer["more"] is True
    empty = orjson.loads(await service.room_snapshot("u00000", "empty"))
    assert empty["users"] == []
    assert "more" not in empty
