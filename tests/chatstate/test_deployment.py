"""The lease-namespace check (`chatstate.deployment`) under races, on a real broker and Redis:
nodes of one deployment starting at once all pass; two namespaces starting at once on one
topic exchange: exactly one owns it, every node of the other is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatstate.deployment import (
    Namespace,
    NamespaceClashError,
    check_deployment,
    check_topic_exchange,
    claim_namespace,
    namespace_key,
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
    return await claim_namespace([url], redis, me)


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


async def test_a_namespace_whose_redis_lost_its_token_is_recognised(
    fresh_vhost: str, own_redis: tuple[aioredis.Redis, str]
) -> None:
    """A Redis restart without persistence loses the token: the deployment's registry names
    the same Redis URL and prefix, so the token is adopted, not refused. Anything else that
    finds no token (another URL, another prefix) is a stranger."""
    redis, prefix = own_redis
    url = rabbit.amqp_url(fresh_vhost)
    me = Namespace("t18-lost", "amq.topic", "redis://redis-a:6379/0", f"{prefix}-a:")
    token = await claim(url, redis, me)
    await redis.delete(namespace_key(me.redis_prefix))
    assert await claim(url, redis, me) == token
    assert await redis.get(namespace_key(me.redis_prefix)) == token.encode()
    for stranger in (
        Namespace("t18-lost", "amq.topic", "redis://redis-b:6379/0", f"{prefix}-a:"),
        Namespace("t18-lost", "amq.topic", "redis://redis-a:6379/0", f"{prefix}-b:"),
    ):
        await redis.delete(namespace_key(stranger.redis_prefix))
        with pytest.raises(NamespaceClashError):
            await claim(url, redis, stranger)
        await redis.set(namespace_key(me.redis_prefix), token)  # the first one's, untouched
        assert await claim(url, redis, me) == token


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
