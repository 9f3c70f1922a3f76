"""Relay SENDs with a receipt are pipelined (issue 19.2): the connection reads on while their
confirms are pending, and each RECEIPT goes out once its SEND and every earlier one are
confirmed, in the order the SENDs came. A SEND the broker refuses is the one ERROR: the
RECEIPTs before it, nothing after it. Raw STOMP over TCP (no rate limit there by default),
all frames of a burst in one write, against the real RabbitMQ; the in-order case side by
side with RabbitMQ's own STOMP plugin.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from tests.relay.helpers import queue_depth
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import StompPeer, subscribe

BURST = 200
FULL = "x-max-length:0\nx-overflow:reject-publish\n"  # the broker nacks every publish


@contextlib.asynccontextmanager
async def connected(port: int, vhost: str) -> AsyncIterator[StompPeer]:
    """A raw STOMP 1.2 peer (RabbitMQ's plugin wants the vhost as ``host``)."""
    async with StompPeer.tcp(port) as client:
        headers = [("accept-version", "1.2"), ("host", vhost), ("login", "guest")]
        await client.send_frame("CONNECT", [*headers, ("passcode", "guest")])
        found = await client.frame()
        assert found.command == "CONNECTED", found
        yield client


def send(destination: str, body: str, receipt: str | None = None, extra: str = "") -> bytes:
    receipt_line = "" if receipt is None else f"receipt:{receipt}\n"
    return f"SEND\ndestination:{destination}\n{receipt_line}{extra}\n{body}\x00".encode()


async def test_a_burst_of_receipted_sends_gets_every_receipt_in_order_like_rabbitmq(
    gateway: GatewayProcess, rabbit_vhost: str
) -> None:
    for side, port in (("rabbitmq", rabbit.RABBIT_STOMP_PORT), ("gateway", gateway.stomp_port)):
        name = f"burst-{side}-{uuid.uuid4().hex[:8]}"
        async with connected(port, rabbit_vhost) as client:
            await client.send_raw(
                b"".join(send(f"/queue/{name}", f"m{i}", f"r{i}") for i in range(BURST))
            )
            frames = [await client.frame() for _ in range(BURST)]
            assert [f.command for f in frames] == ["RECEIPT"] * BURST, (side, frames[-1])
            assert [f.headers["receipt-id"] for f in frames] == [f"r{i}" for i in range(BURST)]
            # the last RECEIPT vouches for all: a passive declare counts them right now
            assert await queue_depth(rabbit_vhost, name) == BURST, side


async def test_the_connection_reads_on_while_a_receipted_send_awaits_its_confirm(
    gateway: GatewayProcess, rabbit_vhost: str
) -> None:
    # The first SEND is refused (nack), which ends the session: a gateway that waited for
    # its confirm before reading on would never publish the second one.
    name = uuid.uuid4().hex[:8]
    async with (
        connected(gateway.stomp_port, rabbit_vhost) as watcher,
        connected(gateway.stomp_port, rabbit_vhost) as client,
    ):
        await subscribe(watcher, f"/topic/obs.{name}", "w")
        await client.send_raw(
            send(f"/queue/full-{name}", "refused", "r-full", FULL)
            + send(f"/topic/obs.{name}", "read on")
        )
        error = await client.expect_error()
        assert error.headers["message"] == "SEND not confirmed"
        message = await watcher.frame()
        assert (message.command, message.body) == ("MESSAGE", "read on")


async def test_a_refused_send_in_a_burst_gets_the_receipts_before_it_then_the_error(
    gateway: GatewayProcess, rabbit_vhost: str
) -> None:
    name = uuid.uuid4().hex[:8]
    ok, full = f"/queue/ok-{name}", f"/queue/full-{name}"
    async with connected(gateway.stomp_port, rabbit_vhost) as client:
        await client.send_raw(send(ok, "declare", "declared"))
        await client.receipt("declared")
        await client.send_raw(
            b"".join(send(ok, f"m{i}", f"r{i}") for i in range(5))
            + send(full, "refused", "r5", FULL)
            + b"".join(send(ok, f"m{i}", f"r{i}") for i in range(6, 10))
        )
        seen = []
        while (found := await client.frame()).command != "ERROR":
            seen.append((found.command, found.headers.get("receipt-id")))
        # The queue's SENDs share a channel: its confirms come in order, the nack after the
        # acks of the five before it; nothing follows the ERROR (expect_closed checks).
        assert seen == [("RECEIPT", f"r{i}") for i in range(5)]
        assert found.headers["message"] == "SEND not confirmed"
        assert found.headers["receipt-id"] == "r5"  # the refused SEND's
        await client.expect_closed()
