"""Losing RabbitMQ: sessions are told and closed, /readyz says so, the node recovers alone."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.relay.helpers import close_connections, connections
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import StompClient, stomp_client


def ready(node: GatewayProcess) -> int:
    try:
        with urllib.request.urlopen(node.http_url + "/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_broker_loss_closes_sessions_and_the_node_recovers(fresh_vhost: str, log_dir: Path) -> None:
    node = GatewayProcess(amqp_url=rabbit.amqp_url(fresh_vhost), node_id="gw-loss")
    node.start(log_dir)
    try:
        queue = "/queue/kept"
        with stomp_client(node.stomp_port) as producer:
            producer.send(queue, "queued before the loss")
        client = StompClient(node.stomp_port)
        client.connect()
        client.subscribe("/topic/room.loss", "room")
        deadline = time.monotonic() + 20  # the management API lists connections with a lag
        while len(connections(fresh_vhost)) < 2:
            assert time.monotonic() < deadline, "gateway's AMQP connections never listed"
            time.sleep(0.2)
        # Closing either of the node's two connections drops both (the node may close the
        # second before the management API gets to it).
        assert close_connections(fresh_vhost) >= 1
        error = client.next_error()
        assert error.headers["message"] == "Broker connection lost"
        assert error.body.startswith("broker connection lost")
        assert error.body.endswith("reconnect and resubscribe")
        client.disconnect()
        # the node reconnects by itself; meanwhile /readyz may have said 503
        deadline = time.monotonic() + 20
        while ready(node) != 200:
            assert time.monotonic() < deadline, "node did not recover"
            time.sleep(0.1)
        with stomp_client(node.stomp_port) as again:
            again.subscribe("/topic/room.loss", "room")
            again.send("/topic/room.loss", "after recovery")
            assert again.next_message().body == "after recovery"
            again.subscribe(queue, "q", ack="client")
            kept = again.next_message()
            assert kept.body == "queued before the loss"
            again.ack(kept.headers["ack"])
        with urllib.request.urlopen(node.http_url + "/readyz", timeout=5) as response:
            assert json.loads(response.read()) == {"ready": True}
    finally:
        node.stop()
