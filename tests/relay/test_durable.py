"""Durable subscriptions: a named queue that collects messages while the user is away."""

from __future__ import annotations

from gateway.relay import durable_queue_name
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
