"""The lean AMQP connection against the real RabbitMQ."""

from __future__ import annotations

import asyncio

import pytest
from pamqp import commands as spec

from gateway.relay.wire import (
    AmqpWire,
    ChannelClosedError,
    ConnectionLostError,
    Delivery,
    ReturnedError,
)
from tests.support import rabbit

PROPS = spec.Basic.Properties(
    delivery_mode=2, content_type="application/json", headers={"stompgate-room-seq": "1"}
)


async def test_publish_confirm_and_deliver_large_and_small(fresh_vhost: str) -> None:
    wire = await AmqpWire.connect(rabbit.amqp_url(fresh_vhost), name="test wire")
    try:
        assert wire.frame_max <= 131072
        publisher = await wire.channel(confirms=True)
        consumer = await wire.channel()
        queue = await consumer.queue_declare("", exclusive=True, auto_delete=True)
        await consumer.queue_bind(queue, "amq.topic", "room.*")
        got: list[Delivery] = []
        arrived = asyncio.Event()

        def take(delivery: Delivery) -> None:
            got.append(delivery)
            if len(got) == 3:
                arrived.set()

        await consumer.basic_consume(queue, take)
        big = bytes(range(256)) * 1200  # 300 KiB: several frames each way
        await asyncio.gather(
            publisher.publish("amq.topic", "room.1", b"small", PROPS, timeout=5),
            publisher.publish("amq.topic", "room.2", big, PROPS, timeout=5),
            publisher.publish("amq.topic", "room.3", b"", PROPS, timeout=5),
            publisher.publish("amq.topic", "elsewhere", b"not bound", PROPS, timeout=5),
        )
        await asyncio.wait_for(arrived.wait(), 5)
        assert [d.routing_key for d in got] == ["room.1", "room.2", "room.3"]
        assert [d.body for d in got] == [b"small", big, b""]
        assert got[0].properties.headers == {"stompgate-room-seq": "1"}
        assert got[0].properties.delivery_mode == 2
        await consumer.queue_unbind(queue, "amq.topic", "room.*")
    finally:
        await wire.close()
    assert wire.is_closed


async def test_refusals_are_clear_and_the_connection_survives(fresh_vhost: str) -> None:
    wire = await AmqpWire.connect(rabbit.amqp_url(fresh_vhost), name="test wire")
    try:
        mandatory = await wire.channel(confirms=True)
        with pytest.raises(ReturnedError, match="NO_ROUTE"):
            await mandatory.publish("", "no-such-queue", b"x", PROPS, mandatory=True, timeout=5)
        doomed = await wire.channel(confirms=True)
        with pytest.raises(ChannelClosedError, match="no exchange 'nope'") as caught:
            await doomed.publish("nope", "k", b"x", PROPS, timeout=5)
        assert caught.value.code == 404
        assert doomed.is_closed
        fresh = await wire.channel(confirms=True)  # the connection is fine
        await fresh.publish("amq.topic", "k", b"x", PROPS, timeout=5)
        await mandatory.publish("amq.topic", "k", b"x", PROPS, timeout=5)
    finally:
        await wire.close()


async def test_bad_login_and_vhost_say_why(fresh_vhost: str) -> None:
    url = rabbit.amqp_url(fresh_vhost)
    with pytest.raises(ConnectionLostError, match="ACCESS_REFUSED"):
        await AmqpWire.connect(url.replace(f"{rabbit.USER}:", "nobody:"), name="bad login")
    with pytest.raises(ConnectionLostError, match="vhost"):
        await AmqpWire.connect(url + "-missing", name="bad vhost")


async def test_broker_closing_the_connection_fails_pending_work(fresh_vhost: str) -> None:
    wire = await AmqpWire.connect(rabbit.amqp_url(fresh_vhost), name="doomed wire")
    watcher = wire.closing
    channel = await wire.channel(confirms=True)
    await channel.publish("amq.topic", "k", b"x", PROPS, timeout=5)
    for _ in range(50):
        names = [
            c["name"]
            for c in rabbit.mgmt("GET", f"/vhosts/{rabbit.quote(fresh_vhost)}/connections")
            if c.get("client_properties", {}).get("connection_name") == "doomed wire"
        ]
        if names:
            break
        await asyncio.sleep(0.1)
    assert names, "the management API never listed the connection"
    rabbit.mgmt("DELETE", f"/connections/{rabbit.quote(names[0])}")
    await asyncio.wait_for(asyncio.wait([watcher]), 10)
    assert isinstance(watcher.exception(), ConnectionLostError)
    with pytest.raises(ConnectionLostError):
        channel.publish("amq.topic", "k", b"x", PROPS, timeout=5)
    await wire.close()


async def test_heartbeats_keep_an_idle_connection_open(fresh_vhost: str) -> None:
    # heartbeat=2: the broker drops a client silent for two intervals (about 4 s).
    wire = await AmqpWire.connect(rabbit.amqp_url(fresh_vhost) + "?heartbeat=2", name="beats")
    try:
        assert wire.heartbeat == 2
        await asyncio.sleep(7)
        assert not wire.is_closed
        channel = await wire.channel(confirms=True)
        await channel.publish("amq.topic", "k", b"still here", PROPS, timeout=5)
    finally:
        await wire.close()


async def test_messages_waiting_in_the_queue_arrive_with_the_consume_ok(fresh_vhost: str) -> None:
    wire = await AmqpWire.connect(rabbit.amqp_url(fresh_vhost), name="backlog")
    try:
        publisher = await wire.channel(confirms=True)
        consumer = await wire.channel()
        queue = await consumer.queue_declare("", exclusive=True, auto_delete=True)
        for i in range(50):  # already queued when the consumer starts
            await publisher.publish("", queue, str(i).encode(), PROPS, timeout=5)
        got: list[Delivery] = []
        await consumer.basic_consume(queue, got.append)
        for _ in range(100):
            if len(got) == 50:
                break
            await asyncio.sleep(0.02)
        assert [d.body for d in got] == [str(i).encode() for i in range(50)]
    finally:
        await wire.close()
