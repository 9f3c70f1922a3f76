"""One client's subscriptions on their own (gateway/subscriptions.py), with the fakes of the
connection tests for the access policy, the router and the relay's subscriptions."""

from __future__ import annotations

import pytest

from gateway.access import AccessDenied, Identity
from gateway.auth.authority import Authority
from gateway.stomp import events
from gateway.subscriptions import Subscriptions
from tests.gateway.test_connection import FakeAccess, FakeRouter
from tests.gateway.test_sender import NullSink

GUEST = Identity(user="guest", dev=True)


async def allow(authority: Authority) -> None:
    pass


def subscribe(subscription_id: str, destination: str = "/queue/q") -> events.SubscribeRequested:
    return events.SubscribeRequested(subscription_id, destination, "client", (), None)


def make() -> tuple[Subscriptions, FakeAccess, FakeRouter]:
    access, router = FakeAccess(), FakeRouter()
    return Subscriptions(NullSink(), access=access, router=router), access, router


async def test_subscribe_hands_back_what_starts_after_the_receipt() -> None:
    subs, _, router = make()
    started: list[str] = []
    router.catch_up = lambda: started.append("replay")
    start = await subs.subscribe(GUEST, subscribe("s1"), authorize=allow)
    assert "s1" in router.subscriptions
    assert start is not None
    assert started == []
    start()
    assert started == ["replay"]
    assert await subs.subscribe(GUEST, subscribe("s2"), authorize=allow) is None


async def test_a_denied_subscribe_reaches_no_router() -> None:
    subs, access, router = make()
    access.denied.add("/queue/secret")
    with pytest.raises(AccessDenied):
        await subs.subscribe(GUEST, subscribe("s1", "/queue/secret"), authorize=allow)
    assert router.subscriptions == {}


async def test_acks_go_to_the_named_subscription_or_the_owner_of_the_ack_id() -> None:
    subs, _, router = make()
    await subs.subscribe(GUEST, subscribe("s1"), authorize=allow)
    await subs.acknowledge(events.AckRequested("a-1", None, None, None))
    await subs.acknowledge(events.NackRequested("a-2", "s1", None, None, requeue=False))
    await subs.acknowledge(events.AckRequested("unknown", None, None, None))  # harmless
    await subs.acknowledge(events.AckRequested("a-1", "gone", None, None))  # by the owner
    assert router.subscriptions["s1"].calls == ["ack a-1", "nack a-2 requeue=False", "ack a-1"]


async def test_unsubscribe_cancels_then_tells_the_router_once() -> None:
    subs, _, router = make()
    await subs.subscribe(GUEST, subscribe("s1", "/topic/room.r"), authorize=allow)
    await subs.unsubscribe(events.UnsubscribeRequested("s1", None))
    await subs.unsubscribe(events.UnsubscribeRequested("s1", None))
    assert router.subscriptions["s1"].calls == ["cancel"]
    assert router.unsubscribed_from == ["/topic/room.r"]


async def test_nothing_is_held_after_clear() -> None:
    subs, _, router = make()
    await subs.subscribe(GUEST, subscribe("s1"), authorize=allow)
    subs.clear()
    await subs.acknowledge(events.AckRequested("a-1", "s1", None, None))
    await subs.unsubscribe(events.UnsubscribeRequested("s1", None))
    assert router.subscriptions["s1"].calls == []
    assert router.unsubscribed_from == []
