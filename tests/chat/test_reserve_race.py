"""Many posters on two nodes reserving ids in one room at once, against the real Redis.

Each post's id is chosen and its place in the room taken in one atomic step, so no post can
lose a race for its id however the reservations interleave (a loaded machine once made a
post lose eight in a row: "no id above the newest of room after retries"), ids stay unique
across rooms and nodes, and they rise with the room ordinal.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat.events import message_template
from gateway.chat.layer import ChatLayer
from gateway.chat.post_ledger import PostLedger, Reserved
from gateway.chat.snowflake import EPOCH_MS, MAX_TIMESTAMP, SnowflakeGenerator, compose, parse
from schemas.models import ChatPost
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

POSTERS = 300
"""Concurrent posts per node: each one races every other for the room's next id."""


def layer(
    redis: aioredis.Redis, prefix: str, node: int, clock: ManualClock, pub: RecordingPublisher
) -> ChatLayer:
    return ChatLayer(
        redis=redis,
        key_prefix=prefix,
        ids=SnowflakeGenerator(node),
        clock=clock,
        publish=pub,
        store=InMemoryReader(),
        recent_limit=10 * POSTERS,
    )


async def test_concurrent_posters_on_two_nodes_all_get_ids_that_rise_with_the_room(
    redis_url: str, redis: aioredis.Redis, redis_prefix: str
) -> None:
    # Two clients with many connections each, like two gateway nodes; one frozen clock, so
    # every post of both nodes wants the same millisecond (node 9 sorts above node 1 in it).
    clients = [
        aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32)
        )
        for _ in range(2)
    ]
    try:
        pub = RecordingPublisher()
        clock = ManualClock()
        nodes = [layer(clients[0], redis_prefix, 1, clock, pub)]
        nodes.append(layer(clients[1], redis_prefix, 9, clock, pub))

        async def post(n: int) -> int:
            room = "general" if n % 4 else "other"
            body = orjson.dumps({"client_id": f"c{n}", "text": f"m{n}"})
            result = await nodes[n % 2].handle_send(
                f"u{n % 7}", f"/app/rooms/{room}/messages", [], body
            )
            assert result.message_id is not None
            return result.message_id

        results = await asyncio.gather(
            *(post(n) for n in range(2 * POSTERS)), return_exceptions=True
        )
    finally:
        for client in clients:
            await client.aclose()
    reader = layer(redis, redis_prefix, 3, ManualClock(), RecordingPublisher())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    ids = [r for r in results if isinstance(r, int)]
    assert len(set(ids)) == len(ids) == 2 * POSTERS  # unique across rooms and nodes
    assert {parse(i).node for i in ids} == {1, 9}  # each id still names its node
    for room in ("general", "other"):
        published = [p for p in pub.published if p.destination == f"/topic/room.{room}"]
        by_seq = sorted(published, key=lambda p: int(dict(p.headers)["stompgate-room-seq"]))
        in_order = [int(orjson.loads(p.body)["id"]) for p in by_seq]
        assert in_order == sorted(in_order)  # ids rise with the room ordinal
        assert [int(dict(p.headers)["stompgate-room-seq"]) for p in by_seq] == list(
            range(1, len(published) + 1)
        )
        for p in published:  # the event carries the id it is published under, and its time
            event = orjson.loads(p.body)
            assert dict(p.headers)["stompgate-message-id"] == event["id"]
            assert event["sent_at"] == parse(int(event["id"])).ts_ms
        # the cache holds the very bytes published (what a catch-up replays), in room order
        cached = await reader.replay(room, 0, limit=10 * POSTERS)
        assert [(i.message_id, i.body) for i in cached] == [
            (int(orjson.loads(p.body)["id"]), p.body) for p in by_seq
        ]


class Overtaken:
    """Node A's ids; whenever A follows an id, node B (its clock 10 ms ahead) posts first.

    Under a scheme where a node picks an id and then offers it to the room, each offer would
    find B's newer post there and lose, again and again.
    """

    def __init__(self, node: int, other: ChatLayer, other_clock: ManualClock) -> None:
        self._ids = SnowflakeGenerator(node)
        self._other = other
        self._other_clock = other_clock
        self.followed = 0

    def next_id(self, now_ms: int) -> int:
        return self._ids.next_id(now_ms)

    async def follow(self, snowflake: int) -> None:
        self.followed += 1
        self._ids.follow(snowflake)
        self._other_clock.advance(10)
        body = orjson.dumps({"client_id": f"b{self.followed}", "text": "overtaking"})
        await self._other.handle_send("bob", "/app/rooms/general/messages", [], body)


async def test_a_post_overtaken_while_it_follows_the_room_still_gets_its_id(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    pub = RecordingPublisher()
    clock_a = ManualClock()
    clock_b = ManualClock(clock_a.now_ms + 10)
    b = layer(redis, redis_prefix, 9, clock_b, pub)
    ids = Overtaken(1, b, clock_b)
    a = ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=ids,
        clock=clock_a,
        publish=pub,
        store=InMemoryReader(),
    )
    await b.handle_send("bob", "/app/rooms/general/messages", [], b'{"client_id":"b0","text":"t"}')
    posted = [
        await a.handle_send("alice", "/app/rooms/general/messages", [], body)
        for body in (b'{"client_id":"a1","text":"t"}', b'{"client_id":"a2","text":"t"}')
    ]
    assert all(p.message_id is not None and not p.duplicate for p in posted)
    assert ids.followed >= 1  # the room was ahead of A, and B overtook
    in_order = [
        int(orjson.loads(p.body)["id"])
        for p in sorted(pub.published, key=lambda p: int(dict(p.headers)["stompgate-room-seq"]))
    ]
    assert in_order == sorted(in_order)
    assert len(set(in_order)) == len(in_order)


T = EPOCH_MS + 86_400_000
END = EPOCH_MS + MAX_TIMESTAMP - 2  # 63-bit ids near the top: Lua's doubles would round them


@pytest.mark.parametrize(
    ("newest", "candidate", "expected"),
    [
        (compose(T, 3, 7), compose(T, 5, 0), compose(T, 5, 0)),  # above: taken as it is
        (compose(T, 3, 7), compose(T - 9, 5, 0), compose(T, 5, 0)),  # same ms, higher node
        (compose(T, 5, 7), compose(T - 9, 5, 0), compose(T, 5, 8)),  # same ms and node
        (compose(T, 5, 4095), compose(T, 5, 4095), compose(T + 1, 5, 0)),  # sequence full
        (compose(T, 7, 0), compose(T, 5, 9), compose(T + 1, 5, 0)),  # a higher node: next ms
        (compose(END, 1023, 4095), compose(T, 0, 0), compose(END + 1, 0, 0)),
        (compose(END, 0, 4094), compose(END, 0, 1), compose(END, 0, 4095)),
    ],
)
async def test_the_reserve_step_picks_the_smallest_id_of_the_node_above_the_room(
    redis: aioredis.Redis, redis_prefix: str, newest: int, candidate: int, expected: int
) -> None:
    ledger = PostLedger(
        redis,
        ChatKeys(redis_prefix),
        recent_limit=10,
        recent_ttl_s=60,
        pending_ttl_ms=60_000,
        idempotency_ttl_s=60,
    )
    post = ChatPost(client_id="x", text="t")
    template = message_template(room="r", sender="u", post=post)
    first = await ledger.reserve(
        user="u", client_id="first", room="r", candidate=newest, event=template
    )
    assert isinstance(first, Reserved)
    assert first.message_id == newest
    reserved = await ledger.reserve(
        user="u", client_id="x", room="r", candidate=candidate, event=template
    )
    assert isinstance(reserved, Reserved)
    assert reserved.message_id == expected
    assert reserved.event == template.fill(expected)
    [member] = await redis.zrangebylex(
        f"{redis_prefix}room:r:recent", b"[%019d:" % expected, b"(%019d;" % expected
    )
    assert member == reserved.member  # byte for byte what Lua cached (abort removes it)
