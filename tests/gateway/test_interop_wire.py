"""ERROR and MESSAGE frames as RabbitMQ's STOMP plugin writes them (issue 14.8, 14.9).

Each case sends the same bytes to RabbitMQ's own STOMP plugin (port 61614, the test run's
vhost) and to a gateway node on that vhost, side by side, and compares what clients that
parse raw bytes look at: the ERROR's ``message`` header and the first line of its body; a
MESSAGE's leading headers and its ``destination``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, next_message, subscribe


@contextlib.asynccontextmanager
async def peer(port: int, vhost: str, version: str = "1.2") -> AsyncIterator[StompPeer]:
    """A connected raw peer (the plugin wants the vhost as ``host``; the gateway ignores it)."""
    async with StompPeer.tcp(port) as client:
        connected = await client_connect(client, vhost, version)
        assert connected.command == "CONNECTED", connected
        yield client


async def client_connect(
    client: StompPeer, vhost: str, version: str = "1.2", passcode: str = "guest"
) -> Frame:
    headers = [("accept-version", version), ("host", vhost), ("login", "guest")]
    await client.send_frame("CONNECT", [*headers, ("passcode", passcode)])
    return await client.frame()


async def error_after(port: int, vhost: str, frames: list[bytes]) -> Frame:
    """Connect, send ``frames``: the ERROR that answers (frames before it are skipped)."""
    async with peer(port, vhost) as client:
        for data in frames:
            await client.send_raw(data)
        while (found := await client.frame()).command != "ERROR":
            pass
        return found


def sides(gateway: GatewayProcess) -> list[tuple[str, int]]:
    return [("rabbitmq", rabbit.RABBIT_STOMP_PORT), ("gateway", gateway.stomp_port)]


ERROR_CASES = {
    "missing destination": ([b"SUBSCRIBE\nid:1\n\n\x00"], "Missing destination"),
    "unknown destination": ([b"SEND\ndestination:/foo/bar\n\nx\x00"], "Unknown destination"),
    "empty queue name": ([b"SUBSCRIBE\ndestination:/queue/\nid:1\n\n\x00"], "Invalid destination"),
    "duplicated id": (
        [
            b"SUBSCRIBE\ndestination:/topic/a\nid:1\nreceipt:r\n\n\x00",
            b"SUBSCRIBE\ndestination:/topic/b\nid:1\n\n\x00",
        ],
        "Duplicated subscription identifier",
    ),
    "durable without id": (
        [b"SUBSCRIBE\ndestination:/topic/a\ndurable:true\nauto-delete:false\n\n\x00"],
        "Missing Header",
    ),
    "unknown command": ([b"FOO\n\n\x00"], "Bad command"),
    "ACK without id": ([b"ACK\n\n\x00"], "Missing header"),
    "BEGIN without transaction": ([b"BEGIN\n\n\x00"], "Missing transaction"),
    "COMMIT of no transaction": ([b"COMMIT\ntransaction:nope\n\n\x00"], "Bad transaction"),
    "UNSUBSCRIBE without id": ([b"UNSUBSCRIBE\n\n\x00"], "Missing destination or id"),
    "UNSUBSCRIBE of no subscription": ([b"UNSUBSCRIBE\nid:zz\n\n\x00"], "No subscription found"),
    "no such exchange": ([b"SUBSCRIBE\ndestination:/exchange/nope\nid:1\n\n\x00"], "not_found"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
async def test_errors_carry_rabbitmqs_short_message(
    gateway: GatewayProcess, rabbit_vhost: str, case: str
) -> None:
    frames, expected = ERROR_CASES[case]
    seen = {}
    for side, port in sides(gateway):
        error = await error_after(port, rabbit_vhost, frames)
        assert error.headers["content-type"] == "text/plain", side
        assert error.body, side
        seen[side] = error.message
    assert seen == {"rabbitmq": expected, "gateway": expected}


async def test_not_found_has_rabbitmqs_body(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    """``not_found`` with the broker's own text: ``NOT_FOUND - no exchange 'nope' in vhost``."""
    frames = [b"SEND\ndestination:/exchange/nope\n\nx\x00"]
    bodies = [
        (await error_after(port, rabbit_vhost, frames)).said.strip() for _, port in sides(gateway)
    ]
    assert bodies[0] == bodies[1] == f"NOT_FOUND - no exchange 'nope' in vhost '{rabbit_vhost}'"


async def test_our_own_reason_rides_along(gateway: GatewayProcess, rabbit_vhost: str) -> None:
    """The machine-readable reason the plugin does not have: ``stompgate-reason``."""
    frames = [b"SEND\ndestination:/foo/bar\n\nx\x00"]
    error = await error_after(gateway.stomp_port, rabbit_vhost, frames)
    assert error.headers["stompgate-reason"] == "destination"
    error = await error_after(gateway.stomp_port, rabbit_vhost, [b"FOO\n\n\x00"])
    assert error.headers["stompgate-reason"] == "protocol"


@pytest.mark.parametrize(
    ("connect", "message", "said"),
    [
        (
            b"CONNECT\naccept-version:2.0\nlogin:guest\npasscode:guest\n\n\x00",
            "Version mismatch",
            "Supported versions are 1.0,1.1,1.2",
        ),
        (
            b"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:wrong\n\n\x00",
            "Bad CONNECT",
            "Access refused for user 'guest'",
        ),
        (
            b"SEND\ndestination:/topic/x\n\nx\x00",
            "Illegal command",
            None,  # RabbitMQ: "You must log in using CONNECT first"; ours names the frame
        ),
    ],
)
async def test_connect_errors_as_rabbitmq_writes_them(
    gateway: GatewayProcess, connect: bytes, message: str, said: str | None
) -> None:
    for side, port in sides(gateway):
        async with StompPeer.tcp(port) as client:
            await client.send_raw(connect)
            error = await client.frame()
        assert (error.command, error.message) == ("ERROR", message), side
        if said is not None:
            assert error.said == said, side


async def test_message_headers_in_rabbitmqs_order(
    gateway: GatewayProcess, rabbit_vhost: str
) -> None:
    """``subscription``, ``destination``, ``message-id``, ``redelivered`` (then ``ack`` for a
    client-ack subscription), the message's own headers, ``content-length`` last; and a
    delivery through ``/exchange/amq.topic/<key>`` says ``destination:/topic/<key>``."""
    key = f"order.{uuid.uuid4().hex[:8]}"
    for side, port in sides(gateway):
        async with peer(port, rabbit_vhost) as client, peer(port, rabbit_vhost) as sender:
            await subscribe(client, f"/topic/{key}", "plain")
            await client.send_frame(
                "SUBSCRIBE",
                {"id": "acked", "destination": f"/exchange/amq.topic/{key}", "ack": "client"},
            )
            await subscribe(client, f"/exchange/amq.topic/{key}", "via-exchange")
            await sender.send_frame(
                "SEND", {"destination": f"/topic/{key}", "x-a": "1", "receipt": "sent"}, "hi"
            )
            await sender.receipt("sent")
            got = {}
            for _ in range(3):
                message = await next_message(client)
                got[message.headers["subscription"]] = message
        for sub_id, message in got.items():
            names = [name for name, _ in message.all_headers]
            first = ["subscription", "destination", "message-id", "redelivered"]
            if sub_id == "acked":
                first.append("ack")
            assert names[: len(first)] == first, (side, sub_id, names)
            assert names[-1] == "content-length", (side, sub_id, names)
            assert message.headers["destination"] == f"/topic/{key}", (side, sub_id)
            assert message.headers["x-a"] == "1"
