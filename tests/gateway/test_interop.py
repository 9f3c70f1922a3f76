"""A client of RabbitMQ's own STOMP plugin and a gateway client see the same messages."""

from __future__ import annotations

import uuid

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
