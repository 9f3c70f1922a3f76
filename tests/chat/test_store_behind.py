"""History never skips what left the recent cache before the store had it (the persist
worker lagging by more than the cache holds): it is refused until the store caught up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.errors import ServerSelectionTimeoutError

from chatstate.keys import ChatKeys, id_member
from gateway.chat.errors import StoreBehindError, StoreUnreachableError
from gateway.chat.events import message_template
from gateway.chat.history_api import history_routes
from gateway.chat.layer import ChatLayer
from gateway.chat.outage import STORE_UNAVAILABLE, store_outage_middleware
from gateway.chat.recent import as_bytes
from gateway.chat.snowflake import SnowflakeGenerator
from schemas import decode
from schemas.models import ChatMessage, ChatPost
from store import StoredMessage, StoreUnavailableError
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

POST = "/app/rooms/general/messages"
URL = "/api/rooms/general/messages"


def body(client_id: str) -> bytes:
    return orjson.dumps({"client_id": client_id, "text": f"text of {client_id}"})


async def post_many(chat: ChatLayer, clock: ManualClock, count: int, tag: str = "m") -> list[int]:
    ids = []
    for i in range(count):
        clock.advance()
        result = await chat.handle_send("alice", POST, [], body(f"{tag}{i}"))
        assert result.message_id is not None
        ids.append(result.message_id)
    return ids


async def unstored(redis: aioredis.Redis, prefix: str, room: str = "general") -> list[int]:
    members = await redis.zrange(f"{prefix}room:{room}:unstored", 0, -1)
    return [int(as_bytes(m)) for m in members]


def replayed(items: Sequence[Any]) -> list[int]:
    return [item.message_id for item in items]


async def test_replay_is_refused_until_the_store_has_what_the_cache_dropped(
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    ids = await post_many(chat, clock, 12)  # the cache keeps the newest 5
    for pub in publisher.published[:4]:  # the worker stored 4, then stopped
        store.add_event(pub.body)
    with pytest.raises(StoreBehindError) as caught:
        await chat.replay("general", 0)
    assert caught.value.missing == tuple(ids[4:7])
    assert caught.value.message == "History not available"
    assert "store is behind" in caught.value.text
    # Pages whose range holds none of the missing ones are exact.
    assert replayed(await chat.replay("general", 0, limit=4)) == ids[:4]
    assert replayed(await chat.replay("general", ids[6])) == ids[7:]
    with pytest.raises(StoreBehindError):  # the page would be ids[7] alone, skipping ids[6]
        await chat.replay("general", ids[5], limit=1)
    # The worker catches up: exactly everything, and nothing left to wait for.
    for pub in publisher.published[4:]:
        store.add_event(pub.body)
    items = await chat.replay("general", 0)
    assert replayed(items) == ids
    assert [i.body for i in items] == [p.body for p in publisher.published]
    assert await unstored(redis, redis_prefix) == []


async def test_history_before_is_refused_too(
    chat: ChatLayer, clock: ManualClock, store: InMemoryReader, publisher: RecordingPublisher
) -> None:
    ids = await post_many(chat, clock, 12)
    for pub in publisher.published[:4]:
        store.add_event(pub.body)
    assert [e.id for e in await chat.history.before("general", None, 5)] == ids[-5:]  # cache
    with pytest.raises(StoreBehindError):
        await chat.history.before("general", None, 6)
    with pytest.raises(StoreBehindError):
        await chat.history.before("general", ids[7], 2)
    assert [e.id for e in await chat.history.before("general", ids[4], 3)] == ids[1:4]
    for pub in publisher.published[4:]:
        store.add_event(pub.body)
    assert [e.id for e in await chat.history.before("general", None, 50)] == ids


async def test_the_caught_up_store_is_read_as_before(
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    ids = await post_many(chat, clock, 12)
    assert await unstored(redis, redis_prefix) == ids[:7]
    for pub in publisher.published[:9]:
        store.add_event(pub.body)
    assert replayed(await chat.replay("general", 0)) == ids
    assert await unstored(redis, redis_prefix) == []  # seen in the store: pruned
    assert replayed(await chat.replay("general", ids[2])) == ids[3:]


async def test_an_id_the_persist_worker_rejected_is_not_waited_for(
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
    redis: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """An id conflict (#18): the worker dead-letters the post and records its id in the room's
    rejected set; history reads around it instead of answering 503 for days. The id may still
    be in the recent cache when the worker rejects it: a later trim puts it in the unstored
    set, and the rejection still holds."""
    ids = await post_many(chat, clock, 3)
    rejected = ids[1]
    # what the persist worker does on a conflict (workers/persist.py)
    await redis.zadd(ChatKeys(redis_prefix).rejected("general"), {id_member(rejected): 0})
    for pub in publisher.published:
        if decode(ChatMessage, pub.body).id != str(rejected):
            store.add_event(pub.body)
    ids += await post_many(chat, clock, 9, tag="n")  # the trim moves the first 7 out
    assert rejected in await unstored(redis, redis_prefix)
    for pub in publisher.published[3:]:
        store.add_event(pub.body)
    expected = [i for i in ids if i != rejected]
    assert [e.id for e in await chat.history.before("general", None, 50)] == expected
    assert replayed(await chat.replay("general", 0)) == expected
    assert await unstored(redis, redis_prefix) == []
    holes = await redis.zrange(ChatKeys(redis_prefix).holes("general"), 0, -1)
    assert holes == [id_member(rejected)]  # unread counts skip it, as the store does


@pytest.fixture
async def client(chat: ChatLayer, store: InMemoryReader) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app.add_routes(history_routes(reader=store, chat=chat, authorize=_anyone))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _anyone(request: web.Request, room: str) -> str:
    return "bob"


async def test_history_api_answers_503_with_retry_after(
    client: TestClient[Any, Any],
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
) -> None:
    ids = await post_many(chat, clock, 12)
    for pub in publisher.published[:4]:
        store.add_event(pub.body)
    for params in ({"after": "0"}, {"limit": "50"}, {"before": str(ids[8])}):
        response = await client.get(URL, params=params)
        assert response.status == 503, params
        assert response.headers["Retry-After"] == "5"
        assert await response.json() == {
            "error": "history not available yet: the message store is behind; retry shortly"
        }
    response = await client.get(URL, params={"limit": "5"})  # the cache alone: fine
    assert response.status == 200
    for pub in publisher.published[4:]:
        store.add_event(pub.body)
    response = await client.get(URL, params={"after": "0"})
    assert response.status == 200
    assert [int(m["id"]) for m in (await response.json())["messages"]] == ids


UNREACHABLE = [
    StoreUnavailableError("SQLiteStore unavailable: database is locked"),
    ServerSelectionTimeoutError("mongo:27017: [Errno 111] Connection refused"),
]


@pytest.mark.parametrize("error", UNREACHABLE)
async def test_an_unreachable_store_is_a_503_with_retry_after_and_a_refused_catch_up(
    client: TestClient[Any, Any],
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    ids = await post_many(chat, clock, 12)
    for pub in publisher.published:
        store.add_event(pub.body)

    async def unreachable(*args: object, **kwargs: object) -> list[StoredMessage]:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(store, "history", unreachable)
        for params in ({"after": "0"}, {"before": str(ids[3])}):
            response = await client.get(URL, params=params)
            assert response.status == 503, params
            assert response.headers["Retry-After"] == "5"
            assert await response.json() == {
                "error": "history not available now: the message store cannot be read; retry"
                " shortly"
            }
        response = await client.get(URL, params={"limit": "5"})  # the cache alone: fine
        assert response.status == 200
        with pytest.raises(StoreUnreachableError) as refused:  # a catch-up SUBSCRIBE: ERROR
            await chat.replay("general", ids[1])
        assert refused.value.message == "History not available"
        assert str(error) in refused.value.detail
    response = await client.get(URL, params={"after": "0"})
    assert response.status == 200
    assert [int(m["id"]) for m in (await response.json())["messages"]] == ids
    assert replayed(await chat.replay("general", ids[1])) == ids[2:]


@pytest.mark.parametrize("error", UNREACHABLE)
async def test_every_http_api_answers_an_unreachable_store_with_503_and_retry_after(
    error: Exception,
) -> None:
    async def rooms(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[store_outage_middleware])
    app.router.add_get("/api/rooms", rooms)
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/api/rooms")
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
        assert body["error"] == STORE_UNAVAILABLE
        assert body["detail"] == str(error)


async def test_a_publish_failing_after_its_post_left_the_cache_is_not_waited_for(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock, store: InMemoryReader
) -> None:
    """The slow post is trimmed while its publish is in flight, then its publish fails: it
    never existed, so nothing must be waited for (no permanent false "behind")."""
    layer: ChatLayer
    published: list[bytes] = []
    failed: list[int] = []

    async def publish(destination: str, headers: Sequence[tuple[str, str]], event: bytes) -> None:
        if not failed:
            failed.append(int(orjson.loads(event)["id"]))
            for i in range(6):  # meanwhile the room moves on; the cache keeps 5
                clock.advance()
                await layer.handle_send("alice", POST, [], body(f"other{i}"))
            raise ConnectionError("broker did not confirm")
        published.append(event)
        store.add_event(event)

    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(3),
        clock=clock,
        publish=publish,
        store=store,
        recent_limit=5,
    )
    with pytest.raises(ConnectionError):
        await layer.handle_send("alice", POST, [], body("slow"))
    assert failed[0] not in await unstored(redis, redis_prefix)
    items = await layer.replay("general", 0)
    assert [i.body for i in items] == published
    assert failed[0] not in replayed(items)


async def test_a_post_whose_node_died_before_publishing_stops_counting_when_it_expires(
    redis: aioredis.Redis,
    redis_prefix: str,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
) -> None:
    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(4),
        clock=clock,
        publish=publisher,
        store=store,
        recent_limit=5,
        pending_ttl_ms=300,
    )
    # What a node that died between caching and publishing leaves behind.
    dead_id = SnowflakeGenerator(1).next_id(clock())
    template = message_template(room="general", sender="alice", post=decode(ChatPost, body("d")))
    await layer._ledger.reserve(
        user="alice", client_id="d", room="general", candidate=dead_id, event=template
    )
    ids = await post_many(layer, clock, 8)
    for pub in publisher.published:
        store.add_event(pub.body)
    assert dead_id in await unstored(redis, redis_prefix)
    with pytest.raises(StoreBehindError):  # a retry may still publish it
        await layer.replay("general", 0)
    await asyncio.sleep(0.4)  # no retry came: it never will be published
    assert replayed(await layer.replay("general", 0)) == ids
    assert await unstored(redis, redis_prefix) == []


async def test_a_post_taken_over_after_it_left_the_cache_is_waited_for(
    chat: ChatLayer,
    clock: ManualClock,
    store: InMemoryReader,
    publisher: RecordingPublisher,
) -> None:
    dead_id = SnowflakeGenerator(1).next_id(clock())
    template = message_template(room="general", sender="alice", post=decode(ChatPost, body("t")))
    event = template.fill(dead_id)
    await chat._ledger.reserve(
        user="alice", client_id="t", room="general", candidate=dead_id, event=template
    )
    ids = await post_many(chat, clock, 8)
    retry = await chat.handle_send("alice", POST, [], body("t"))  # published now, same id
    assert (retry.duplicate, retry.message_id) == (True, dead_id)
    for pub in publisher.published:
        if pub.body != event:
            store.add_event(pub.body)
    with pytest.raises(StoreBehindError) as caught:
        await chat.replay("general", 0)
    assert caught.value.missing == (dead_id,)
    store.add_event(event)
    assert replayed(await chat.replay("general", 0)) == sorted([dead_id, *ids])


class StoringPublisher(RecordingPublisher):
    """A publisher with a persist worker that keeps up."""

    def __init__(self, store: InMemoryReader) -> None:
        super().__init__()
        self.store = store

    async def __call__(
        self, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        await super().__call__(destination, headers, body)
        self.store.add_event(body)


async def test_the_unstored_set_is_pruned_in_the_background(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock, store: InMemoryReader
) -> None:
    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(6),
        clock=clock,
        publish=StoringPublisher(store),
        store=store,
        recent_limit=5,
        prune_every=4,
    )
    try:
        ids = await post_many(layer, clock, 40)
        await asyncio.gather(*layer._prunes.values())
        assert len(await unstored(redis, redis_prefix)) < 4 + 1
        assert store.calls  # the prunes read the store
        assert replayed(await layer.replay("general", 0)) == ids
    finally:
        await layer.close()


async def test_no_store_no_bookkeeping(
    redis: aioredis.Redis, redis_prefix: str, clock: ManualClock, publisher: RecordingPublisher
) -> None:
    layer = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(8),
        clock=clock,
        publish=publisher,
        store=None,
        recent_limit=5,
    )
    ids = await post_many(layer, clock, 9)
    assert replayed(await layer.replay("general", 0)) == ids[-5:]  # the cache alone
    assert await unstored(redis, redis_prefix) == []
    assert await redis.exists(f"{redis_prefix}room:general:inflight") == 0
