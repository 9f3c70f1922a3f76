"""The unread counts of a user in many rooms: one Lua step, one round trip to Redis.

    python -m benchmarks.bench_unread [--rooms 200] [--reads 2000] [--messages 50]

Needs Redis on 127.0.0.1:6379 (or STOMPGATE_TEST_REDIS_URL); uses a private key prefix and
deletes it afterwards. Sets up, through the chat layer itself, a user in ``--rooms`` rooms,
each with ``--messages`` posts by someone else, a failed post (a hole) and the user's read
pointer half way, then times ``UnreadCounts.snapshot`` (what ``GET /api/unread`` and a
SUBSCRIBE to ``/user/queue/unread`` read) ``--reads`` times, one after the other, and prints
p50/p99/max in ms and the Redis round trips one read took. Target on the development
machine: p99 <= 5 ms for 200 rooms. Prints figures only; exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat.layer import ChatLayer
from gateway.chat.snowflake import SnowflakeGenerator

USER = "reader"


class _Counting:
    """Counts the commands and pipelines the client sends (round trips)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.calls = 0
        original: Callable[..., Awaitable[object]] = redis.execute_command

        async def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return await original(*args, **kwargs)

        redis.execute_command = counted  # type: ignore[method-assign]


async def _publish(destination: str, headers: object, body: bytes) -> None:
    if b'"text":"fails"' in body:
        raise ConnectionError("not confirmed")  # this post becomes a hole


async def _setup(
    chat: ChatLayer, redis: aioredis.Redis, keys: ChatKeys, rooms: int, n: int
) -> None:
    for r in range(rooms):
        room = f"bench-{r}"
        ids = []
        for i in range(n):
            body = orjson.dumps({"client_id": f"c{r}-{i}", "text": f"message {i}"})
            result = await chat.handle_send("writer", f"/app/rooms/{room}/messages", [], body)
            assert result.message_id is not None
            ids.append(result.message_id)
            if i == n - 2:
                failing = orjson.dumps({"client_id": f"f{r}", "text": "fails"})
                with contextlib.suppress(ConnectionError):
                    await chat.handle_send("writer", f"/app/rooms/{room}/messages", [], failing)
        read = orjson.dumps({"message_id": str(ids[n // 2])})
        await chat.handle_send(USER, f"/app/rooms/{room}/read", [], read)
        await redis.sadd(keys.user_rooms(USER), "", room)


async def main(rooms: int, reads: int, messages: int) -> None:
    url = os.environ.get("STOMPGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"stompgate-bench:{uuid.uuid4().hex[:8]}:"
    redis = aioredis.Redis.from_url(url)
    keys = ChatKeys(prefix)
    chat = ChatLayer(
        redis=redis,
        key_prefix=prefix,
        ids=SnowflakeGenerator(9),
        clock=lambda: time.time_ns() // 1_000_000,
        publish=_publish,
        store=None,
        recent_limit=200,
    )
    try:
        print(f"setting up {rooms} rooms x {messages} messages ...", flush=True)
        await _setup(chat, redis, keys, rooms, messages)
        counts = chat.unread_counts
        first = await counts.snapshot(USER)
        assert len(first) == rooms, len(first)
        assert all(c.unread == messages - messages // 2 - 1 for c in first), first[:3]
        counter = _Counting(redis)
        await counts.snapshot(USER)
        per_read = counter.calls
        times: list[float] = []
        for _ in range(reads):
            started = time.perf_counter()
            await counts.snapshot(USER)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"unread snapshot, {rooms} rooms: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {times[-1]:.2f} ms over {reads} reads; {per_read} Redis round trip(s) per read"
        )
    finally:
        await chat.close()
        found = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if found:
            await redis.delete(*found)
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.rooms, args.reads, args.messages))
