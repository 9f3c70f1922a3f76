"""The gateway's Redis clients: a bounded pool, named connections (issue 13, point 5)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from chatstate.client import client_name, redis_client


async def hold(client: Redis, seconds: float) -> None:
    """Keep one connection busy for ``seconds`` (a BLPOP on a key nobody pushes to)."""
    await client.blpop([f"stompgate-test:nothing:{uuid.uuid4().hex}"], timeout=seconds)


async def named(url: str, name: str) -> int:
    probe = Redis.from_url(url)
    try:
        return sum(1 for c in await probe.client_list() if c.get("name") == name)
    finally:
        await probe.aclose()


async def test_concurrent_commands_share_at_most_max_connections(redis_url: str) -> None:
    name = client_name("test", uuid.uuid4().hex[:8])
    client = redis_client(redis_url, name=name, max_connections=3)
    try:
        # 50 commands at once, each holding its connection a moment: they wait their turn
        await asyncio.gather(*(hold(client, 0.01) for _ in range(50)))
        assert 1 <= await named(redis_url, name) <= 3
    finally:
        await client.aclose()
    assert await named(redis_url, name) == 0  # aclose() closes the pool


async def test_without_a_bound_the_pool_grows(redis_url: str) -> None:
    name = client_name("test", uuid.uuid4().hex[:8])
    client = redis_client(redis_url, name=name, max_connections=0)
    try:
        await asyncio.gather(*(hold(client, 0.05) for _ in range(10)))
        assert await named(redis_url, name) == 10
    finally:
        await client.aclose()


async def test_a_command_that_waits_too_long_fails_as_a_redis_error(redis_url: str) -> None:
    client = redis_client(redis_url, name=client_name("test"), max_connections=1, timeout=0.2)
    try:
        slow = asyncio.create_task(hold(client, 1.0))
        await asyncio.sleep(0.1)
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.ping()
        await slow
    finally:
        await client.aclose()


def test_names_are_safe_for_client_setname() -> None:
    assert client_name("node 1", "access") == "stompgate:node_1:access"
