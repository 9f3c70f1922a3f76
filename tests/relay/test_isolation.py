"""One client's request never closes a connection or channel the node shares (issue 13.2).

Each client's consumers run on a channel of its own; what the broker would answer with a
connection error, or with a channel error on a shared publish channel, is refused before it
is sent; a publish to a named exchange has that exchange's channel to itself. Every test
also checks that the node's AMQP connections stayed up (``on_connection_lost`` never ran,
the same connections are open).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import aiormq
import pytest

from gateway.relay import PublishError, Relay
from gateway.relay.errors import BrokerRuleError
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, connections, eventually, queue_depth, settle


class Losses:
    """Records ``on_connection_lost`` calls (there must be none)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


def names(vhost: str) -> list[str]:
    """Names of the AMQP connections open on ``vhost`` (management API)."""
    found = []
    for conn in connections(vhost):
        properties = conn.get("client_properties") or {}
        found.append(str(properties.get("connection_name", conn["name"])))
    return sorted(found)


async def node_connections(vhost: str, relay: Relay) -> list[str]:
    node = relay.settings.node_id
    expected = sorted([f"stompgate {node} consume", f"stompgate {node} wire"])
    return await eventually(
        lambda: [n for n in names(vhost) if n.startswith(f"stompgate {node} ")],
        lambda found: found == expected,
    )


async def test_each_client_has_its_own_channel_while_it_consumes(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    pool = relay._pool
    a, b = RecordingSink("a"), RecordingSink("b")
    await relay.subscribe(a, "t", "/topic/x", "auto", {})  # served by the node's fan-out queue
    assert pool.channel_of("a") is None
    first = await relay.subscribe(a, "q1", "/queue/ca", "client", {})
    second = await relay.subscribe(a, "q2", "/queue/cb", "auto", {})
    await relay.subscribe(b, "q", "/queue/cc", "client-individual", {})
    mine, theirs = pool.channel_of("a"), pool.channel_of("b")
    assert mine is not None
    assert theirs is not None
    assert mine is not theirs
    assert {id(s) for s in mine.subs.values()} == {id(first), id(second)}
    await first.cancel()
    assert pool.channel_of("a") is mine
    await second.cancel()  # its last consumer: the channel closes
    assert pool.channel_of("a") is None
    assert not mine.alive
    await relay.detach(b)
    assert pool.channel_of("b") is None
    assert not theirs.alive


async def test_a_channel_error_reaches_one_client(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    losses = Losses()
    relay = await make_relay(on_connection_lost=losses)
    before = await node_connections(fresh_vhost, relay)
    a, b = RecordingSink("a"), RecordingSink("b")
    await relay.subscribe(a, "s", "/queue/ia", "client", {})
    await relay.subscribe(b, "s", "/queue/ib", "client", {})
    mine, theirs = relay._pool.channel_of("a"), relay._pool.channel_of("b")
    assert mine is not None
    assert theirs is not None
    await mine.channel.basic_ack(999_999)  # the broker closes a's channel (406)
    with contextlib.suppress(aiormq.exceptions.ChannelPreconditionFailed):
        await mine.channel.closing
    await relay.publish(b, "/queue/ib", [], b"for b")
    (delivery,) = await b.wait_for(1)
    assert relay._pool.channel_of("b") is theirs
    assert theirs.alive
    assert delivery.body == b"for b"
    # a's consumer is back, on a new channel of its own.
    await relay.publish(b, "/queue/ia", [], b"for a")
    await a.wait_for(1)
    assert relay._pool.channel_of("a") not in (None, mine)
    assert await node_connections(fresh_vhost, relay) == before
    assert losses.reasons == []


async def test_auto_and_client_subscriptions_of_one_client_settle_apart(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    """One channel carries auto-acked and client-acked consumers: the relay's cumulative
    auto acks never settle a client-ack message, and a client's cumulative ACK settles
    only its own subscription's messages (an ack of a settled tag would close the
    channel)."""
    relay = await make_relay()
    sink, sender = RecordingSink("c"), RecordingSink("sender")
    await relay.subscribe(sink, "held", "/queue/mh", "client", {})
    await relay.subscribe(sink, "auto", "/queue/ma", "auto", {})
    other = await relay.subscribe(sink, "other", "/queue/mo", "client", {})
    for queue, count in (("mh", 2), ("ma", 3), ("mo", 2), ("ma", 2)):
        for i in range(count):
            await relay.publish(sender, f"/queue/{queue}", [], f"{queue}{i}".encode())
    await sink.wait_for(9)
    last_other = [d for d in sink.deliveries if d.subscription == "other"][-1]
    await other.ack(last_other.ack_id or "")
    await settle()
    channel = relay._pool.channel_of("c")
    assert channel is not None
    assert channel.alive
    assert sorted(channel.unacked) == sorted(
        int((d.ack_id or "").split(".")[1]) for d in sink.deliveries if d.subscription == "held"
    )
    await relay.detach(sink)
    assert await queue_depth(fresh_vhost, "mh") == 2  # never acked: requeued
    assert await queue_depth(fresh_vhost, "ma") == 0
    assert await queue_depth(fresh_vhost, "mo") == 0


async def test_another_consume_connection_past_the_channel_limit(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay(node_id="cap", client_channels_per_connection=2)
    sinks = [RecordingSink(f"c{i}") for i in range(5)]
    for i, sink in enumerate(sinks):
        await relay.subscribe(sink, "q", f"/queue/cap{i}", "auto", {})
        # a private queue (exclusive to its connection) on whichever connection it lands
        await relay.subscribe(sink, "t", f"/topic/cap.{i}", "client", {})
    expected = [f"stompgate cap consume{suffix}" for suffix in ("", "-2", "-3")]
    await eventually(
        lambda: names(fresh_vhost), lambda found: set(expected) <= set(found), within=15
    )
    assert len(relay._pool.connections) == 3
    sender = RecordingSink("sender")
    for i, sink in enumerate(sinks):
        await relay.publish(sender, f"/queue/cap{i}", [], b"q")
        await relay.publish(sender, f"/topic/cap.{i}", [], b"t")
        await sink.wait_for(2)
    for sink in sinks:
        await relay.detach(sink)
    await eventually(
        lambda: names(fresh_vhost),
        lambda found: not {"stompgate cap consume-2", "stompgate cap consume-3"} & set(found),
        within=15,
    )
    assert len(relay._pool.connections) == 1


# -- streams ----------------------------------------------------------------------------------


async def test_stream_nack_is_refused_and_a_disconnect_leaves_the_stream_alone(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    """The issue's case: a client disconnects holding an unacked stream message; the node
    used to nack it, and RabbitMQ closed the whole consume connection (540)."""
    losses = Losses()
    relay = await make_relay(on_connection_lost=losses)
    before = await node_connections(fresh_vhost, relay)
    canary, sender = RecordingSink("canary"), RecordingSink("sender")
    await relay.subscribe(canary, "s", "/queue/canary", "client-individual", {})
    reader = RecordingSink("reader")
    stream = {"x-queue-type": "stream", "x-stream-offset": "first", "prefetch-count": "10"}
    sub = await relay.subscribe(reader, "s", "/queue/events", "client", stream)
    for i in range(3):
        await relay.publish(sender, "/queue/events", [], f"e{i}".encode())
    await reader.wait_for(3)
    assert [d.header("x-stream-offset") for d in reader.deliveries] == ["0", "1", "2"]
    with pytest.raises(BrokerRuleError) as info:
        await sub.nack(reader.deliveries[0].ack_id or "", requeue=True)
    assert info.value.message == "not_implemented"
    await sub.ack(reader.deliveries[0].ack_id or "")  # an ACK is fine
    await relay.detach(reader)  # two messages still unacked: not nacked
    await settle()
    await relay.publish(sender, "/queue/canary", [], b"alive")
    (delivery,) = await canary.wait_for(1)
    assert delivery.body == b"alive"
    assert await node_connections(fresh_vhost, relay) == before
    assert losses.reasons == []


async def test_a_stream_found_out_from_its_deliveries(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    """``/amq/queue/`` names an existing queue of unknown type: the first delivery (with
    its integer x-stream-offset) tells the relay it is a stream."""
    losses = Losses()
    relay = await make_relay(on_connection_lost=losses)
    connection = await aiormq.connect(relay.settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
        await channel.basic_publish(b"entry", routing_key="log")
    finally:
        await connection.close()
    reader = RecordingSink("reader")
    sub = await relay.subscribe(
        reader, "s", "/amq/queue/log", "client-individual", {"x-stream-offset": "first"}
    )
    (delivery,) = await reader.wait_for(1)
    assert delivery.header("x-stream-offset") == "0"
    with pytest.raises(BrokerRuleError):
        await sub.nack(delivery.ack_id or "", requeue=False)
    auto = RecordingSink("auto")  # ack:auto on a stream: the relay acks; no 540
    await relay.subscribe(auto, "s", "/amq/queue/log", "auto", {"x-stream-offset": "first"})
    await auto.wait_for(1)
    await relay.detach(reader)
    await relay.detach(auto)
    assert relay.ready
    assert losses.reasons == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-queue-type": "stream", "x-max-age": "bogus"}, "queue_argument"),
        ({"x-queue-master-locator": "balanced"}, "queue_argument"),
        ({"x-stream-offset": "offset:soon"}, "stream_offset"),
        ({"x-queue-type": "stream", "prefetch-count": "0"}, "stream_prefetch"),
    ],
)
async def test_subscriptions_that_would_be_a_connection_error(
    make_relay: RelayFactory, fresh_vhost: str, headers: dict[str, str], reason: str
) -> None:
    losses = Losses()
    relay = await make_relay(on_connection_lost=losses)
    sink = RecordingSink("s")
    with pytest.raises(BrokerRuleError) as info:
        await relay.subscribe(sink, "s", "/queue/refused", "client", headers)
    assert info.value.reason == reason
    await relay.subscribe(sink, "s", "/queue/fine", "client", {})  # the id is free again
    assert relay.ready
    assert losses.reasons == []


# -- publishing -------------------------------------------------------------------------------


BIG_HEADERS = [(f"h{i}", "x" * 8000) for i in range(20)]


@pytest.mark.parametrize(
    ("headers", "message", "reason"),
    [
        ([("expiration", "99999999999")], "precondition_failed", "expiration"),
        ([("CC", "elsewhere")], "precondition_failed", "routing_header"),
        ([("BCC", "elsewhere")], "precondition_failed", "routing_header"),
        (BIG_HEADERS, "Headers too large", "headers_size"),
    ],
)
@pytest.mark.parametrize("destination", ["/topic/iso", "/queue/iso", "/exchange/amq.direct/k"])
@pytest.mark.parametrize("pipelined", [False, True])
async def test_publishes_the_broker_would_refuse_on_a_shared_channel(
    make_relay: RelayFactory,
    destination: str,
    pipelined: bool,
    headers: Sequence[tuple[str, str]],
    message: str,
    reason: str,
) -> None:
    losses = Losses()
    relay = await make_relay(on_connection_lost=losses)
    sink = RecordingSink("s")
    await relay.subscribe(sink, "t", "/topic/iso", "auto", {})
    outcomes: list[PublishError | None] = []
    confirm: Callable[[PublishError | None, float], None] | None = (
        (lambda error, _: outcomes.append(error)) if pipelined else None
    )
    with pytest.raises(BrokerRuleError) as info:
        await relay.publish(sink, destination, headers, b"x", on_confirm=confirm)
    assert (info.value.message, info.value.reason) == (message, reason)
    assert outcomes == []
    await relay.publish(sink, "/topic/iso", [], b"still fine")
    await sink.wait_for(1)
    assert relay.ready
    assert losses.reasons == []


async def test_a_body_over_the_maximum_message_size(make_relay: RelayFactory) -> None:
    relay = await make_relay(max_message_size=1000)
    sink = RecordingSink("s")
    await relay.publish(sink, "/queue/sized", [], b"x" * 1000)
    with pytest.raises(BrokerRuleError) as info:
        await relay.publish(sink, "/queue/sized", [], b"x" * 1001)
    assert (info.value.message, info.value.reason) == ("precondition_failed", "message_size")


async def test_a_refused_exchange_publish_fails_no_other_publish(make_relay: RelayFactory) -> None:
    """Publishing to an internal exchange is refused by closing the channel (403). It has
    a channel of its own, so another session's pipelined SENDs, in flight on the one lane,
    are all confirmed."""
    losses = Losses()
    relay = await make_relay(publish_channels=1, on_connection_lost=losses)
    bystander, hostile = RecordingSink("bystander"), RecordingSink("hostile")
    await relay.subscribe(bystander, "q", "/queue/busy", "auto", {})
    outcomes: list[PublishError | None] = []
    for i in range(50):
        await relay.publish(
            bystander,
            "/queue/busy",
            [],
            f"{i}".encode(),
            on_confirm=lambda error, _: outcomes.append(error),
        )
        if i == 10:
            with pytest.raises(PublishError, match="ACCESS_REFUSED"):
                await relay.publish(hostile, "/exchange/amq.rabbitmq.trace/k", [], b"x")
    await bystander.wait_for(50)
    await eventually(lambda: len(outcomes), lambda n: n == 50)
    assert outcomes == [None] * 50
    assert sorted(int(d.body) for d in bystander.deliveries) == list(range(50))
    await asyncio.sleep(0)
    assert losses.reasons == []
