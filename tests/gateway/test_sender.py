"""The connection's SEND path on its own (gateway/sender.py): fakes of the access policy and
the router (the project's own interfaces), a recording ``refuse``."""

from __future__ import annotations

import asyncio

import pytest

from gateway.access import Identity
from gateway.auth.authority import Authority
from gateway.errors import ClientError
from gateway.metrics import Metrics
from gateway.sender import Sender
from gateway.stomp import events
from tests.gateway.test_connection import FakeAccess, FakeRouter

GUEST = Identity(user="guest", dev=True)


async def allow(authority: Authority) -> None:
    pass


class Rig:
    def __init__(self, max_unconfirmed: int = 2) -> None:
        self.router = FakeRouter()
        self.metrics = Metrics()
        self.refused: list[ClientError] = []
        self.sender = Sender(
            NullSink(),
            access=FakeAccess(),
            router=self.router,
            metrics=self.metrics,
            max_unconfirmed=max_unconfirmed,
            refuse=self.refused.append,
        )

    async def send(self, destination: str, receipt: str | None = None) -> object:
        event = events.SendRequested(destination, (), b"x", receipt, None)
        pipelined = receipt is None
        return await self.sender.send(GUEST, event, authorize=allow, pipelined=pipelined)

    def confirm(self, index: int, error: ClientError | None = None) -> None:
        on_confirm = self.router.sent[index].on_confirm
        assert on_confirm is not None
        on_confirm(error, 0.001)


class NullSink:
    session_id = "node-1"
    user = "guest"

    def deliver(self, subscription_id: str, message: object, ack_id: str | None) -> None:
        raise AssertionError("a sender delivers nothing")


def receipted() -> events.Event:
    return events.SubscribeRequested("s1", "/topic/t", "auto", (), "r1")


async def test_nothing_settles_before_a_send_goes_without_waiting() -> None:
    rig = Rig()
    assert not rig.sender.must_settle(receipted())
    assert await rig.sender.settle()
    await rig.send("/topic/t")
    assert rig.sender.window is not None
    assert rig.sender.window.in_flight == 1
    assert rig.sender.must_settle(receipted())
    assert rig.sender.must_settle(events.DisconnectRequested(None))
    assert not rig.sender.must_settle(events.SendRequested("/topic/t", (), b"", None, None))
    rig.confirm(0)
    assert not rig.sender.must_settle(receipted())
    assert sum(rig.metrics.confirm_latency.counts) == 1


async def test_a_full_window_waits_for_a_confirm() -> None:
    rig = Rig(max_unconfirmed=2)
    await rig.send("/topic/t")
    await rig.send("/topic/t")
    third = asyncio.create_task(rig.send("/topic/t"))
    await asyncio.sleep(0.01)
    assert not third.done()
    rig.confirm(1)
    await third
    assert len(rig.router.sent) == 3


async def test_a_refused_confirm_is_handed_to_refuse_and_ends_the_waits() -> None:
    rig = Rig()
    await rig.send("/topic/t")
    waiting = asyncio.create_task(rig.sender.settle())
    await asyncio.sleep(0.01)
    refusal = ClientError("SEND not confirmed: nack", reason="publish")
    rig.sender.close()  # what the connection does when refuse() sends the ERROR
    rig.confirm(0, refusal)
    assert rig.refused == [refusal]
    assert not await waiting


async def test_a_publish_that_fails_leaves_nothing_in_flight() -> None:
    rig = Rig()
    rig.router.refuse = ClientError("no route", reason="publish")
    with pytest.raises(ClientError, match="no route"):
        await rig.send("/topic/t")
    assert rig.sender.window is not None
    assert rig.sender.window.in_flight == 0


async def test_chat_and_receipted_sends_are_awaited_and_say_what_the_receipt_carries() -> None:
    rig = Rig()
    rig.router.receipt_headers = (("stompgate-message-id", "42"),)
    assert await rig.send("/app/rooms/r/messages") == (("stompgate-message-id", "42"),)
    assert await rig.send("/queue/q", receipt="r1") is None
    assert [s.on_confirm for s in rig.router.sent] == [None, None]
    assert rig.sender.window is None
    assert sum(rig.metrics.confirm_latency.counts) == 1  # the relay's; chat has its own


async def test_no_window_when_max_unconfirmed_is_zero() -> None:
    rig = Rig(max_unconfirmed=0)
    await rig.send("/topic/t")
    assert rig.router.sent[0].on_confirm is None  # awaited, as with a receipt
    assert rig.sender.window is None
