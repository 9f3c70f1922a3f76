"""Nodes whose clocks disagree: ids still rise with the order posts were accepted in a room,
so catch-up from any id a device holds returns exactly the posts accepted after it."""

from __future__ import annotations

import itertools

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.chat.layer import ChatLayer
from gateway.chat.node_lease import NodeLease
from gateway.chat.snowflake import EPOCH_MS, SnowflakeGenerator, compose, parse
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

POST = "/app/rooms/general/messages"
SKEW_MS = 10_000


def node(
    redis: aioredis.Redis, prefix: str, node_id: int, clock: ManualClock, pub: RecordingPublisher
) -> ChatLayer:
    return ChatLayer(
        redis=redis,
        key_prefix=prefix,
        ids=SnowflakeGenerator(node_id),
        clock=clock,
        publish=pub,
        store=InMemoryReader(),
    )


@pytest.mark.parametrize("skew_ms", [SKEW_MS, -SKEW_MS, 0])
async def test_ids_rise_in_acceptance_order_across_skewed_nodes(
    redis: aioredis.Redis, redis_prefix: str, skew_ms: int
) -> None:
    pub = RecordingPublisher()
    clock_a = ManualClock()
    clock_b = ManualClock(clock_a.now_ms + skew_ms)
    # node 9 sorts above node 1 within one millisecond: the unskewed case needs following too
    a = node(redis, redis_prefix, 9, clock_a, pub)
    b = node(redis, redis_prefix, 1, clock_b, pub)
    ids = []
    for n, layer in zip(range(40), itertools.cycle([a, b, b, a, a]), strict=False):
        clock_a.advance(1)
        clock_b.advance(1)
        body = orjson.dumps({"client_id": f"c{n}", "text": f"m{n}"})
        result = await layer.handle_send("alice", POST, [], body)
        assert result.message_id is not None
        ids.append(result.message_id)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # the published room ordinals follow the same order
    seqs = [int(dict(p.headers)["stompgate-room-seq"]) for p in pub.published]
    assert seqs == list(range(1, 41))
    # catch-up from any id: exactly the posts accepted after it, from either node
    for i, after in enumerate(ids):
        for layer in (a, b):
            assert [item.message_id for item in await layer.replay("general", after)] == ids[
                i + 1 :
            ]
    # sent_at is the id's own timestamp, so it rises too
    sent = [orjson.loads(p.body)["sent_at"] for p in pub.published]
    assert sent == sorted(sent)


async def test_a_retry_keeps_its_id_even_when_the_room_moved_on(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    pub = RecordingPublisher()
    slow = ManualClock()
    fast = ManualClock(slow.now_ms + SKEW_MS)
    a = node(redis, redis_prefix, 1, slow, pub)
    b = node(redis, redis_prefix, 2, fast, pub)
    first = await a.handle_send("alice", POST, [], b'{"client_id":"x","text":"t"}')
    await b.handle_send("bob", POST, [], b'{"client_id":"y","text":"t"}')
    again = await a.handle_send("alice", POST, [], b'{"client_id":"x","text":"t"}')
    assert again.duplicate
    assert again.message_id == first.message_id
    assert len(pub.published) == 2


def test_generator_follow_issues_above_the_followed_id() -> None:
    now = EPOCH_MS + 1_000_000
    gen = SnowflakeGenerator(3)
    gen.next_id(now)
    other = compose(now + 5_000, 900, 4000)  # another node, 5 s ahead
    gen.follow(other)
    following = [gen.next_id(now + 1) for _ in range(5000)]  # the clock is still behind
    assert following[0] > other
    assert following == sorted(following)
    assert len(set(following)) == 5000
    assert parse(following[0]).ts_ms == now + 5_001
    gen.follow(compose(now, 1000, 0))  # an id below ours: nothing moves
    assert gen.next_id(now) > following[-1]
    # the same millisecond, a higher node id: still above it
    same = gen.next_id(now + 10_000)
    gen.follow(compose(parse(same).ts_ms, 1023, 4095))
    assert gen.next_id(now + 10_000) > compose(parse(same).ts_ms, 1023, 4095)


async def test_lease_follow_raises_the_floor_before_issuing_past_it(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    now = EPOCH_MS + 10_000_000
    lease = NodeLease(
        redis, key_prefix=redis_prefix, ttl_ms=1_000, auto_renew=False, wall_clock_ms=lambda: now
    )
    node_id = await lease.acquire()
    ahead = compose(now + 60_000, (node_id + 1) % 1024, 0)  # a minute ahead: past the floor
    await lease.follow(ahead)
    issued = lease.next_id(now)
    assert issued > ahead
    floor = await redis.get(f"{redis_prefix}snowflake:floor:{node_id}")
    assert floor is not None
    assert int(floor) >= parse(issued).ts_ms
    await lease.release()
