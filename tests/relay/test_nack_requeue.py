"""NACK with ``requeue: false`` never redelivers (issue 14.1), at STOMP 1.0, 1.1 and 1.2.

The message goes to the queue's dead-letter exchange if it has one, else it is dropped. It
came back before because stomp.py writes ``requeue:False`` (Python's ``str(False)``), which the
session took for "requeue"; RabbitMQ's plugin reads ``false`` and ``False`` alike.

How "not redelivered" is seen without waiting for something not to happen: the subscription
has ``prefetch-count:1`` and a second message waits behind the first. A NACK that requeued
would put the first back at the head of the queue, so the next MESSAGE would be the first
again (``redelivered:true``); a NACK that dropped or dead-lettered it lets the second through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pamqp.common import FieldValue

from gateway.stomp import ServerSession, SessionConfig, events
from tests.relay.e2e import (
    ack_headers,
    amqp_channel,
    connect,
    dev_gateway,
    drop_policy,
    next_message,
    policy,
    queue_counts,
)
from tests.relay.helpers import eventually
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, unique
from tests.support.stomp_client import StompClient

VERSIONS = ("1.0", "1.1", "1.2")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    with dev_gateway(tmp_path_factory.mktemp("nack")) as found:
        yield found


@pytest.mark.parametrize(
    ("value", "requeue"),
    [
        (None, True),
        ("true", True),
        ("True", True),
        ("false", False),
        ("False", False),
        ("no", True),
    ],
)
def test_the_session_reads_requeue_as_rabbitmq_does(value: str | None, requeue: bool) -> None:
    session = ServerSession(SessionConfig())
    session.receive_data(b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
    (connect_event,) = session.events_received()
    assert isinstance(connect_event, events.ConnectRequested)
    session.accept(session_id="s")
    header = "" if value is None else f"requeue:{value}\n"
    session.receive_data(f"NACK\nid:7\n{header}\n\x00".encode())
    (nack,) = session.events_received()
    assert isinstance(nack, events.NackRequested)
    assert nack.requeue is requeue


async def _dead_letter_queue(vhost: str) -> str:
    """A queue bound to ``amq.direct`` with its own name: the dead-letter target."""
    dead = unique("dead")
    async with amqp_channel(vhost) as channel:
        await channel.queue_declare(dead, durable=True)
        await channel.queue_bind(dead, "amq.direct", routing_key=dead)
    return dead


async def _send(peer: StompPeer, destination: str, body: str) -> list[Frame]:
    """SEND with a receipt; the frames that came before the RECEIPT."""
    receipt = unique("send")
    await peer.send_frame("SEND", {"destination": destination, "receipt": receipt}, body)
    return (await peer.receipt(receipt))[:-1]


@pytest.mark.parametrize("spelling", ["false", "False"])
@pytest.mark.parametrize("dlx", [False, True], ids=["no-dlx", "dlx"])
@pytest.mark.parametrize("kind", ["queue", "topic"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_nack_without_requeue_never_redelivers(
    node: tuple[GatewayProcess, str], version: str, kind: str, dlx: bool, spelling: str
) -> None:
    gateway, vhost = node
    dead = await _dead_letter_queue(vhost) if dlx else None
    name = unique(kind)
    subscribe = {
        "id": "s1",
        "ack": "client-individual",
        "prefetch-count": "1",
        "receipt": "subscribed",
    }
    policy_name = unique("dlx")
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer, version)
        if kind == "queue":
            destination = f"/queue/{name}"
            if dead is not None:  # the queue exists with a dead-letter exchange: used as is
                arguments: dict[str, FieldValue] = {
                    "x-dead-letter-exchange": "amq.direct",
                    "x-dead-letter-routing-key": dead,
                }
                async with amqp_channel(vhost) as channel:
                    await channel.queue_declare(name, durable=True, arguments=arguments)
            await _send(peer, destination, "m1")
            await _send(peer, destination, "m2")
            await peer.send_frame("SUBSCRIBE", {**subscribe, "destination": destination})
            seen = await peer.receipt("subscribed")
        else:
            destination = f"/topic/{name}"
            if dlx:  # the subscription's private queue gets a dead-letter exchange by policy
                pattern = rf"^stompgate\.sub\.{gateway.node_id}\."
                await asyncio.to_thread(
                    policy,
                    vhost,
                    policy_name,
                    pattern,
                    {
                        "dead-letter-exchange": "amq.direct",
                        "dead-letter-routing-key": dead,
                    },
                )
            await peer.send_frame("SUBSCRIBE", {**subscribe, "destination": destination})
            seen = await peer.receipt("subscribed")
            seen += await _send(peer, destination, "m1")
            seen += await _send(peer, destination, "m2")
        try:
            messages = [f for f in seen if f.command == "MESSAGE"]
            first = messages[0] if messages else await next_message(peer)
            assert (first.body, first.headers["redelivered"]) == ("m1", "false")
            await peer.send_frame(
                "NACK", {**ack_headers(version, first), "requeue": spelling, "receipt": "nacked"}
            )
            after = [f for f in await peer.receipt("nacked") if f.command == "MESSAGE"]
            second = after[0] if after else await next_message(peer)
            # The second message, not the first again: the NACK did not requeue.
            assert (second.body, second.headers["redelivered"]) == ("m2", "false")
            await peer.send_frame("ACK", {**ack_headers(version, second), "receipt": "acked"})
            await peer.receipt("acked")
            if dead is not None:  # ... and the first went to the dead-letter exchange
                await eventually(lambda: _ready(vhost, dead), lambda n: n == 1)
            await peer.send_frame("DISCONNECT", {"receipt": "bye"})
            await peer.receipt("bye")
        finally:
            if dlx and kind == "topic":
                await asyncio.to_thread(drop_policy, vhost, policy_name)
    if kind == "queue":  # nothing came back to the queue either
        counts = await eventually(lambda: _counts(vhost, name), lambda c: c[1] == 0)
        assert counts == (0, 0)


def _counts(vhost: str, queue: str) -> tuple[int, int]:
    return asyncio.run(queue_counts(vhost, queue))


def _ready(vhost: str, queue: str) -> int:
    return _counts(vhost, queue)[0]


def test_stomp_py_nack_requeue_false(node: tuple[GatewayProcess, str]) -> None:
    """stomp.py's ``nack(..., requeue=False)`` sends ``requeue:False``: not redelivered."""
    gateway, _ = node
    queue = unique("q")
    client = StompClient(gateway.stomp_port)
    client.connect()
    try:
        client.send(f"/queue/{queue}", "m1")
        client.send(f"/queue/{queue}", "m2")
        client.subscribe(
            f"/queue/{queue}", "q1", ack="client-individual", headers={"prefetch-count": "1"}
        )
        first = client.next_message()
        assert first.body == "m1"
        client.nack(first.headers["ack"], requeue=False)  # type: ignore[arg-type]
        second = client.next_message()
        assert (second.body, second.headers["redelivered"]) == ("m2", "false")
        client.ack(second.headers["ack"])
    finally:
        client.disconnect()
