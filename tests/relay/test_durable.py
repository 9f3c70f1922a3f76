"""Durable subscriptions: a named queue that collects messages while the user is away."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.relay import Relay, SubscribeError, durable_queue_name
from gateway.relay.durable import DurableError, DurableRegistry
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, binding_keys, queue_depth, settle
from tests.support import rabbit

DURABLE = {"durable": "true", "auto-delete": "false"}


async def test_durable_subscription_survives_the_session_and_the_node(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    node1, node2 = await make_relay(), await make_relay()
    alice = RecordingSink("alice-1", user="alice")
    sub = await node1.subscribe(alice, "rooms", "/topic/room.9", "auto", DURABLE)
    queue = durable_queue_name("alice", "rooms", "/topic/room.9")
    assert sub.queue == queue
    info = rabbit.queue_info(fresh_vhost, queue)
    assert info["durable"] is True
    assert info["auto_delete"] is False
    assert info["arguments"].get("x-queue-type") == "quorum"
    assert binding_keys(fresh_vhost, queue) == {"room.9"}

    sender = RecordingSink("sender")
    await node2.publish(sender, "/topic/room.9", [], b"live")
    await alice.wait_for(1)
    assert alice.deliveries[0].destination == "/topic/room.9"

    await node1.detach(alice)
    for i in range(3):
        await node2.publish(sender, "/topic/room.9", [], f"away {i}".encode())
    assert await queue_depth(fresh_vhost, queue) == 3

    # Alice comes back on the other node with the same subscription id.
    back = RecordingSink("alice-2", user="alice")
    sub2 = await node2.subscribe(back, "rooms", "/topic/room.9", "client", DURABLE)
    await back.wait_for(3)
    assert back.bodies() == [b"away 0", b"away 1", b"away 2"]
    await sub2.ack(back.deliveries[-1].ack_id or "")
    await settle()
    # A plain UNSUBSCRIBE keeps the queue...
    await sub2.cancel({})
    assert rabbit.queue_info(fresh_vhost, queue)["name"] == queue


async def test_unsubscribe_with_durable_header_deletes_the_queue(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    bob = RecordingSink("bob", user="bob")
    sub = await relay.subscribe(
        bob,
        "d",
        "/topic/news",
        "auto",
        {**DURABLE, "x-queue-name": "bob-news", "x-queue-type": "classic"},
    )
    assert sub.queue == "bob-news"
    assert rabbit.queue_info(fresh_vhost, "bob-news")["arguments"]["x-queue-type"] == "classic"
    await sub.cancel({"durable": "true"})
    names = {q["name"] for q in rabbit.list_queues(fresh_vhost)}
    assert "bob-news" not in names


async def test_durable_needs_auto_delete_false(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s", user="carol")
    sub = await relay.subscribe(sink, "x", "/topic/t", "auto", {"durable": "true"})
    assert sub.queue is None  # served by the node fan-out queue


@pytest.fixture
async def registry(redis_url: str, redis_prefix: str) -> AsyncIterator[DurableRegistry]:
    client = aioredis.Redis.from_url(redis_url)
    yield DurableRegistry(client, key_prefix=redis_prefix, limit=2)
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_durable_subscriptions_are_recorded_counted_and_forgotten(
    make_relay: RelayFactory, registry: DurableRegistry, fresh_vhost: str
) -> None:
    relay = Relay(
        dataclasses.replace((await make_relay()).settings, node_id="recording"),
        durables=registry,
    )
    await relay.start()
    try:
        service = relay.durable_subscriptions
        assert service is not None
        kim = RecordingSink("kim-1", user="kim")
        first = await relay.subscribe(kim, "a", "/topic/a", "auto", DURABLE)
        await relay.subscribe(kim, "b", "/topic/b", "auto", DURABLE)
        assert [r.id for r in await registry.records("kim")] == ["a", "b"]
        again = RecordingSink("kim-2", user="kim")  # her own again: not a new one
        await relay.subscribe(again, "a", "/topic/a", "auto", DURABLE)
        with pytest.raises(DurableError) as info:
            await relay.subscribe(again, "c", "/topic/c", "auto", DURABLE)
        assert info.value.message == "Durable subscription limit exceeded"
        assert durable_queue_name("kim", "c", "/topic/c") not in {
            q["name"] for q in rabbit.list_queues(fresh_vhost)
        }
        # a durable subscription that fails on the broker is not counted
        await first.cancel({"durable": "true"})
        with pytest.raises(SubscribeError, match="no exchange 'missing'"):
            await relay.subscribe(kim, "m", "/exchange/missing/k", "auto", DURABLE)
        assert [r.id for r in await registry.records("kim")] == ["b"]
        [listed] = await service.list("kim")
        assert (listed.record.destination, listed.messages) == ("/topic/b", 0)
        assert not await service.delete("lee", listed.record.queue)
        assert await service.delete("kim", listed.record.queue)
        assert await registry.records("kim") == []
        assert listed.record.queue not in {q["name"] for q in rabbit.list_queues(fresh_vhost)}
    finally:
        await relay.close()


async def test_at_the_cap_records_whose_queue_is_gone_are_dropped_first(
    make_relay: RelayFactory, registry: DurableRegistry, fresh_vhost: str
) -> None:
    relay = Relay(
        dataclasses.replace((await make_relay()).settings, node_id="pruning"), durables=registry
    )
    await relay.start()
    try:
        liv = RecordingSink("liv-1", user="liv")
        await relay.subscribe(liv, "a", "/topic/a", "auto", DURABLE)
        await relay.subscribe(liv, "b", "/topic/b", "auto", DURABLE)
        # the broker drops one (a policy's expiry, an operator): the record stays behind
        rabbit.mgmt(
            "DELETE",
            f"/queues/{rabbit.quote(fresh_vhost)}/"
            f"{rabbit.quote(durable_queue_name('liv', 'a', '/topic/a'))}",
        )
        await relay.subscribe(liv, "c", "/topic/c", "auto", DURABLE)
        assert [r.id for r in await registry.records("liv")] == ["b", "c"]
    finally:
        await relay.close()
