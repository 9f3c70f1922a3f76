"""Streams as RabbitMQ's STOMP plugin does them (issue 14.11), end to end over STOMP.

SUBSCRIBE to a stream (declared with ``x-queue-type: stream`` through ``/queue/``, or an
existing one through ``/amq/queue/``) with ``x-stream-offset`` (``first``, ``last``,
``next``, ``offset:<n>``, ``timestamp:<seconds>``) and ``prefetch-count``; each MESSAGE carries
its position as ``x-stream-offset``; ACKs work as for a queue; a NACK is refused with an ERROR
(the broker would close the whole connection: 540), and the node stays connected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.relay.e2e import amqp_channel, connect, dev_gateway, node_connections
from tests.relay.helpers import eventually
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, unique

COUNT = 5


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    with dev_gateway(tmp_path_factory.mktemp("streams")) as found:
        yield found


async def _stream(vhost: str, count: int = COUNT) -> str:
    """A stream holding ``m0`` ... ``m<count-1>`` at offsets 0 ... count-1."""
    name = unique("stream")
    async with amqp_channel(vhost) as channel:
        await channel.queue_declare(name, durable=True, arguments={"x-queue-type": "stream"})
        for i in range(count):
            await channel.basic_publish(f"m{i}".encode(), routing_key=name)  # confirmed
    return name


async def _subscribe(peer: StompPeer, destination: str, **headers: str) -> list[Frame]:
    """SUBSCRIBE (id ``s``, client ack unless given); the MESSAGEs before its RECEIPT."""
    frame = {"id": "s", "destination": destination, "ack": "client", "receipt": "subscribed"}
    frame.update(headers)
    await peer.send_frame("SUBSCRIBE", frame)
    return [f for f in await peer.receipt("subscribed") if f.command == "MESSAGE"]


async def _messages(peer: StompPeer, count: int, seen: list[Frame]) -> list[Frame]:
    """``count`` MESSAGEs: those in ``seen`` first, then read."""
    found = list(seen)
    while len(found) < count:
        frame = await peer.frame()
        assert frame.command == "MESSAGE", frame
        found.append(frame)
    return found


def _offsets(frames: list[Frame]) -> list[int]:
    return [int(f.headers["x-stream-offset"]) for f in frames]


async def _publish(vhost: str, queue: str, body: str) -> None:
    async with amqp_channel(vhost) as channel:
        await channel.basic_publish(body.encode(), routing_key=queue)


async def _bye(peer: StompPeer) -> None:
    await peer.send_frame("DISCONNECT", {"receipt": "bye"})
    await peer.receipt("bye")


async def _two_connections(vhost: str, node_id: str) -> list[str]:
    """The node's wire and consume connections (the management API lists new ones late)."""
    return await eventually(lambda: node_connections(vhost, node_id), lambda c: len(c) == 2)


def _consumers(vhost: str, queue: str) -> list[dict[str, Any]]:
    """Consumers of ``queue`` as the management API lists them (it lags a little)."""
    listed = rabbit.mgmt("GET", f"/consumers/{rabbit.quote(vhost)}")
    return [c for c in listed if c["queue"]["name"] == queue]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        ("first", [0, 1, 2, 3, 4]),
        ("offset:2", [2, 3, 4]),
        ("offset=3", [3, 4]),
        ("offset:0", [0, 1, 2, 3, 4]),
    ],
)
async def test_read_from_an_offset(
    node: tuple[GatewayProcess, str], offset: str, expected: list[int]
) -> None:
    gateway, vhost = node
    stream = await _stream(vhost)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": offset})
        frames = await _messages(peer, len(expected), seen)
        assert _offsets(frames) == expected
        assert [f.body for f in frames] == [f"m{n}" for n in expected]
        assert all(f.headers["destination"] == f"/queue/{stream}" for f in frames)
        await peer.send_frame("ACK", {"id": frames[-1].headers["ack"], "receipt": "acked"})
        await peer.receipt("acked")
        await _bye(peer)


async def test_last_starts_at_the_last_chunk(node: tuple[GatewayProcess, str]) -> None:
    gateway, vhost = node
    stream = await _stream(vhost)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": "last"})
        first = (await _messages(peer, 1, seen))[0]
        start = int(first.headers["x-stream-offset"])
        frames = await _messages(peer, COUNT - start, [first])
        assert _offsets(frames) == list(range(start, COUNT))  # a suffix, ending at the last
        await _bye(peer)


@pytest.mark.parametrize("offset", ["next", None, "timestamp:future"])
async def test_next_reads_only_what_comes_later(
    node: tuple[GatewayProcess, str], offset: str | None
) -> None:
    gateway, vhost = node
    stream = await _stream(vhost)
    headers = {} if offset is None else {"x-stream-offset": offset}
    if offset == "timestamp:future":
        headers["x-stream-offset"] = f"timestamp:{int(time.time()) + 3600}"
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **headers)
        await _publish(vhost, stream, "later")
        (frame,) = await _messages(peer, 1, seen)
        assert (frame.body, frame.headers["x-stream-offset"]) == ("later", str(COUNT))
        await _bye(peer)


async def test_a_timestamp_in_the_past_reads_everything(node: tuple[GatewayProcess, str]) -> None:
    gateway, vhost = node
    stream = await _stream(vhost)
    past = f"timestamp:{int(time.time()) - 3600}"
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": past})
        assert _offsets(await _messages(peer, COUNT, seen)) == list(range(COUNT))
        await _bye(peer)


async def test_a_stream_declared_through_queue_with_prefetch(
    node: tuple[GatewayProcess, str],
) -> None:
    gateway, vhost = node
    name = unique("declared")
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(
            peer,
            f"/queue/{name}",
            ack="client-individual",
            **{"x-queue-type": "stream", "x-stream-offset": "first", "prefetch-count": "2"},
        )
        assert seen == []
        for i in range(4):
            await peer.send_frame("SEND", {"destination": f"/queue/{name}", "receipt": f"r{i}"})
            seen += [f for f in await peer.receipt(f"r{i}") if f.command == "MESSAGE"]
        assert rabbit.queue_info(vhost, name)["type"] == "stream"
        (consumer,) = await eventually(lambda: _consumers(vhost, name), lambda c: len(c) == 1)
        assert consumer["prefetch_count"] == 2
        frames = await _messages(peer, 2, seen)
        assert _offsets(frames) == [0, 1]
        for frame in frames:  # each ACK lets one more through
            await peer.send_frame("ACK", {"id": frame.headers["ack"]})
        assert _offsets(await _messages(peer, 2, [])) == [2, 3]
        await _bye(peer)


async def test_auto_ack_on_a_stream(node: tuple[GatewayProcess, str]) -> None:
    """RabbitMQ refuses automatic acknowledgement on a stream (540); the relay consumes
    with acks and acks for the client, so ``ack:auto`` works."""
    gateway, vhost = node
    stream = await _stream(vhost)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(
            peer, f"/amq/queue/{stream}", ack="auto", **{"x-stream-offset": "first"}
        )
        frames = await _messages(peer, COUNT, seen)
        assert _offsets(frames) == list(range(COUNT))
        assert all("ack" not in f.headers for f in frames)
        await _bye(peer)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_nack_is_refused_and_the_node_stays_connected(
    node: tuple[GatewayProcess, str], version: str
) -> None:
    gateway, vhost = node
    stream = await _stream(vhost)
    before = await _two_connections(vhost, gateway.node_id)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer, version)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": "first"})
        (frame, *_) = await _messages(peer, 1, seen)
        names = (
            {"id": frame.headers["ack"]}
            if version == "1.2"
            else {"message-id": frame.headers["message-id"], "subscription": "s"}
        )
        await peer.send_frame("NACK", {**names, "receipt": "nacked"})
        error = await peer.expect_error()
    assert error.headers["message"] == "not_implemented"
    assert error.body.startswith("NOT_IMPLEMENTED - basic.nack and basic.reject")
    assert error.headers.get("receipt-id") == "nacked"
    await asyncio.sleep(0.2)
    assert node_connections(vhost, gateway.node_id) == before
    async with StompPeer.tcp(gateway.stomp_port) as peer:  # and it still serves
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": "first"})
        assert len(await _messages(peer, COUNT, seen)) == COUNT
        await _bye(peer)


async def test_disconnect_holding_unacked_stream_messages(
    node: tuple[GatewayProcess, str],
) -> None:
    """The issue's case: the node used to nack them, and the broker closed its consume
    connection, with every session's consumers on it."""
    gateway, vhost = node
    stream = await _stream(vhost)
    before = await _two_connections(vhost, gateway.node_id)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        seen = await _subscribe(peer, f"/amq/queue/{stream}", **{"x-stream-offset": "first"})
        await _messages(peer, COUNT, seen)  # none acked
        await eventually(lambda: _consumers(vhost, stream), lambda c: len(c) == 1)
    # The node detached the client: its consumer is gone ...
    await eventually(lambda: _consumers(vhost, stream), lambda c: c == [])
    # ... and its connections are the same ones (not lost and opened again).
    assert node_connections(vhost, gateway.node_id) == before
    assert "lost RabbitMQ" not in gateway.logs()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-stream-offset": "bogus"}, "Invalid header"),
        ({"x-stream-offset": "offset:1.5"}, "Invalid header"),
        ({"x-queue-type": "stream", "prefetch-count": "0"}, "precondition_failed"),
        ({"x-queue-type": "stream", "x-max-age": "forever"}, "precondition_failed"),
    ],
)
async def test_stream_subscriptions_refused_before_the_broker(
    node: tuple[GatewayProcess, str], headers: dict[str, str], message: str
) -> None:
    gateway, vhost = node
    before = await _two_connections(vhost, gateway.node_id)
    async with StompPeer.tcp(gateway.stomp_port) as peer:
        await connect(peer)
        frame = {"id": "s", "destination": f"/queue/{unique('s')}", "ack": "client"}
        await peer.send_frame("SUBSCRIBE", {**frame, **headers, "receipt": "subscribed"})
        error = await peer.expect_error()
    assert error.headers["message"] == message
    assert error.body
    assert node_connections(vhost, gateway.node_id) == before
