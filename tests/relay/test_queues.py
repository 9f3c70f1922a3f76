"""Own consumers: /queue/ competing consumers, prefetch, ACK/NACK, redelivery on detach."""

from __future__ import annotations

import asyncio

import pytest

from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, queue_depth, settle


async def test_competing_consumers_each_message_once(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    a, b = RecordingSink("a"), RecordingSink("b")
    await relay.subscribe(a, "s", "/queue/work", "auto", {})
    await relay.subscribe(b, "s", "/queue/work", "auto", {})
    sender = RecordingSink("sender")
    for i in range(20):
        await relay.publish(sender, "/queue/work", [], f"{i}".encode())
    deadline = asyncio.get_running_loop().time() + 5
    while len(a.deliveries) + len(b.deliveries) < 20:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await settle()
    got = sorted(int(body) for body in a.bodies() + b.bodies())
    assert got == list(range(20))
    assert a.deliveries  # round-robin between the two
    assert b.deliveries
    assert a.deliveries[0].destination == "/queue/work"
    assert a.deliveries[0].ack_id is None


async def test_send_to_queue_declares_it_durable(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    sender = RecordingSink("sender")
    await relay.publish(sender, "/queue/fresh", [], b"kept")
    assert await queue_depth(fresh_vhost, "fresh") == 1
    sink = RecordingSink("late")
    await relay.subscribe(sink, "s", "/queue/fresh", "auto", {})
    (delivery,) = await sink.wait_for(1)
    assert delivery.body == b"kept"


async def test_prefetch_and_cumulative_client_ack(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    sink = RecordingSink("c")
    sub = await relay.subscribe(sink, "s", "/queue/pf", "client", {"prefetch-count": "3"})
    sender = RecordingSink("sender")
    for i in range(10):
        await relay.publish(sender, "/queue/pf", [], f"{i}".encode())
    await sink.wait_for(3)
    await settle()
    assert sink.bodies() == [b"0", b"1", b"2"]
    assert all(d.ack_id is not None and sub.owns(d.ack_id) for d in sink.deliveries)
    # ACK of the third acks all three (client mode is cumulative).
    last = sink.deliveries[2].ack_id
    assert last is not None
    await sub.ack(last)
    await sink.wait_for(6)
    await settle()
    assert sink.bodies() == [str(i).encode() for i in range(6)]
    assert not sub.owns(sink.deliveries[0].ack_id or "")
    await sub.ack(sink.deliveries[5].ack_id or "")
    await sink.wait_for(9)
    await sub.ack(sink.deliveries[8].ack_id or "")
    await sink.wait_for(10)
    await sub.ack(sink.deliveries[9].ack_id or "")
    await settle()
    await sub.cancel()
    assert await queue_depth(fresh_vhost, "pf") == 0


async def test_client_individual_and_redelivery_after_detach(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    first = RecordingSink("first")
    sub = await relay.subscribe(
        first, "s", "/queue/ci", "client-individual", {"prefetch-count": "2"}
    )
    sender = RecordingSink("sender")
    for i in range(3):
        await relay.publish(sender, "/queue/ci", [], f"{i}".encode())
    await first.wait_for(2)
    # Ack only the second: the first stays unacked, one more slot opens.
    await sub.ack(first.deliveries[1].ack_id or "")
    await first.wait_for(3)
    await settle()
    assert first.bodies() == [b"0", b"1", b"2"]
    await relay.detach(first)
    assert sub.closed
    # 0 and 2 were never acked: they are back in the queue, redelivered.
    assert await queue_depth(fresh_vhost, "ci") == 2
    second = RecordingSink("second")
    await relay.subscribe(second, "s", "/queue/ci", "client-individual", {})
    await second.wait_for(2)
    assert sorted(second.bodies()) == [b"0", b"2"]
    assert all(d.header("redelivered") == "true" for d in second.deliveries)


@pytest.mark.parametrize("requeue", [True, False])
async def test_nack(make_relay: RelayFactory, fresh_vhost: str, requeue: bool) -> None:
    relay = await make_relay()
    sink = RecordingSink("n")
    sub = await relay.subscribe(sink, "s", "/queue/nk", "client-individual", {})
    await relay.publish(sink, "/queue/nk", [], b"m")
    (delivery,) = await sink.wait_for(1)
    assert delivery.header("redelivered") == "false"
    await sub.nack(delivery.ack_id or "", requeue=requeue)
    if requeue:
        await sink.wait_for(2)
        assert sink.deliveries[1].body == b"m"
        assert sink.deliveries[1].header("redelivered") == "true"
        await sub.ack(sink.deliveries[1].ack_id or "")
    else:
        await settle()
        assert len(sink.deliveries) == 1
    await settle()
    await sub.cancel()
    assert await queue_depth(fresh_vhost, "nk") == 0


async def test_cumulative_ack_never_settles_another_session(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    """A's cumulative ACK leaves B's messages alone."""
    relay = await make_relay()
    a, b = RecordingSink("a"), RecordingSink("b")
    sub_a = await relay.subscribe(a, "s", "/queue/qa", "client", {})
    sub_b = await relay.subscribe(b, "s", "/queue/qb", "client", {})
    sender = RecordingSink("sender")
    for i in range(3):
        await relay.publish(sender, "/queue/qb", [], f"b{i}".encode())
        await b.wait_for(i + 1)
        await relay.publish(sender, "/queue/qa", [], f"a{i}".encode())
        await a.wait_for(i + 1)
    await sub_a.ack(a.deliveries[-1].ack_id or "")
    await settle()
    await relay.detach(a)
    await relay.detach(b)
    assert sub_b.closed
    assert await queue_depth(fresh_vhost, "qa") == 0
    assert await queue_depth(fresh_vhost, "qb") == 3


async def test_nack_cumulative_in_client_mode(make_relay: RelayFactory, fresh_vhost: str) -> None:
    relay = await make_relay()
    sink = RecordingSink("n")
    sub = await relay.subscribe(sink, "s", "/queue/nc", "client", {})
    for i in range(3):
        await relay.publish(sink, "/queue/nc", [], f"{i}".encode())
    await sink.wait_for(3)
    await sub.nack(sink.deliveries[2].ack_id or "", requeue=False)
    await settle()
    await sub.cancel()
    assert await queue_depth(fresh_vhost, "nc") == 0


async def test_unknown_ack_ids_are_ignored(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("n")
    sub = await relay.subscribe(sink, "s", "/queue/u", "client", {})
    for bogus in ["", "x", "1.", "999.1", "1.999999"]:
        assert not sub.owns(bogus)
        await sub.ack(bogus)
        await sub.nack(bogus)
    await relay.publish(sink, "/queue/u", [], b"still works")
    (delivery,) = await sink.wait_for(1)
    await sub.ack(delivery.ack_id or "")
