"""A client of RabbitMQ's own STOMP plugin and a gateway client see the same messages."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import aiormq
import pytest
from pamqp import commands as spec

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import stomp_client


def test_topic_both_ways(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    room = f"/topic/room.interop-{uuid.uuid4().hex[:8]}"
    with (
        stomp_client(gateway.stomp_port) as ours,
        stomp_client(rabbit.RABBIT_STOMP_PORT, vhost=rabbit_vhost) as theirs,
    ):
        ours.subscribe(room, "o")
        theirs.subscribe(room, "t")
        ours.send(room, "from the gateway", headers={"x-origin": "gateway"})
        theirs.send(room, "from rabbitmq", headers={"x-origin": "rabbitmq"})
        for client in (ours, theirs):
            got = {m.body: m for m in client.messages(2)}
            assert set(got) == {"from the gateway", "from rabbitmq"}
            assert got["from the gateway"].headers["x-origin"] == "gateway"
            assert got["from rabbitmq"].headers["x-origin"] == "rabbitmq"
            assert all(m.headers["destination"] == room for m in got.values())


def test_queue_both_ways(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    to_plugin = f"/queue/interop-p-{uuid.uuid4().hex[:8]}"
    to_gateway = f"/queue/interop-g-{uuid.uuid4().hex[:8]}"
    with (
        stomp_client(gateway.stomp_port) as ours,
        stomp_client(rabbit.RABBIT_STOMP_PORT, vhost=rabbit_vhost) as theirs,
    ):
        ours.subscribe(to_gateway, "o")
        theirs.subscribe(to_plugin, "t")
        ours.send(to_plugin, "queued by the gateway", headers={"content-type": "text/plain"})
        theirs.send(to_gateway, "queued by rabbitmq", headers={"content-type": "text/plain"})
        mine = ours.next_message()
        plugin = theirs.next_message()
    assert mine.body == "queued by rabbitmq"
    assert plugin.body == "queued by the gateway"
    assert mine.headers["destination"] == to_gateway
    assert plugin.headers["destination"] == to_plugin
    assert plugin.headers["content-type"] == "text/plain"


async def _publish_natively(amqp_url: str, queues: list[str]) -> None:
    """What a native AMQP client (aiormq) publishes to each queue through the default
    exchange: every property, and custom headers of several AMQP types."""
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        properties = spec.Basic.Properties(
            content_type="text/plain",
            content_encoding="utf-8",
            headers={"x-origin": "native", "big": 2**40, "small": 42, "flag": True},
            delivery_mode=2,
            priority=3,
            correlation_id="corr-1",
            reply_to="replies",
            expiration="60000",
            message_id="amqp-1",
            timestamp=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            message_type="note",
            user_id="guest",
            app_id="native-app",
        )
        for queue in queues:
            await channel.basic_publish(
                b"from amqp", exchange="", routing_key=queue, properties=properties
            )
    finally:
        await connection.close()


async def _declare_natively(amqp_url: str, queue: str) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.queue_declare(queue, durable=True)
    finally:
        await connection.close()


FRAME_HEADERS = {"subscription", "destination", "message-id", "ack", "content-length"}


@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
def test_x_queue_name_on_a_topic_reaches_a_native_amqp_publisher(
    gateway: GatewayProcess, rabbit_vhost: str, amqp_url: str, durable: bool
) -> None:
    """x-queue-name makes a topic SUBSCRIBE consume that queue, bound to the topic, made or
    reused; AMQP properties and headers come through as RabbitMQ's plugin maps them."""
    tag = uuid.uuid4().hex[:8]
    topic = f"/topic/xq.{tag}"
    ours_queue, theirs_queue = f"interop-xq-g-{tag}", f"interop-xq-p-{tag}"
    headers = {"durable": "true", "auto-delete": "false"} if durable else {}
    if not durable:  # a queue a native client made already is reused as it is
        asyncio.run(_declare_natively(amqp_url, ours_queue))
    with (
        stomp_client(gateway.stomp_port) as ours,
        stomp_client(rabbit.RABBIT_STOMP_PORT, vhost=rabbit_vhost) as theirs,
    ):
        ours.subscribe(topic, "o", headers={**headers, "x-queue-name": ours_queue})
        theirs.subscribe(topic, "t", headers={**headers, "x-queue-name": theirs_queue})
        asyncio.run(_publish_natively(amqp_url, [ours_queue, theirs_queue]))
        mine, plugin = ours.next_message(), theirs.next_message()
        ours.send(topic, "from the topic")  # the queue is bound to the topic as well
        assert ours.next_message().body == "from the topic"
        assert theirs.next_message().body == "from the topic"
        if durable:
            ours.conn.unsubscribe("o", headers={"durable": "true"})
            theirs.conn.unsubscribe("t", headers={"durable": "true"})
    assert (mine.body, plugin.body) == ("from amqp", "from amqp")
    assert mine.headers["destination"] == f"/queue/{ours_queue}"
    assert plugin.headers["destination"] == f"/queue/{theirs_queue}"
    shown = {k: v for k, v in plugin.headers.items() if k not in FRAME_HEADERS}
    assert shown == {k: mine.headers.get(k) for k in shown}
    assert shown["reply-to"] == "/reply-queue/replies"
    assert {"x-origin", "big", "app-id", "user-id", "timestamp", "expiration"} <= shown.keys()
    # The plugin drops narrow integers and booleans; the gateway shows them too.
    assert (mine.headers["small"], mine.headers["flag"]) == ("42", "true")
