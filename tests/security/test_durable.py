"""Durable subscriptions as RabbitMQ's STOMP plugin has them (issue 14, point 2).

A node in ``--auth dev`` and RabbitMQ's own plugin (port 61614) on the same vhost, driven with
raw frames at each STOMP version where the behaviour could differ:

* the RECEIPT of a SUBSCRIBE comes before any MESSAGE of its subscription, also when its
  queue held messages while its owner was away;
* UNSUBSCRIBE with ``durable:true`` (or ``persistent:true``) cancels it: its queue goes, and
  what is sent afterwards is not delivered on a later SUBSCRIBE;
* a durable SUBSCRIBE without ``id`` is ``ERROR Missing Header`` (and the node closes);
* two sessions that open the same durable subscription share its queue and together receive
  every message once, also when one joins while messages flow.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from gateway.auth.queue_policy import durable_queue_name
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, unique

VERSIONS = ("1.0", "1.1", "1.2")
DURABLE = {"durable": "true", "auto-delete": "false"}


@dataclass(frozen=True)
class Broker:
    """Where a peer connects: the node under test, or RabbitMQ's plugin."""

    name: str
    port: int
    host: str  # the CONNECT host header
    vhost: str  # where its queues are


@pytest.fixture(scope="module")
def node(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(amqp_url=amqp_url, node_id="durable-dev")
    gateway.start(tmp_path_factory.mktemp("durable-logs"))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def ours(node: GatewayProcess, rabbit_vhost: str) -> Broker:
    return Broker("gateway", node.stomp_port, "/", rabbit_vhost)


@pytest.fixture(scope="module")
def theirs(rabbit_vhost: str) -> Broker:
    return Broker("rabbitmq", rabbit.RABBIT_STOMP_PORT, rabbit_vhost, rabbit_vhost)


@pytest.fixture(scope="module", params=["gateway", "rabbitmq"])
def broker(request: pytest.FixtureRequest, ours: Broker, theirs: Broker) -> Broker:
    return ours if request.param == "gateway" else theirs


@contextlib.asynccontextmanager
async def session(broker: Broker, version: str = "1.2") -> AsyncIterator[StompPeer]:
    async with StompPeer.tcp(broker.port) as peer:
        await peer.send_frame(
            "CONNECT",
            [
                ("accept-version", version),
                ("host", broker.host),
                ("login", "guest"),
                ("passcode", "guest"),
            ],
        )
        connected = await peer.frame()
        assert connected.command == "CONNECTED", connected
        yield peer


async def subscribe(peer: StompPeer, topic: str, sub_id: str, **headers: str) -> list[Frame]:
    """SUBSCRIBE with a receipt; the frames up to and including the RECEIPT."""
    frame = {"id": sub_id, "destination": topic, "receipt": f"sub-{sub_id}", **headers}
    await peer.send_frame("SUBSCRIBE", frame)
    return await peer.receipt(f"sub-{sub_id}")


async def publish(broker: Broker, topic: str, bodies: list[str]) -> None:
    async with session(broker) as peer:
        for n, body in enumerate(bodies):
            await peer.send_frame("SEND", {"destination": topic, "receipt": f"s{n}"}, body)
            await peer.receipt(f"s{n}")


async def messages(peer: StompPeer, count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        frame = await peer.frame()
        assert frame.command == "MESSAGE", frame
        found.append(frame.body)
    return found


async def quiet(peer: StompPeer, seconds: float = 0.7) -> list[Frame]:
    """Whatever arrives within ``seconds``."""
    found: list[Frame] = []
    with contextlib.suppress(TimeoutError):
        while True:
            found.append(await peer.frame(seconds))
    return found


# -- the RECEIPT comes first --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_receipt_comes_before_what_the_queue_held(broker: Broker, version: str) -> None:
    topic = f"/topic/{unique('held')}"
    async with session(broker, version) as peer:
        await subscribe(peer, topic, "away", **DURABLE)
        await peer.send_frame("DISCONNECT", {"receipt": "bye"})
        await peer.receipt("bye")
    await publish(broker, topic, [f"m{n}" for n in range(20)])
    async with session(broker, version) as peer:
        seen = await subscribe(peer, topic, "away", **DURABLE)
        assert [f.command for f in seen] == ["RECEIPT"], broker.name
        assert await messages(peer, 20) == [f"m{n}" for n in range(20)]
        await peer.send_frame("UNSUBSCRIBE", {"id": "away", "durable": "true", "receipt": "u"})
        await peer.receipt("u")


# -- UNSUBSCRIBE durable:true ---------------------------------------------------------------


@pytest.mark.parametrize("header", ["durable", "persistent"])
async def test_unsubscribe_with_durable_cancels_the_durable_subscription(
    broker: Broker, header: str
) -> None:
    topic = f"/topic/{unique('gone')}"
    async with session(broker) as peer:
        await subscribe(peer, topic, "d", **{header: "true", "auto-delete": "false"})
        await peer.send_frame("UNSUBSCRIBE", {"id": "d", header: "true", "receipt": "u"})
        await peer.receipt("u")
    if broker.name == "gateway":
        queue = durable_queue_name("guest", "d", topic)
        assert queue not in {q["name"] for q in rabbit.list_queues(broker.vhost)}
    await publish(broker, topic, ["after"])
    async with session(broker) as peer:
        seen = await subscribe(peer, topic, "d", **{header: "true", "auto-delete": "false"})
        assert [f.command for f in seen + await quiet(peer)] == ["RECEIPT"], broker.name
        await peer.send_frame("UNSUBSCRIBE", {"id": "d", header: "true", "receipt": "u"})
        await peer.receipt("u")


async def test_a_plain_unsubscribe_keeps_the_queue(ours: Broker) -> None:
    topic = f"/topic/{unique('kept')}"
    async with session(ours) as peer:
        await subscribe(peer, topic, "d", **DURABLE)
        await peer.send_frame("UNSUBSCRIBE", {"id": "d", "receipt": "u"})
        await peer.receipt("u")
    await publish(ours, topic, ["kept"])
    async with session(ours) as peer:
        await subscribe(peer, topic, "d", **DURABLE)
        assert await messages(peer, 1) == ["kept"]
        await peer.send_frame("UNSUBSCRIBE", {"id": "d", "durable": "true", "receipt": "u"})
        await peer.receipt("u")


# -- Missing Header -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("header", ["durable", "persistent"])
async def test_a_durable_subscribe_needs_an_id(broker: Broker, version: str, header: str) -> None:
    async with session(broker, version) as peer:
        frame = {"destination": f"/topic/{unique('noid')}", header: "true", "receipt": "r"}
        await peer.send_frame("SUBSCRIBE", {**frame, "auto-delete": "false"})
        error = await peer.frame()
        assert error.command == "ERROR", error
        assert (error.message, error.body) == (
            "Missing Header",
            "Header 'id' is required for durable subscriptions",
        )
        if broker.name == "gateway":  # RabbitMQ's plugin leaves the connection open
            await peer.expect_closed()


# -- two sessions, one durable subscription ----------------------------------------------------


@pytest.mark.parametrize("ack", ["auto", "client-individual"])
async def test_two_sessions_share_a_durable_subscription(broker: Broker, ack: str) -> None:
    """Together they get every message once, the second joining while messages flow; each
    counts only what its subscription delivers after its RECEIPT, as a client that starts
    listening when the RECEIPT arrives does."""
    topic = f"/topic/{unique('shared')}"
    bodies = [f"m{n}" for n in range(100)]
    got: collections.Counter[str] = collections.Counter()
    early: list[Frame] = []
    async with session(broker) as first, session(broker) as second:
        await subscribe(first, topic, "shared", ack=ack, **DURABLE)
        sending = asyncio.create_task(publish(broker, topic, bodies))
        await asyncio.sleep(0.01)
        joined = await subscribe(second, topic, "shared", ack=ack, **DURABLE)
        early = [f for f in joined if f.command == "MESSAGE"]
        await sending
        for peer in (first, second):
            for frame in await quiet(peer):
                assert frame.command == "MESSAGE", frame
                got[frame.body] += 1
                if ack != "auto":
                    await peer.send_frame("ACK", {"id": frame.headers["ack"]})
        await first.send_frame("UNSUBSCRIBE", {"id": "shared", "durable": "true", "receipt": "u"})
        await first.receipt("u")
    assert early == [], broker.name
    assert sorted(got) == sorted(bodies), broker.name
    assert set(got.values()) == {1}, broker.name
