"""Receipts inside transactions (issue 14.3).

SENDs with and without ``receipt`` inside BEGIN ... COMMIT: every requested RECEIPT arrives
and every committed message is delivered once; nothing is delivered before COMMIT, nothing
after ABORT. RabbitMQ's plugin holds a transaction's frames until COMMIT and receipts such a
SEND once the broker confirmed it, after the COMMIT; the gateway does the same and, stricter,
sends the COMMIT's own RECEIPT only after those of the frames it carried out. The frames an
ABORT discards are not receipted, by either (the ABORT's RECEIPT says they are gone).
"""

from __future__ import annotations

import uuid

import pytest

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, subscribe
from tests.support.stomp_client import stomp_client

VERSIONS = ["1.0", "1.1", "1.2"]


def destination() -> str:
    return f"/topic/tx.{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_commit_delivers_once_and_receipts_every_frame(
    gateway: GatewayProcess, version: str
) -> None:
    dest = destination()
    with (
        stomp_client(gateway.stomp_port, version=version) as subscriber,
        stomp_client(gateway.stomp_port, version=version) as sender,
    ):
        subscriber.subscribe(dest, "s")
        conn = sender.conn
        conn.begin("t1")
        conn.send(dest, "m1", headers={"receipt": "r1"}, transaction="t1")
        conn.send(dest, "m2", transaction="t1")
        conn.send(dest, "m3", headers={"receipt": "r3"}, transaction="t1")
        assert subscriber.no_message(0.5)  # nothing before COMMIT
        assert sender.listener.receipts == set()  # a SEND's receipt waits for the COMMIT
        conn.commit("t1", headers={"receipt": "rc"})
        for receipt in ("r1", "r3", "rc"):
            sender.wait_receipt(receipt)
        assert [m.body for m in subscriber.messages(3)] == ["m1", "m2", "m3"]
        assert subscriber.no_message(0.5)  # each once

        conn.begin("t2")
        conn.send(dest, "m4", headers={"receipt": "r4"}, transaction="t2")
        conn.abort("t2", headers={"receipt": "ra"})
        sender.wait_receipt("ra")
        sender.send(dest, "after")  # with a receipt: everything before it is done
        assert [m.body for m in subscriber.messages(1)] == ["after"]
        assert subscriber.no_message(0.3)
        assert "r4" not in sender.listener.receipts
        assert sender.errors() == []


async def run_transactions(port: int, vhost: str) -> tuple[list[Frame], list[Frame], list[str]]:
    """The same frames to a server: what the sender saw after the COMMIT (up to its
    receipt and those of its SENDs), after the ABORT, and what the subscriber got."""
    dest = destination()
    login = [("accept-version", "1.2"), ("host", vhost), ("login", "guest"), ("passcode", "guest")]
    async with StompPeer.tcp(port) as watcher, StompPeer.tcp(port) as sender:
        for peer in (watcher, sender):
            await peer.send_frame("CONNECT", login)
            assert (await peer.frame()).command == "CONNECTED"
        await subscribe(watcher, dest)
        await sender.send_frame("BEGIN", {"transaction": "t1"})
        await sender.send_frame(
            "SEND", {"destination": dest, "transaction": "t1", "receipt": "r1"}, "m1"
        )
        await sender.send_frame("SEND", {"destination": dest, "transaction": "t1"}, "m2")
        await sender.send_frame("COMMIT", {"transaction": "t1", "receipt": "rc"})
        committed = [await sender.frame(), await sender.frame()]
        await sender.send_frame("BEGIN", {"transaction": "t2"})
        await sender.send_frame(
            "SEND", {"destination": dest, "transaction": "t2", "receipt": "r2"}, "m3"
        )
        await sender.send_frame("ABORT", {"transaction": "t2", "receipt": "ra"})
        await sender.send_frame("SEND", {"destination": dest, "receipt": "rz"}, "after")
        aborted = await sender.receipt("rz")
        bodies: list[str] = []
        while not bodies or bodies[-1] != "after":
            found = await watcher.frame()
            assert found.command == "MESSAGE", found
            bodies.append(found.body)
    return committed, aborted, bodies


async def test_side_by_side_with_rabbitmq(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    for side, port in (("rabbitmq", rabbit.RABBIT_STOMP_PORT), ("gateway", gateway.stomp_port)):
        committed, aborted, bodies = await run_transactions(port, rabbit_vhost)
        receipts = [frame.headers.get("receipt-id", "") for frame in committed]
        assert sorted(receipts) == ["r1", "rc"], side  # both, whatever the order
        assert [frame.headers.get("receipt-id") for frame in aborted] == ["ra", "rz"], side
        assert bodies == ["m1", "m2", "after"], side
        if side == "gateway":
            assert receipts == ["r1", "rc"]  # the COMMIT's receipt comes last
