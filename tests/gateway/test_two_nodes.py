"""Two gateway processes share rooms through RabbitMQ; one delivery per node per message."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import StompClient, stomp_client


def test_a_room_is_shared_across_nodes_in_order_per_sender(
    gateway: GatewayProcess, gateway_b: GatewayProcess
) -> None:
    room = f"/topic/room.shared-{uuid.uuid4().hex[:8]}"
    with (
        stomp_client(gateway.stomp_port, login="alice", passcode="alice") as alice,
        stomp_client(gateway_b.stomp_port, login="bob", passcode="bob") as bob,
    ):
        alice.subscribe(room, "r")
        bob.subscribe(room, "r")
        for i in range(20):
            alice.send(room, f"a{i}", receipt=False)
            bob.send(room, f"b{i}", receipt=False)
        seen_by_alice = [m.body for m in alice.messages(40)]
        seen_by_bob = [m.body for m in bob.messages(40)]
    for seen in (seen_by_alice, seen_by_bob):
        assert [b for b in seen if b.startswith("a")] == [f"a{i}" for i in range(20)]
        assert [b for b in seen if b.startswith("b")] == [f"b{i}" for i in range(20)]


def _node_queue_deliveries(vhost: str, node_id: str) -> int:
    for queue in rabbit.list_queues(vhost):
        if queue["name"].startswith(f"stompgate.node.{node_id}."):
            stats = queue.get("message_stats", {})
            return int(stats.get("deliver_no_ack", 0)) + int(stats.get("deliver", 0))
    raise AssertionError(f"no fan-out queue for node {node_id}")


def test_one_broker_delivery_per_node_per_message(fresh_vhost: str, log_dir: Path) -> None:
    url = rabbit.amqp_url(fresh_vhost)
    nodes = [GatewayProcess(amqp_url=url, node_id=f"fan-{n}") for n in ("a", "b")]
    for node in nodes:
        node.start(log_dir)
    room = "/topic/room.fan"
    per_node, messages = 8, 25
    clients = [StompClient(node.stomp_port) for node in nodes for _ in range(per_node)]
    try:
        for i, client in enumerate(clients):
            client.connect()
            client.subscribe(room, f"s{i}")
        with stomp_client(nodes[0].stomp_port) as sender:
            for i in range(messages):
                sender.send(room, f"m{i}")
        for client in clients:
            assert [m.body for m in client.messages(messages)] == [f"m{i}" for i in range(messages)]
        # RabbitMQ's own count: each node's single fan-out queue got each message once,
        # whatever the number of subscribers on that node. Stats lag by up to 5 s.
        deadline = time.monotonic() + 30
        while True:
            delivered = {n.node_id: _node_queue_deliveries(fresh_vhost, n.node_id) for n in nodes}
            if min(delivered.values()) >= messages or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(5.5)  # one more statistics interval: the counts must not grow further
        delivered = {n.node_id: _node_queue_deliveries(fresh_vhost, n.node_id) for n in nodes}
        assert delivered == {"fan-a": messages, "fan-b": messages}
    finally:
        for client in clients:
            client.disconnect()
        for node in nodes:
            node.stop()


def test_user_destination_reaches_every_session_of_the_user(
    gateway: GatewayProcess, gateway_b: GatewayProcess
) -> None:
    with (
        stomp_client(gateway.stomp_port, login="alice", passcode="alice") as alice_a,
        stomp_client(gateway_b.stomp_port, login="alice", passcode="alice") as alice_b,
        stomp_client(gateway_b.stomp_port, login="bob", passcode="bob") as bob,
    ):
        for client in (alice_a, alice_b, bob):
            client.subscribe("/user/queue/notices", "n")
        with stomp_client(gateway.stomp_port) as service:
            service.send("/user/alice/queue/notices", "for alice")
        assert alice_a.next_message().body == "for alice"
        assert alice_b.next_message().body == "for alice"
        assert bob.no_message(0.5)
