from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

import schemas
from chatstate.deployment import namespace_key
from gateway.chat.errors import ChatError, StoreBehindError
from gateway.chat.layer import ChatLayer
from gateway.chat.snowflake import compose
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

POST = "/app/rooms/general/messages"
READ = "/app/rooms/general/read"
TYPING = "/app/rooms/general/typing"


async def _post_many(chat: ChatLayer, clock: ManualClock, n: int, user: str = "alice") -> list[int]:
    ids = []
    for i in range(n):
        clock.advance()
        body = orjson.dumps({"client_id": f"{user}-{clock.now_ms}-{i}", "text": "hi"})
        result = await chat.handle_send(user, POST, [], body)
        assert result.message_id is not None
        ids.append(result.message_id)
    return ids


def read(message_id: int) -> bytes:
    return orjson.dumps({"message_id": str(message_id)})


async def test_read_pointer_only_moves_forward_and_publishes_receipts(
    chat: ChatLayer, clock: ManualClock, publisher: RecordingPublisher
) -> None:
    ids = await _post_many(chat, clock, 4)
    assert await chat.unread("bob", "general") == 4
    publisher.published.clear()

    result = await chat.handle_send("bob", READ, [], read(ids[2]))
    assert (result.action, result.message_id, result.unread) == ("read", ids[2], 1)
    [receipt] = publisher.published
    assert receipt.destination == "/topic/room.general"
    assert receipt.headers == (
        ("event-type", "receipt"),
        ("content-type", "application/json"),
        ("sender", "bob"),
        ("persistent", "true"),
    )
    schemas.validate("chat.receipt.v1", receipt.body)
    assert orjson.loads(receipt.body) == {
        "v": 1,
        "type": "receipt",
        "room": "general",
        "user": "bob",
        "message_id": str(ids[2]),
        "read_at": clock.now_ms,
    }

    back = await chat.handle_send("bob", READ, [], read(ids[0]))
    assert back.message_id == ids[2]
    assert back.unread == 1
    assert len(publisher.published) == 1  # no receipt for a pointer that did not move
    assert await chat.read_pointer("bob", "general") == ids[2]

    await chat.handle_send("bob", READ, [], read(ids[3]))
    assert await chat.unread("bob", "general") == 0
    await _post_many(chat, clock, 2)
    assert await chat.unread("bob", "general") == 2
    assert await chat.unread("carol", "general") == 6


async def test_pointer_older_than_the_cache_is_counted_from_the_store(
    chat: ChatLayer, clock: ManualClock, store: InMemoryReader, publisher: RecordingPublisher
) -> None:
    # Issue 15 made this exact: it used to be 5 (a lower bound: only the cached ones known).
    ids = await _post_many(chat, clock, 8)  # cache keeps the newest 5
    with pytest.raises(StoreBehindError):  # the store lacks what left the cache: no guess
        await chat.handle_send("bob", READ, [], read(ids[0]))
    for pub in publisher.published:  # the persist worker catches up
        store.add_event(pub.body)
    result = await chat.handle_send("bob", READ, [], read(ids[0]))
    assert result.unread == 7


async def test_pointers_compare_as_64_bit_ids(
    chat: ChatLayer, clock: ManualClock, redis_prefix: str, redis: aioredis.Redis
) -> None:
    # Two ids that a double cannot tell apart must still order correctly.
    clock.advance(400 * 86_400_000)
    low = compose(clock.now_ms, 1, 1)
    high = low + 1
    assert float(low) == float(high)
    await chat.handle_send("bob", READ, [], read(high))
    moved = await chat.handle_send("bob", READ, [], read(low))
    assert moved.message_id == high
    assert await redis.hget(f"{redis_prefix}read:general:bob", "id") == str(high).encode()


async def test_future_message_id_is_rejected(chat: ChatLayer, clock: ManualClock) -> None:
    future = compose(clock.now_ms + 60_000, 0, 0)
    with pytest.raises(ChatError, match="`message_id` is not a message id issued so far"):
        await chat.handle_send("bob", READ, [], read(future))
    with pytest.raises(ChatError, match="`message_id` must be a string, got an integer"):
        await chat.handle_send("bob", READ, [], b'{"message_id": 5}')


async def test_typing_is_published_not_persistent_and_never_cached(
    chat: ChatLayer,
    clock: ManualClock,
    publisher: RecordingPublisher,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    result = await chat.handle_send("alice", TYPING, [("sender", "eve")], b'{"typing": true}')
    assert result.action == "typing"
    assert result.message_id is None
    [pub] = publisher.published
    assert pub.headers == (
        ("event-type", "typing"),
        ("content-type", "application/json"),
        ("sender", "alice"),
        ("persistent", "false"),
    )
    schemas.validate("chat.typing.v1", pub.body)
    assert orjson.loads(pub.body)["user"] == "alice"
    # (the fixture's lease-namespace token aside: tests.support.namespace)
    left = [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]
    assert left in ([], [namespace_key(redis_prefix).encode()])


async def test_typing_body_is_validated(chat: ChatLayer) -> None:
    with pytest.raises(ChatError, match="`typing` must be a boolean"):
        await chat.handle_send("alice", TYPING, [], b'{"typing": "yes"}')
