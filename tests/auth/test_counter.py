"""Connection counts: per IP in process, per user across nodes through Redis (leases)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.auth.counter import ConnectionCounter
from gateway.auth.errors import LimitExceeded
from gateway.auth.limits import AbuseLimits

# -- connection counts -------------------------------------------------------------------------


def test_connections_per_ip() -> None:
    counter = ConnectionCounter(AbuseLimits(max_connections_per_ip=2))
    counter.acquire_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.2")
    with pytest.raises(LimitExceeded) as caught:
        counter.acquire_ip("10.0.0.1")
    assert caught.value.kind == "connections_per_ip"
    assert caught.value.detail == (
        "too many connections from 10.0.0.1: 3 > max_connections_per_ip 2"
    )
    assert counter.ip_count("10.0.0.1") == 2  # the refused one was not counted
    counter.release_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.1")
    for _ in range(5):
        counter.release_ip("10.0.0.1")
    assert counter.ip_count("10.0.0.1") == 0


async def test_connections_per_user_in_process() -> None:
    counter = ConnectionCounter(AbuseLimits(max_connections_per_user=1))
    lease = await counter.acquire_user("alice")
    with pytest.raises(LimitExceeded) as caught:
        await counter.acquire_user("alice")
    assert caught.value.message == "Too many connections"
    assert caught.value.detail.startswith("too many connections for user alice: 2 > max")
    await counter.release_user(lease)
    await counter.release_user(lease)  # idempotent
    await counter.acquire_user("alice")


async def test_connections_per_user_across_nodes(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=3)
    node_a = ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id="a")
    node_b = ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id="b")
    leases = [
        await node_a.acquire_user("alice"),
        await node_b.acquire_user("alice"),
        await node_a.acquire_user("alice"),
    ]
    assert all(lease.shared for lease in leases)
    for node in (node_a, node_b):
        with pytest.raises(LimitExceeded) as caught:
            await node.acquire_user("alice")
        assert caught.value.kind == "connections_per_user"
        assert caught.value.detail == (
            "too many connections for user alice: 4 > max_connections_per_user 3"
        )
    assert await node_b.user_count("alice") == 3
    await node_b.acquire_user("bob")  # other users are unaffected
    await node_a.release_user(leases[0])
    await node_a.release_user(leases[0])  # idempotent: does not free a second slot
    await node_b.acquire_user("alice")
    with pytest.raises(LimitExceeded):
        await node_a.acquire_user("alice")


async def test_concurrent_acquires_never_overshoot(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=5)
    nodes = [
        ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id=f"n{i}")
        for i in range(4)
    ]

    async def attempt(node: ConnectionCounter) -> bool:
        try:
            await node.acquire_user("alice")
        except LimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(nodes[i % 4]) for i in range(40)))
    assert sum(results) == 5
    assert await nodes[0].user_count("alice") == 5


async def test_dead_node_leases_expire(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=1)
    dead = ConnectionCounter(
        limits, redis_client, key_prefix=redis_prefix, node_id="dead", lease_ttl=0.5
    )
    alive = ConnectionCounter(
        limits, redis_client, key_prefix=redis_prefix, node_id="alive", lease_ttl=0.5
    )
    await dead.acquire_user("alice")  # the node then "crashes": never releases, never refreshes
    with pytest.raises(LimitExceeded):
        await alive.acquire_user("alice")
    await asyncio.sleep(0.6)
    lease = await alive.acquire_user("alice")
    for _ in range(3):  # a live node keeps its lease by refreshing it
        await asyncio.sleep(0.15)
        await alive.refresh()
    with pytest.raises(LimitExceeded):
        await dead.acquire_user("alice")
    await alive.release_user(lease)
    await dead.acquire_user("alice")


async def test_redis_down_counts_locally(caplog: pytest.LogCaptureFixture) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        counter = ConnectionCounter(AbuseLimits(max_connections_per_user=1), broken)
        lease = await counter.acquire_user("alice")
        assert not lease.shared
        with pytest.raises(LimitExceeded):
            await counter.acquire_user("alice")
        await counter.release_user(lease)
        assert "counting locally" in caplog.text
    finally:
        await broken.aclose()
