"""The lease-namespace check (`chatstate.deployment`) under races, on a real broker and Redis:
nodes of one deployment starting at once all pass; two namespaces starting at once on one
topic exchange: exactly one owns it, every node of the other is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
import redis.asyncio as aioredis

from chatstate.deployment import (
    Namespace,
    NamespaceClashError,
    check_deployment,
    check_topic_exchange,
    claim_namespace,
)
from tests.support import rabbit


@pytest.fixture
async def own_redis(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A client and a prefix NOT part of the default namespace; its keys deleted after."""
    prefix = f"t18-ns-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def claim(url: str, redis: aioredis.Redis, me: Namespace) -> str:
    connection = await aio_pika.connect(url)
    try:
        return await claim_namespace(await connection.channel(publisher_confirms=True), redis, me)
    finally:
        await connection.close()


async def test_nodes_of_one_deployment_starting_at_once_all_pass(
    fresh_vhost: str, own_redis: tuple[aioredis.Redis, str]
) -> None:
    redis, prefix = own_redis
    url = rabbit.amqp_url(fresh_vhost)
    me = Namespace("t18-race", "amq.topic", "redis://test", f"{prefix}-a:")
    tokens = await asyncio.wait_for(asyncio.gather(*(claim(url, redis, me) for _ in range(6))), 60)
    assert len(set(tokens)) == 1
    assert await claim(url, redis, me) == tokens[0]  # and later starts too


async def test_two_namespaces_starting_at_once_one_owns_the_exchange(
    fresh_vhost: str, own_redis: tuple[aioredis.Redis, str]
) -> None:
    redis, prefix = own_redis
    url = rabbit.amqp_url(fresh_vhost)
    a = Namespace("t18-race-a", "t18-rooms", "redis://test", f"{prefix}-a:")
    b = Namespace("t18-race-b", "t18-rooms", "redis://test", f"{prefix}-b:")
    attempts = [a, b, a, b, a, b]
    results = await asyncio.wait_for(
        asyncio.gather(*(claim(url, redis, me) for me in attempts), return_exceptions=True), 60
    )
    passed = {me.deployment for me, r in zip(attempts, results, strict=True) if isinstance(r, str)}
    refused = [r for r in results if isinstance(r, NamespaceClashError)]
    assert len(passed) == 1, results  # one owner, all of its nodes pass
    assert len(refused) == 3, results  # every node of the other is refused
    [owner] = passed
    assert all(f"deployment '{owner}'" in str(r) for r in refused)


@pytest.mark.parametrize("name", ["stompgate", "blue", "a", "blue-2", "x" * 32])
def test_good_deployment_names(name: str) -> None:
    assert check_deployment(name) == name


@pytest.mark.parametrize("name", ["", "Blue", "-a", "a-", "a.b", "a_b", "x" * 33, "a b"])
def test_bad_deployment_names(name: str) -> None:
    with pytest.raises(ValueError, match="deployment"):
        check_deployment(name)


@pytest.mark.parametrize("name", ["", "amq.direct", "amq.fanout", "a b", "é"])
def test_bad_topic_exchanges(name: str) -> None:
    with pytest.raises(ValueError, match="topic exchange"):
        check_topic_exchange(name)
