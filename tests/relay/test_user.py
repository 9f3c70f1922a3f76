"""/user/queue/: every live session of one user, on any node."""

from __future__ import annotations

import pytest

from gateway.relay import DestinationError, SubscribeError
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, settle


async def test_user_queue_reaches_every_session_of_that_user_only(
    make_relay: RelayFactory,
) -> None:
    node1, node2 = await make_relay(), await make_relay()
    alice1 = RecordingSink("alice-1", user="alice")
    alice2 = RecordingSink("alice-2", user="alice")
    bob = RecordingSink("bob-1", user="bob")
    await node1.subscribe(alice1, "n", "/user/queue/notifications", "auto", {})
    await node2.subscribe(alice2, "n", "/user/queue/notifications", "auto", {})
    await node1.subscribe(bob, "n", "/user/queue/notifications", "auto", {})

    system = RecordingSink("system", user="system")
    await node2.publish(system, "/user/alice/queue/notifications", [("kind", "ping")], b"hi")
    for sink in (alice1, alice2):
        (delivery,) = await sink.wait_for(1)
        assert delivery.body == b"hi"
        assert delivery.destination == "/user/queue/notifications"
        assert delivery.header("kind") == "ping"
    await settle()
    assert bob.deliveries == []

    # /user/queue/x without a name sends to the sender's own sessions.
    await node1.publish(bob, "/user/queue/notifications", [], b"note to self")
    await bob.wait_for(1)
    await settle()
    assert len(alice1.deliveries) == 1


async def test_user_queue_needs_a_user(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    anonymous = RecordingSink("anon")
    with pytest.raises(SubscribeError, match="need an authenticated user"):
        await relay.subscribe(anonymous, "n", "/user/queue/x", "auto", {})
    with pytest.raises(DestinationError, match="another user's queue"):
        await relay.subscribe(RecordingSink("a", user="a"), "n", "/user/b/queue/x", "auto", {})
    with pytest.raises(DestinationError, match="needs an authenticated user"):
        await relay.publish(anonymous, "/user/queue/x", [], b"")


async def test_user_queue_with_client_ack(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    dave = RecordingSink("dave", user="dave")
    sub = await relay.subscribe(dave, "n", "/user/queue/jobs", "client", {})
    await relay.publish(RecordingSink("x"), "/user/dave/queue/jobs", [], b"job")
    (delivery,) = await dave.wait_for(1)
    assert delivery.destination == "/user/queue/jobs"
    assert delivery.ack_id is not None
    await sub.ack(delivery.ack_id)
