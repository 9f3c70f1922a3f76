from __future__ import annotations

from collections.abc import Sequence

import jsonschema
import orjson
import pytest
import redis.asyncio as aioredis

import schemas
from chatstate.deployment import namespace_key
from gateway.chat.errors import ChatError
from gateway.chat.events import message_template
from gateway.chat.layer import ChatLayer, ChatResult
from gateway.chat.node_lease import LeaseLostError
from gateway.chat.recent import decode_member
from gateway.chat.snowflake import SnowflakeGenerator, parse
from gateway.relay.errors import PublishError
from schemas import decode
from schemas.models import ChatPost
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

DEST = "/app/rooms/general/messages"


def post(client_id: str = "c1", text: str = "hello", **extra: object) -> bytes:
    return orjson.dumps({"client_id": client_id, "text": text, **extra})


async def cached_ids(redis: aioredis.Redis, prefix: str, room: str = "general") -> list[int]:
    members = await redis.zrange(f"{prefix}room:{room}:recent", 0, -1)
    return [decode_member(m).id for m in members]


async def test_post_stamps_ids_caches_and_publishes_once(
    chat: ChatLayer,
    publisher: RecordingPublisher,
    clock: ManualClock,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    body = post(lang="en", reply_to="12345", meta={"client": "web"})
    result = await chat.handle_send("alice", DEST, [("sender", "mallory")], body)

    assert result.action == "messages"
    assert result.message_id is not None
    assert not result.duplicate
    assert parse(result.message_id).ts_ms == clock.now_ms
    assert parse(result.message_id).node == 7
    [pub] = publisher.published
    assert pub.destination == "/topic/room.general"
    assert pub.headers == (
        ("event-type", "message"),
        ("content-type", "application/json"),
        ("stompgate-message-id", str(result.message_id)),
        ("sender", "alice"),
        ("client-id", "c1"),
        ("persistent", "true"),
        ("stompgate-room-seq", "1"),
    )
    event = orjson.loads(pub.body)
    assert event == {
        "v": 1,
        "type": "message",
        "id": str(result.message_id),
        "room": "general",
        "sender": "alice",
        "client_id": "c1",
        "text": "hello",
        "sent_at": clock.now_ms,
        "lang": "en",
        "reply_to": "12345",
        "meta": {"client": "web"},
    }
    jsonschema.Draft202012Validator(schemas.json_schema("chat.message.v1")).validate(event)
    schemas.validate("chat.message.v1", pub.body)
    members = await redis.zrange(f"{redis_prefix}room:general:recent", 0, -1)
    assert [decode_member(m).event for m in members] == [pub.body]


async def test_sender_in_body_is_rejected(chat: ChatLayer, publisher: RecordingPublisher) -> None:
    with pytest.raises(ChatError) as info:
        await chat.handle_send("alice", DEST, [], post(sender="mallory"))
    assert info.value.message == "Invalid message"
    assert info.value.text == "invalid chat.post: unknown field `sender`"
    assert publisher.published == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (post(text="x" * 4001), "invalid chat.post: `text` must have length <= 4000"),
        (b'{"text":"hi"}', "invalid chat.post: missing required field `client_id`"),
        (b"not json", "invalid chat.post: body is not valid JSON"),
    ],
)
async def test_invalid_posts_name_field_and_rule(
    chat: ChatLayer, publisher: RecordingPublisher, body: bytes, message: str
) -> None:
    with pytest.raises(ChatError) as info:
        await chat.handle_send("alice", DEST, [], body)
    assert info.value.text.startswith(message)
    assert publisher.published == []


@pytest.mark.parametrize(
    "destination",
    ["/app/x", "/app/rooms/general", "/app/rooms/general/edit", "/app/rooms/a/b/messages"],
)
async def test_unknown_app_destination(chat: ChatLayer, destination: str) -> None:
    with pytest.raises(ChatError) as info:
        await chat.handle_send("alice", destination, [], post())
    assert info.value.message == "Unknown destination"
    assert info.value.text == f"unknown application destination '{destination}'"


async def test_bad_room_id(chat: ChatLayer) -> None:
    with pytest.raises(ChatError, match=r"invalid room id 'a\.b'"):
        await chat.handle_send("alice", "/app/rooms/a.b/messages", [], post())


def test_handles_only_app(chat: ChatLayer) -> None:
    assert chat.handles("/app/rooms/x/messages")
    assert not chat.handles("/topic/room.x")
    assert not chat.handles("/application")


async def test_body_too_large(chat: ChatLayer) -> None:
    with pytest.raises(ChatError, match="body too large: 16385 bytes, at most 16384"):
        await chat.handle_send("alice", DEST, [], b" " * 16385)


async def test_retry_with_same_client_id_returns_original_and_publishes_nothing(
    chat: ChatLayer, publisher: RecordingPublisher, clock: ManualClock
) -> None:
    first = await chat.handle_send("alice", DEST, [], post("dup-1"))
    clock.advance(1000)
    again = await chat.handle_send("alice", DEST, [], post("dup-1", text="edited retry"))
    assert again.duplicate
    assert again.message_id == first.message_id
    assert len(publisher.published) == 1
    other_user = await chat.handle_send("bob", DEST, [], post("dup-1"))
    assert not other_user.duplicate
    assert other_user.message_id != first.message_id


async def test_publish_failure_uncaches_and_lets_the_retry_through(
    chat: ChatLayer,
    publisher: RecordingPublisher,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    publisher.fail_next = 1
    with pytest.raises(ConnectionError):
        await chat.handle_send("alice", DEST, [], post("c9"))
    assert await cached_ids(redis, redis_prefix) == []
    assert await redis.exists(f"{redis_prefix}client:alice:c9") == 0
    retry = await chat.handle_send("alice", DEST, [], post("c9"))
    assert not retry.duplicate
    assert len(publisher.published) == 1
    assert await cached_ids(redis, redis_prefix) == [retry.message_id]


async def test_message_is_cached_before_it_is_published(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock
) -> None:
    seen_in_cache: list[list[int]] = []

    async def publish(destination: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        seen_in_cache.append(await cached_ids(redis, redis_prefix))

    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(1),
        clock=clock,
        publish=publish,
        store=None,
    )
    result = await layer.handle_send("alice", DEST, [], post())
    assert seen_in_cache == [[result.message_id]]


async def test_retry_of_a_pending_post_republishes_the_same_message(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock
) -> None:
    """A retry that finds the first attempt unconfirmed (its node died, or it is still in
    flight) publishes the very same message again (same id, same bytes) and confirms it."""
    layer: ChatLayer
    published: list[bytes] = []
    retries: list[ChatResult] = []

    async def publish(destination: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        published.append(body)
        if len(published) == 1:
            retries.append(await layer.handle_send("alice", DEST, [], post("slow")))

    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(1),
        clock=clock,
        publish=publish,
        store=None,
    )
    first = await layer.handle_send("alice", DEST, [], post("slow"))
    [retry] = retries
    assert retry.duplicate
    assert retry.message_id == first.message_id
    assert published[0] == published[1]
    assert await cached_ids(redis, redis_prefix) == [first.message_id]
    again = await layer.handle_send("alice", DEST, [], post("slow"))
    assert again.duplicate
    assert len(published) == 2


async def test_retry_after_the_first_node_died_takes_the_post_over(
    chat: ChatLayer,
    redis: aioredis.Redis,
    redis_prefix: str,
    clock: ManualClock,
    publisher: RecordingPublisher,
) -> None:
    # What a node that died mid-publish leaves behind: a pending reservation, in the cache.
    dead_id = SnowflakeGenerator(1).next_id(clock())
    template = message_template(room="general", sender="alice", post=decode(ChatPost, post("c1")))
    body = ChatLayer._message_event(dead_id, "general", "alice", decode(ChatPost, post("c1")))
    ledger = chat._ledger
    await ledger.reserve(
        user="alice", client_id="c1", room="general", candidate=dead_id, event=template
    )
    retry = await chat.handle_send("alice", DEST, [], post("c1"))
    assert retry.duplicate
    assert retry.message_id == dead_id
    [pub] = publisher.published
    assert pub.body == body
    assert ("stompgate-message-id", str(dead_id)) in pub.headers
    assert await cached_ids(redis, redis_prefix) == [dead_id]
    assert (await chat.handle_send("alice", DEST, [], post("c1"))).duplicate
    assert len(publisher.published) == 1  # confirmed now: no third publish


async def test_cache_is_trimmed_to_recent_limit(
    chat: ChatLayer, clock: ManualClock, redis: aioredis.Redis, redis_prefix: str
) -> None:
    ids = []
    for i in range(8):
        clock.advance()
        result = await chat.handle_send("alice", DEST, [], post(f"m{i}"))
        ids.append(result.message_id)
    assert await cached_ids(redis, redis_prefix) == ids[-5:]
    assert await redis.ttl(f"{redis_prefix}room:general:recent") > 0


async def test_store_is_not_read_while_posting(chat: ChatLayer, store: InMemoryReader) -> None:
    await chat.handle_send("alice", DEST, [], post())
    assert store.calls == []


async def test_a_lost_node_lease_stops_posting_before_anything_is_written(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock, publisher: RecordingPublisher
) -> None:
    class NoIds:
        def next_id(self, now_ms: int) -> int:
            raise LeaseLostError("lost")

        def follow(self, snowflake: int) -> None:
            raise AssertionError("never reached")

    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=NoIds(),
        clock=clock,
        publish=publisher,
        store=None,
    )
    with pytest.raises(LeaseLostError):
        await layer.handle_send("alice", DEST, [], post())
    assert publisher.published == []
    # (the fixture's lease-namespace token aside: tests.support.namespace)
    left = [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]
    assert left in ([], [namespace_key(redis_prefix).encode()])


async def test_works_with_a_decoding_redis_client(
    redis: aioredis.Redis,  # deletes the keys afterwards
    redis_url: str,
    redis_prefix: str,
    clock: ManualClock,
    publisher: RecordingPublisher,
) -> None:
    text_redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        layer = ChatLayer(
            redis=text_redis,
            key_prefix=redis_prefix,
            ids=SnowflakeGenerator(2),
            clock=clock,
            publish=publisher,
            store=InMemoryReader(),
        )
        first = await layer.handle_send("alice", DEST, [], post("d1", text="héllo"))
        again = await layer.handle_send("alice", DEST, [], post("d1"))
        assert again.duplicate
        assert again.message_id == first.message_id
        [item] = await layer.replay("general", 0)
        assert item.body == publisher.published[0].body
        read = orjson.dumps({"message_id": str(first.message_id)})
        result = await layer.handle_send("bob", "/app/rooms/general/read", [], read)
        assert (result.message_id, result.unread) == (first.message_id, 0)
    finally:
        await text_redis.aclose()


@pytest.mark.parametrize("maybe_done", [True, False])
async def test_a_publish_whose_confirm_was_lost_stays_pending_for_the_retry(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock, maybe_done: bool
) -> None:
    """The connection went while the publish awaited its confirm (``maybe_done``): the broker
    may hold the message, so the retry must take it over under the same id. A second id
    would be published too and never stored (the store keeps one row per client id), and
    the history API would call that room's store behind for as long as the id is unstored.
    A publish the broker refused (not ``maybe_done``) is undone: the retry posts anew."""
    published: list[bytes] = []

    async def publish(destination: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        published.append(body)
        if len(published) == 1:
            error = PublishError("broker unavailable (connection reset)")
            error.maybe_done = maybe_done
            raise error

    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(1),
        clock=clock,
        publish=publish,
        store=None,
    )
    with pytest.raises(PublishError):
        await layer.handle_send("alice", DEST, [], post("lost"))
    cached = await cached_ids(redis, redis_prefix)
    clock.now_ms += 5
    retry = await layer.handle_send("alice", DEST, [], post("lost"))
    if maybe_done:
        assert cached == [parse_id(published[0])]
        assert retry.duplicate
        assert retry.message_id == cached[0]
        assert published[0] == published[1]  # the same message again, same id
    else:
        assert cached == []  # undone
        assert not retry.duplicate
        assert retry.message_id != parse_id(published[0])
    assert await cached_ids(redis, redis_prefix) == [retry.message_id]


def parse_id(event: bytes) -> int:
    return int(orjson.loads(event)["id"])
