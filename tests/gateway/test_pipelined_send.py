"""SENDs without a receipt do not wait for their confirm, yet nothing is dropped silently:
a RECEIPT still covers every earlier SEND, and a SEND the broker refuses ends the session
with an ERROR that says so."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.relay.helpers import queue_depth
from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import stomp_client


def test_a_receipt_covers_every_earlier_send(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    with stomp_client(gateway.stomp_port) as client:
        client.send(f"/queue/{name}", "first", receipt=True)  # declares the queue
        for i in range(80):  # under the default rate limit (burst 100 frames)
            client.send(f"/queue/{name}", f"m{i}", receipt=False)
        client.send(f"/queue/{name}", "last", receipt=True)
        # The RECEIPT for "last" means the broker holds all 82 (a passive declare counts
        # what the queue has right now; no statistics lag).
        assert asyncio.run(queue_depth(rabbit_vhost, name)) == 82
        client.subscribe(f"/queue/{name}", "q")
        bodies = [m.body for m in client.messages(82)]
    assert bodies == ["first", *(f"m{i}" for i in range(80)), "last"]


def test_a_refused_send_without_receipt_still_gets_an_error(gateway: GatewayProcess) -> None:
    name = f"full-{uuid.uuid4().hex[:8]}"
    full = {"x-max-length": "0", "x-overflow": "reject-publish"}
    with stomp_client(gateway.stomp_port) as client:
        client.send(f"/queue/{name}", "refused, no receipt", receipt=False, headers=full)
        error = client.next_error()
    assert error.headers["message"] == "SEND not confirmed"
    assert error.body.startswith("broker refused the message")
    assert "nack" in error.body


def test_amq_queue_sends_keep_their_place_among_pipelined_ones(gateway: GatewayProcess) -> None:
    name = f"mixed-{uuid.uuid4().hex[:8]}"
    with stomp_client(gateway.stomp_port) as client:
        client.send(f"/queue/{name}", "q0", receipt=True)  # declares the queue
        for i in range(1, 30):
            # /amq/queue/ publishes are mandatory and take a channel of their own
            prefix = "/amq/queue/" if i % 3 == 0 else "/queue/"
            client.send(f"{prefix}{name}", f"q{i}", receipt=False)
        client.subscribe(f"/queue/{name}", "q")
        bodies = [m.body for m in client.messages(30)]
    assert bodies == [f"q{i}" for i in range(30)]


def test_a_full_window_waits_for_confirms_and_keeps_order(
    amqp_url: str, rabbit_vhost: str, log_dir: Path
) -> None:
    node = GatewayProcess(
        amqp_url=amqp_url, node_id="gw-window", extra_args=("--max-unconfirmed", "2")
    )
    node.start(log_dir)
    try:
        name = f"window-{uuid.uuid4().hex[:8]}"
        with stomp_client(node.stomp_port) as client:
            client.send(f"/queue/{name}", "m0", receipt=True)  # declares the queue
            for i in range(1, 60):
                client.send(f"/queue/{name}", f"m{i}", receipt=False)
            client.send(f"/queue/{name}", "m60", receipt=True)
            assert asyncio.run(queue_depth(rabbit_vhost, name)) == 61
            client.subscribe(f"/queue/{name}", "q")
            bodies = [m.body for m in client.messages(61)]
            assert not client.errors()
        assert bodies == [f"m{i}" for i in range(61)]
    finally:
        node.stop()
