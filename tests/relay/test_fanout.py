"""Edge fan-out: one node queue per Relay, one broker delivery per node, local matching."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.relay import Relay
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, binding_keys, eventually
from tests.support import rabbit


async def test_many_local_sinks_get_one_message(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sinks = [RecordingSink(f"s{i}") for i in range(20)]
    for sink in sinks:
        await relay.subscribe(sink, "sub-0", "/topic/room.1", "auto", {})
    other = RecordingSink("other")
    await relay.subscribe(other, "sub-0", "/topic/room.2", "auto", {})
    wildcard = RecordingSink("wild")
    await relay.subscribe(wildcard, "w", "/topic/room.*", "auto", {})

    publisher = RecordingSink("pub")
    await relay.publish(publisher, "/topic/room.1", [("event-type", "message")], b"hello")
    for sink in sinks:
        (delivery,) = await sink.wait_for(1)
        assert delivery.subscription == "sub-0"
        assert delivery.ack_id is None
        assert delivery.body == b"hello"
        assert delivery.destination == "/topic/room.1"
        assert delivery.header("event-type") == "message"
        assert delivery.header("persistent") == "true"
    # ONE PreparedMessage shared by every local subscriber.
    assert len({id(sink.deliveries[0].message) for sink in sinks}) == 1
    await wildcard.wait_for(1)
    await asyncio.sleep(0.2)
    assert other.deliveries == []
    assert relay.fanout_deliveries == 1


async def test_fan_out_count_two_nodes(make_relay: RelayFactory, fresh_vhost: str) -> None:
    """Two nodes with many sinks each: the broker delivers each message once per node."""
    nodes = [await make_relay(), await make_relay()]
    per_node, messages = 50, 20
    sinks: list[RecordingSink] = []
    for n, relay in enumerate(nodes):
        for i in range(per_node):
            sink = RecordingSink(f"n{n}-s{i}")
            await relay.subscribe(sink, "room", "/topic/room.42", "auto", {})
            sinks.append(sink)
    sender = RecordingSink("sender")
    await asyncio.gather(
        *(
            nodes[i % 2].publish(sender, "/topic/room.42", [], f"m{i}".encode())
            for i in range(messages)
        )
    )
    for sink in sinks:
        await sink.wait_for(messages)
    total = sum(len(sink.deliveries) for sink in sinks)
    assert total == messages * per_node * len(nodes)
    assert [relay.fanout_deliveries for relay in nodes] == [messages, messages]

    # And from RabbitMQ's side: each node queue delivered exactly M messages.
    def stats() -> list[int]:
        counts = []
        for relay in nodes:
            assert relay.node_queue is not None
            info: dict[str, Any] = rabbit.queue_info(fresh_vhost, relay.node_queue)
            counts.append(int(info.get("message_stats", {}).get("deliver_no_ack", 0)))
        return counts

    counts = await eventually(stats, lambda c: c == [messages, messages], within=20, every=0.5)
    assert counts == [messages, messages]


async def test_last_unsubscribe_unbinds(make_relay: RelayFactory, fresh_vhost: str) -> None:
    relay = await make_relay()
    queue = relay.node_queue
    assert queue is not None
    a, b = RecordingSink("a"), RecordingSink("b")
    sub_a = await relay.subscribe(a, "1", "/topic/room.7", "auto", {})
    sub_b = await relay.subscribe(b, "1", "/topic/room.7", "auto", {})
    sub_w = await relay.subscribe(b, "2", "/topic/room.#", "auto", {})
    assert binding_keys(fresh_vhost, queue) == {"room.7", "room.#"}
    await sub_a.cancel()
    assert binding_keys(fresh_vhost, queue) == {"room.7", "room.#"}
    await sub_b.cancel()
    assert binding_keys(fresh_vhost, queue) == {"room.#"}
    await sub_w.cancel()
    assert binding_keys(fresh_vhost, queue) == set()
    # cancel is idempotent
    await sub_w.cancel()


async def test_detach_unbinds_and_stops_delivery(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    queue = relay.node_queue
    assert queue is not None
    sink, stays = RecordingSink("gone"), RecordingSink("stays")
    await relay.subscribe(sink, "1", "/topic/a", "auto", {})
    await relay.subscribe(sink, "2", "/topic/b", "auto", {})
    await relay.subscribe(stays, "1", "/topic/b", "auto", {})
    await relay.detach(sink)
    assert binding_keys(fresh_vhost, queue) == {"b"}
    await relay.publish(stays, "/topic/b", [], b"x")
    await stays.wait_for(1)
    assert sink.deliveries == []


async def test_concurrent_subscribe_and_cancel_same_key(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay: Relay = await make_relay()
    queue = relay.node_queue
    assert queue is not None
    sinks = [RecordingSink(f"s{i}") for i in range(30)]
    subs = await asyncio.gather(
        *(relay.subscribe(s, "x", "/topic/busy", "auto", {}) for s in sinks)
    )
    assert binding_keys(fresh_vhost, queue) == {"busy"}
    await asyncio.gather(*(sub.cancel() for sub in subs[:-1]))
    assert binding_keys(fresh_vhost, queue) == {"busy"}
    await asyncio.gather(
        subs[-1].cancel(), relay.subscribe(sinks[0], "y", "/topic/busy", "auto", {})
    )
    assert binding_keys(fresh_vhost, queue) == {"busy"}


HOLD = 5.0
"""A hold long enough that "not held" needs no clock: a held message would come after it."""


async def _post(relay: Relay, key: str, seq: int) -> None:
    headers = [("stompgate-room-seq", str(seq)), ("stompgate-message-id", str(1000 + seq))]
    await relay.publish(RecordingSink("poster"), f"/topic/{key}", headers, f"m{seq}".encode())


async def test_room_order_survives_the_unbind_of_a_key_another_binding_still_covers(
    make_relay: RelayFactory,
) -> None:
    """The node forgets a room's order only when no binding covers the room any more: while
    ``room.*`` still covers ``room.k``, the exact binding's unbind keeps the expectation, so
    an overtaken post is still put back in order (forgotten, 3 would start the room afresh
    and 2 would come after it)."""
    relay = await make_relay(order_hold=HOLD)
    wild, exact = RecordingSink("wild"), RecordingSink("exact")
    await relay.subscribe(wild, "w", "/topic/room.*", "auto", {})
    sub = await relay.subscribe(exact, "e", "/topic/room.k", "auto", {})
    await _post(relay, "room.k", 1)
    await exact.wait_for(1)
    await sub.cancel()  # unbinds room.k; room.* still covers it
    await _post(relay, "room.k", 3)  # overtook 2
    await _post(relay, "room.k", 2)
    await wild.wait_for(3, within=HOLD / 2)
    assert wild.bodies() == [b"m1", b"m2", b"m3"]
    assert relay.room_order == (1, 0, 0)  # (held, skipped, dropped): 3 waited for 2


async def test_room_order_starts_afresh_after_the_last_covering_binding_went(
    make_relay: RelayFactory,
) -> None:
    """A wildcard's unbind keeps the order of a key an exact binding still covers; once no
    binding covers the key, the posts made meanwhile never reach the node, and the first
    one after a new binding goes out at once: not held, nothing counted as skipped."""
    relay = await make_relay(order_hold=HOLD)
    exact, wild = RecordingSink("exact"), RecordingSink("wild")
    sub_exact = await relay.subscribe(exact, "e", "/topic/room.k", "auto", {})
    sub_wild = await relay.subscribe(wild, "w", "/topic/room.*", "auto", {})
    await _post(relay, "room.k", 1)
    await wild.wait_for(1)
    await sub_wild.cancel()  # room.k is still bound exactly: followed on
    await _post(relay, "room.k", 3)
    await _post(relay, "room.k", 2)
    await exact.wait_for(3, within=HOLD / 2)
    assert exact.bodies() == [b"m1", b"m2", b"m3"]
    await sub_exact.cancel()  # nothing covers room.k now
    for seq in (4, 5, 6):
        await _post(relay, "room.k", seq)  # the node cannot see these
    again = RecordingSink("again")
    await relay.subscribe(again, "a", "/topic/room.*", "auto", {})
    await _post(relay, "room.k", 10)
    await again.wait_for(1, within=HOLD / 2)
    assert again.bodies() == [b"m10"]
    assert relay.room_order == (1, 0, 0)  # (held, skipped, dropped): 3 waited for 2
