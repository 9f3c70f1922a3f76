"""Exact unread counts (gateway.chat.read_state, gateway.chat.unread) against a real Redis.

Each point the issue names is proven here at the chat layer: own messages never count,
failed posts (holes) never count, pointers older than the recent cache are counted from the
store, and after Redis lost everything (a restart of everything) the store rebuilds the same
counts. Across devices and nodes it is the same Redis state; the end-to-end test
(tests/e2e/test_rooms.py) proves that part over real sockets.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
import redis.asyncio as aioredis

import schemas
from gateway.chat.layer import ChatLayer
from gateway.chat.snowflake import SnowflakeGenerator
from tests.chat.fakes import InMemoryPointers, InMemoryReader, ManualClock, RecordingPublisher


class Notified(list[tuple[str, bytes]]):
    async def __call__(self, user: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        assert dict(headers)["event-type"] == "unread"
        self.append((user, body))


class World:
    """A chat layer over a store that the persist worker keeps up to date (every publish is
    stored), durable pointers, and the rooms a user belongs to."""

    def __init__(self, redis: aioredis.Redis, prefix: str, clock: ManualClock) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self.store = InMemoryReader()
        self.pointers = InMemoryPointers()
        self.publisher = RecordingPublisher()
        self.notified = Notified()
        self.rooms: dict[str, list[str]] = {}
        self.generator = SnowflakeGenerator(3)
        self.chat = self.layer()

    def layer(self) -> ChatLayer:
        async def publish(
            destination: str, headers: Sequence[tuple[str, str]], body: bytes
        ) -> None:
            await self.publisher(destination, headers, body)
            if dict(headers).get("event-type") == "message":
                self.store.add_event(body)  # the persist worker

        async def rooms_of(user: str) -> None:
            key = f"{self.prefix}user-rooms:{user}"
            await self.redis.sadd(key, "", *self.rooms.get(user, []))

        return ChatLayer(
            redis=self.redis,
            key_prefix=self.prefix,
            ids=self.generator,
            clock=self.clock,
            publish=publish,
            store=self.store,
            pointers=self.pointers,
            notify_user=self.notified,
            rooms_of=rooms_of,
            recent_limit=5,
        )

    async def post(self, user: str, room: str = "r", n: int = 1) -> list[int]:
        ids = []
        for _ in range(n):
            self.clock.advance()
            body = orjson.dumps({"client_id": f"c{self.clock.now_ms}", "text": "hi"})
            result = await self.chat.handle_send(user, f"/app/rooms/{room}/messages", [], body)
            assert result.message_id is not None
            ids.append(result.message_id)
        return ids

    async def read(self, user: str, message_id: int, room: str = "r") -> int:
        body = orjson.dumps({"message_id": str(message_id)})
        result = await self.chat.handle_send(user, f"/app/rooms/{room}/read", [], body)
        assert result.unread is not None
        return result.unread

    async def lose_redis(self) -> None:
        """Everything under the prefix is gone, as after a restart of Redis."""
        await self.chat.close()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
        self.chat = self.layer()


@pytest.fixture
def world(redis: aioredis.Redis, redis_prefix: str, clock: ManualClock) -> World:
    return World(redis, redis_prefix, clock)


async def test_own_messages_never_count_and_posting_moves_the_pointer(world: World) -> None:
    ids = await world.post("alice", n=3)
    assert await world.chat.unread("bob", "r") == 3
    assert await world.chat.unread("alice", "r") == 0
    assert await world.chat.read_pointer("alice", "r") == ids[-1]
    await world.post("bob")
    assert await world.chat.unread("alice", "r") == 1
    assert await world.chat.unread("bob", "r") == 0  # bob posted: he has read it all


async def test_a_failed_post_is_a_hole_not_an_unread_message(world: World) -> None:
    await world.post("alice", n=2)
    world.publisher.fail_next = 1
    with pytest.raises(ConnectionError):
        await world.post("alice")
    ids = await world.post("alice", n=2)
    assert await world.chat.unread("bob", "r") == 4
    assert await world.read("bob", ids[0]) == 1
    assert len(await world.redis.zrange(f"{world.prefix}room:r:holes", 0, -1)) == 1


async def test_every_reader_session_is_told_the_new_count(world: World) -> None:
    ids = await world.post("alice", n=4)
    assert await world.read("bob", ids[1]) == 2
    [(user, body)] = world.notified
    assert user == "bob"
    schemas.validate("chat.unread.v1", body)
    event = orjson.loads(body)
    assert (event["room"], event["unread"], event["read_id"]) == ("r", 2, str(ids[1]))
    assert event["last_id"] == str(ids[-1])
    await world.read("bob", ids[0])  # the pointer does not move back: nothing is sent
    assert len(world.notified) == 1


async def test_pointers_older_than_the_cache_are_exact(world: World) -> None:
    ids = await world.post("alice", n=12)  # the cache keeps 5
    assert await world.read("bob", ids[1]) == 10
    assert await world.chat.unread("bob", "r") == 10
    world.publisher.fail_next = 1
    with pytest.raises(ConnectionError):
        await world.post("alice")
    more = await world.post("alice", n=7)  # the hole leaves the cache too
    assert await world.chat.unread("bob", "r") == 17
    assert await world.read("carol", ids[3]) == 15  # below the cache, holes above it
    assert await world.read("carol", more[0]) == 6


async def test_counts_survive_a_restart_of_everything(world: World) -> None:
    a = await world.post("alice", n=9)
    b = await world.post("bob", "s", n=3)
    await world.read("bob", a[4])
    await world.read("carol", a[8])
    await world.post("bob")  # bob's pointer moves to his own post
    before = {
        (user, room): await world.chat.unread(user, room)
        for user in ("alice", "bob", "carol", "dave")
        for room in ("r", "s")
    }
    assert before[("bob", "r")] == 0
    assert before[("carol", "r")] == 1
    assert before[("dave", "r")] == 10
    assert before[("alice", "s")] == 3
    await world.lose_redis()
    after = {key: await world.chat.unread(*key) for key in before}
    assert after == before
    assert await world.chat.read_pointer("bob", "s") == b[-1]
    # and they go on from there: new posts, new reads
    c = await world.post("alice", n=2)
    assert await world.chat.unread("carol", "r") == 3
    assert await world.read("carol", c[0]) == 1


async def test_the_snapshot_reads_every_room_of_the_user(world: World) -> None:
    world.rooms["bob"] = [f"room{i}" for i in range(30)]
    for i in range(30):
        await world.post("alice", f"room{i}", n=i % 4)
    ids = await world.post("alice", "room3", n=1)
    await world.read("bob", ids[0], room="room3")
    snapshot = await world.chat.unread_counts.snapshot("bob")
    assert [c.room for c in snapshot] == sorted(world.rooms["bob"])
    counts = {c.room: c.unread for c in snapshot}
    assert counts == {f"room{i}": (0 if i == 3 else i % 4) for i in range(30)}
    assert {c.room: c.read_id for c in snapshot}["room3"] == ids[0]
    await world.lose_redis()  # cold: the rooms set, counters and pointers come back
    again = await world.chat.unread_counts.snapshot("bob")
    assert {c.room: c.unread for c in again} == counts
    assert await world.chat.unread_counts.snapshot("nobody") == []
