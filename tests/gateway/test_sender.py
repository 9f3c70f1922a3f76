"""The connection's SEND path on its own (gateway/sender.py): fakes of the access policy and
the router (the project's own interfaces), a recording ``refuse``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

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
        self.refused_receipts: list[str | None] = []  # the receipt-id each ERROR carries
        self.receipts: list[tuple[str, object]] = []  # (receipt-id, headers), in order
        self.sender = Sender(
            NullSink(),
            access=FakeAccess(),
            router=self.router,
            metrics=self.metrics,
            max_unconfirmed=max_unconfirmed,
            refuse=self.refuse,
            receipt=self.receipt,
        )

    def refuse(self, error: ClientError, receipt: str | None) -> None:
        self.refused.append(error)
        self.refused_receipts.append(receipt)

    def receipt(self, receipt: str, headers: object) -> None:
        self.receipts.append((receipt, headers))

    @property
    def receipt_ids(self) -> list[str]:
        return [receipt for receipt, _ in self.receipts]

    async def send(self, destination: str, receipt: str | None = None) -> None:
        event = events.SendRequested(destination, (), b"x", receipt, None)
        await self.sender.send(GUEST, event, authorize=allow)

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


async def test_chat_and_amq_queue_sends_are_awaited_and_say_what_the_receipt_carries() -> None:
    rig = Rig()
    rig.router.receipt_headers = (("stompgate-message-id", "42"),)
    await rig.send("/app/rooms/r/messages", receipt="c1")
    await rig.send("/amq/queue/q", receipt="a1")
    assert [s.on_confirm for s in rig.router.sent] == [None, None]
    assert rig.sender.window is None
    assert rig.receipts == [("c1", (("stompgate-message-id", "42"),)), ("a1", None)]
    assert sum(rig.metrics.confirm_latency.counts) == 1  # the relay's; chat has its own


async def test_a_receipted_send_goes_without_waiting_and_its_receipt_waits_for_its_confirm() -> (
    None
):
    rig = Rig(max_unconfirmed=8)
    await rig.send("/queue/q", receipt="r1")
    assert rig.router.sent[0].on_confirm is not None  # not awaited
    assert rig.sender.window is not None
    assert rig.sender.window.in_flight == 1
    assert rig.receipts == []
    rig.confirm(0)
    assert rig.receipts == [("r1", None)]
    assert rig.sender.window.in_flight == 0


async def test_receipts_wait_for_every_earlier_confirm_and_keep_the_sends_order() -> None:
    # Confirms from different publish channels arrive in any order.
    rig = Rig(max_unconfirmed=8)
    await rig.send("/topic/t")  # 0, no receipt
    await rig.send("/queue/q", receipt="r1")  # 1
    await rig.send("/topic/t")  # 2, no receipt
    await rig.send("/queue/q", receipt="r3")  # 3
    await rig.send("/topic/t", receipt="r4")  # 4
    rig.confirm(4)
    rig.confirm(3)
    rig.confirm(1)
    assert rig.receipts == []  # SEND 0 is not confirmed yet
    rig.confirm(0)
    assert rig.receipt_ids == ["r1"]  # SEND 2 holds r3 and r4 back
    rig.confirm(2)
    assert rig.receipt_ids == ["r1", "r3", "r4"]
    assert not rig.sender.must_settle(receipted())


async def test_a_receipt_after_confirmed_sends_needs_only_its_own_confirm() -> None:
    rig = Rig(max_unconfirmed=8)
    await rig.send("/topic/t")
    rig.confirm(0)
    await rig.send("/queue/q", receipt="r1")
    await rig.send("/topic/t")
    await rig.send("/queue/q", receipt="r3")
    rig.confirm(1)
    assert rig.receipt_ids == ["r1"]
    rig.confirm(3)
    rig.confirm(2)
    assert rig.receipt_ids == ["r1", "r3"]
    assert rig.sender.window is not None
    assert rig.sender.window.in_flight == 0


async def test_a_settled_window_has_released_every_receipt() -> None:
    rig = Rig(max_unconfirmed=8)
    await rig.send("/queue/q", receipt="r0")
    await rig.send("/queue/q", receipt="r1")
    assert rig.sender.must_settle(events.DisconnectRequested("bye"))
    assert not rig.sender.must_settle(events.SendRequested("/queue/q", (), b"", "r2", None))
    settled = asyncio.create_task(rig.sender.settle())
    rig.confirm(1)
    rig.confirm(0)
    assert await settled
    assert rig.receipt_ids == ["r0", "r1"]


async def test_a_chat_post_with_a_receipt_waits_for_the_pending_receipts() -> None:
    rig = Rig(max_unconfirmed=8)
    await rig.send("/queue/q", receipt="r0")
    post = asyncio.create_task(rig.send("/app/rooms/r/messages", receipt="c1"))
    await asyncio.sleep(0.01)
    assert not post.done()
    rig.confirm(0)
    await post
    assert rig.receipt_ids == ["r0", "c1"]


async def test_a_refusal_releases_no_receipt_for_it_or_after_it() -> None:
    rig = Rig(max_unconfirmed=8)
    for i in range(4):
        await rig.send("/queue/q", receipt=f"r{i}")
    refusal = ClientError("SEND not confirmed: nack", reason="publish")
    rig.confirm(0)
    rig.confirm(1, refusal)
    rig.confirm(2)
    rig.confirm(3)
    assert rig.receipt_ids == ["r0"]
    assert rig.refused == [refusal]


async def test_a_refusal_waits_for_the_receipts_before_it() -> None:
    # The broker may confirm out of order, even on one channel (a nack before fsynced acks).
    rig = Rig(max_unconfirmed=8)
    await rig.send("/queue/q", receipt="r0")
    await rig.send("/topic/t")
    await rig.send("/queue/q", receipt="r2")
    await rig.send("/queue/q", receipt="r3")
    refusal = ClientError("SEND not confirmed: nack", reason="publish")
    rig.confirm(3)
    rig.confirm(2, refusal)
    assert rig.refused == []
    assert rig.sender.refusing
    await rig.send("/queue/q", receipt="r4")  # nothing more goes out
    assert len(rig.router.sent) == 4
    rig.confirm(0)
    assert rig.receipt_ids == ["r0"]
    assert rig.refused == []  # SEND 1 is not confirmed yet
    rig.confirm(1)
    assert rig.receipt_ids == ["r0"]
    assert rig.refused == [refusal]
    assert rig.refused_receipts == ["r2"]


async def test_the_earliest_refusal_is_the_one_error() -> None:
    rig = Rig(max_unconfirmed=8)
    for i in range(3):
        await rig.send("/queue/q", receipt=f"r{i}")
    early = ClientError("SEND not confirmed: early", reason="publish")
    late = ClientError("SEND not confirmed: late", reason="publish")
    rig.confirm(2, late)
    rig.confirm(1, early)
    rig.confirm(0)
    assert rig.receipt_ids == ["r0"]
    assert rig.refused == [early]
    assert rig.refused_receipts == ["r1"]  # the ERROR names the refused SEND's receipt


async def test_a_receipted_send_waits_for_room_in_a_full_window() -> None:
    rig = Rig(max_unconfirmed=2)
    await rig.send("/queue/q", receipt="r0")
    await rig.send("/queue/q", receipt="r1")
    third = asyncio.create_task(rig.send("/queue/q", receipt="r2"))
    await asyncio.sleep(0.01)
    assert not third.done()
    rig.confirm(0)
    await third
    assert rig.receipt_ids == ["r0"]
    rig.confirm(2)
    rig.confirm(1)
    assert rig.receipt_ids == ["r0", "r1", "r2"]


async def test_a_receipted_send_that_is_not_written_gets_no_receipt() -> None:
    rig = Rig(max_unconfirmed=8)
    await rig.send("/queue/q", receipt="r0")
    rig.router.refuse = ClientError("no route", reason="publish")
    with pytest.raises(ClientError, match="no route"):
        await rig.send("/queue/q", receipt="r1")
    await rig.send("/queue/q", receipt="r2")  # what a test of the sender alone can do
    rig.confirm(0)
    rig.confirm(1)
    assert rig.receipt_ids == ["r0", "r2"]
    assert rig.sender.window is not None
    assert rig.sender.window.receipts == 0  # the unwritten SEND's RECEIPT was withdrawn


async def test_a_confirm_that_comes_before_the_publish_returns_still_releases_the_receipt() -> None:
    rig = Rig(max_unconfirmed=8)
    publish = rig.router.publish

    def confirming_publish(*args: Any, **kwargs: Any) -> Awaitable[None]:
        written = publish(*args, **kwargs)
        kwargs["on_confirm"](None, 0.001)  # the broker answered inside the publish call
        return written

    rig.router.publish = confirming_publish  # type: ignore[method-assign]
    await rig.send("/queue/q", receipt="r0")
    assert rig.receipt_ids == ["r0"]
    assert rig.sender.window is not None
    assert rig.sender.window.receipts == 0


async def test_no_window_when_max_unconfirmed_is_zero() -> None:
    rig = Rig(max_unconfirmed=0)
    await rig.send("/topic/t")
    await rig.send("/queue/q", receipt="r1")
    assert [s.on_confirm for s in rig.router.sent] == [None, None]  # both awaited
    assert rig.sender.window is None
    assert rig.receipt_ids == ["r1"]
