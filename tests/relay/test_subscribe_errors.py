"""SUBSCRIBE refusals are clear and hurt nobody else."""

from __future__ import annotations

import asyncio
import contextlib

import aiormq
import pytest

from gateway.relay import DestinationError, PublishError, SubscribeError
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink
from tests.support import rabbit


async def test_broker_refusals_do_not_break_other_sessions(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    fan = RecordingSink("fan")
    worker = RecordingSink("worker")
    await relay.subscribe(fan, "t", "/topic/room.1", "auto", {})
    await relay.subscribe(worker, "q", "/queue/jobs", "auto", {})

    bad = RecordingSink("bad")
    with pytest.raises(SubscribeError) as info:
        await relay.subscribe(bad, "1", "/amq/queue/missing", "auto", {})
    assert str(info.value).startswith("NOT_FOUND - no queue 'missing' in vhost ")
    assert info.value.message == "not_found"  # as RabbitMQ's plugin names it
    with pytest.raises(SubscribeError) as info:
        await relay.subscribe(bad, "2", "/queue/jobs", "auto", {"x-max-length": "10"})
    assert "PRECONDITION_FAILED" in str(info.value)
    assert info.value.message == "precondition_failed"
    assert "x-max-length" in str(info.value)
    with pytest.raises(SubscribeError) as info:
        await relay.subscribe(bad, "3", "/exchange/nope/k", "auto", {})
    assert str(info.value).startswith("NOT_FOUND - no exchange 'nope' in vhost ")
    assert info.value.message == "not_found"
    with pytest.raises(SubscribeError, match="x-queue-type' must be one of"):
        await relay.subscribe(bad, "4", "/queue/q4", "auto", {"x-queue-type": "fast"})

    # Everyone else still gets their messages.
    sender = RecordingSink("sender")
    await relay.publish(sender, "/topic/room.1", [], b"t")
    await relay.publish(sender, "/queue/jobs", [], b"q")
    await fan.wait_for(1)
    await worker.wait_for(1)
    # And the refused ids can be used again.
    await relay.subscribe(bad, "1", "/queue/jobs", "auto", {})


async def test_request_errors(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    await relay.subscribe(sink, "dup", "/topic/a", "auto", {})
    with pytest.raises(
        SubscribeError, match=r"A subscription identified by 'dup' already exists\."
    ):
        await relay.subscribe(sink, "dup", "/topic/b", "auto", {})
    with pytest.raises(SubscribeError, match="ack must be auto, client or client-individual"):
        await relay.subscribe(sink, "x", "/topic/b", "sometimes", {})
    with pytest.raises(SubscribeError, match="prefetch-count must be an integer"):
        await relay.subscribe(sink, "x", "/queue/b", "client", {"prefetch-count": "-1"})
    with pytest.raises(DestinationError, match="only be used in a reply-to"):
        await relay.subscribe(sink, "x", "/temp-queue/r", "auto", {})
    with pytest.raises(DestinationError, match="must be whole words"):
        await relay.subscribe(sink, "x", "/topic/a*", "auto", {})


async def test_exchange_subscription(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    sub = await relay.subscribe(sink, "x", "/exchange/amq.direct/jobs", "auto", {})
    assert sub.queue is not None
    assert sub.queue.startswith("stompgate.sub.")
    await relay.publish(sink, "/exchange/amq.direct/jobs", [], b"direct")
    (delivery,) = await sink.wait_for(1)
    assert delivery.destination == "/exchange/amq.direct/jobs"
    # /exchange/amq.topic/<key> is served by the node fan-out, shown as /topic/<key>.
    fan = await relay.subscribe(sink, "y", "/exchange/amq.topic/t.1", "auto", {})
    assert fan.queue is None
    await relay.publish(sink, "/topic/t.1", [], b"topic")
    await sink.wait_for(2)
    assert sink.deliveries[1].destination == "/topic/t.1"
    assert sink.deliveries[1].subscription == "y"


async def test_consumer_channel_error_restores_its_consumers(
    make_relay: RelayFactory,
) -> None:
    """A channel-level error on a client's channel: its consumers come back; the other
    client's channel is untouched."""
    relay = await make_relay()
    a, b = RecordingSink("a"), RecordingSink("b")
    await relay.subscribe(a, "s", "/queue/ra", "client", {})
    await relay.subscribe(b, "s", "/queue/rb", "client", {})
    await relay.publish(a, "/queue/ra", [], b"before")
    await a.wait_for(1)
    # Provoke the broker into closing a's channel (acking an unknown tag).
    pooled = relay._pool.channel_of("a")
    assert pooled is not None
    await pooled.channel.basic_ack(999_999)
    with contextlib.suppress(aiormq.exceptions.ChannelPreconditionFailed):
        await pooled.channel.closing
    # The unacked "before" is redelivered on the restored consumer, and new messages flow.
    await a.wait_for(2, within=5)
    assert a.deliveries[1].body == b"before"
    assert a.deliveries[1].header("redelivered") == "true"
    await relay.publish(b, "/queue/rb", [], b"after")
    await b.wait_for(1)


async def test_deleted_queue_cancels_the_consumer_quietly(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    gone, stays = RecordingSink("gone"), RecordingSink("stays")
    sub = await relay.subscribe(gone, "s", "/queue/doomed", "auto", {})
    await relay.subscribe(stays, "s", "/queue/alive", "auto", {})
    rabbit.mgmt("DELETE", f"/queues/{rabbit.quote(fresh_vhost)}/doomed")
    for _ in range(50):
        if not sub.established:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    assert not sub.established  # type: ignore[attr-defined]
    await relay.publish(stays, "/queue/alive", [], b"fine")
    await stays.wait_for(1)
    await sub.cancel()


async def test_exchange_deleted_after_use(make_relay: RelayFactory, fresh_vhost: str) -> None:
    relay = await make_relay(publish_channels=1)
    rabbit.mgmt("PUT", f"/exchanges/{rabbit.quote(fresh_vhost)}/temp-ex", {"type": "fanout"})
    sink = RecordingSink("s")
    await relay.publish(sink, "/exchange/temp-ex", [], b"ok")
    rabbit.mgmt("DELETE", f"/exchanges/{rabbit.quote(fresh_vhost)}/temp-ex")
    with pytest.raises(PublishError, match="NOT_FOUND"):
        await relay.publish(sink, "/exchange/temp-ex", [], b"gone")
    with pytest.raises(PublishError, match="NOT_FOUND - no exchange 'temp-ex' in vhost "):
        await relay.publish(sink, "/exchange/temp-ex", [], b"gone")
    await relay.publish(sink, "/topic/still.works", [], b"yes")
