"""No frame boundary can be smuggled through a header (issue 13.4).

A header value the node writes (a relayed SEND header, an AMQP publisher's header or
property, text reflected into an ERROR) never holds an unescaped NUL, CR or LF: a SEND
carrying a NUL in a header is refused with an ERROR naming the header; what a native AMQP
publisher puts in its headers is escaped where the subscriber's STOMP version can escape
(1.1, 1.2) and dropped where it cannot (a NUL in any version; CR or LF in 1.0). Subscribers
here are stomp.py clients at STOMP 1.0, 1.1 and 1.2: each sees exactly the MESSAGEs that
were published, and never an ERROR.
"""

from __future__ import annotations

import json
import uuid

import aiormq
import pytest
from pamqp import commands as spec

from tests.support.gateway_proc import GatewayProcess
from tests.support.security import StompPeer
from tests.support.stomp_client import StompClient, stomp_client

VERSIONS = ["1.0", "1.1", "1.2"]

#: What the forger hopes a subscriber parses after the header: an ERROR of its choosing.
FORGED = "a\x00ERROR\nmessage:forged\n\nowned by the sender\x00"


def topic() -> str:
    return f"smuggle.{uuid.uuid4().hex[:8]}"


def assert_only(subscriber: StompClient, bodies: list[str]) -> list[dict[str, str]]:
    """The subscriber got exactly ``bodies``, in order, and no ERROR; their headers."""
    got = subscriber.messages(len(bodies))
    assert [m.body for m in got] == bodies
    assert subscriber.no_message(0.3)
    assert subscriber.errors() == []
    assert not subscriber.listener.got_error.is_set()
    return [m.headers for m in got]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_send_with_a_nul_in_a_header_is_refused_naming_it(
    gateway: GatewayProcess, version: str
) -> None:
    key = topic()
    with stomp_client(gateway.stomp_port, version=version) as subscriber:
        subscriber.subscribe(f"/topic/{key}", "s")
        async with StompPeer.tcp(gateway.stomp_port) as sender:
            await sender.send_frame(
                "CONNECT", [("accept-version", "1.2"), ("login", "guest"), ("passcode", "guest")]
            )
            assert (await sender.frame()).command == "CONNECTED"
            head = f"SEND\ndestination:/topic/{key}\nx-evil:{FORGED}\n\nbody\x00"
            await sender.send_raw(head.encode())
            error = await sender.expect_error()
        assert (error.message, error.said) == ("Invalid header", "NUL byte in header 'x-evil'")
        assert error.headers["stompgate-reason"] == "protocol"
        with stomp_client(gateway.stomp_port) as clean:
            clean.send(f"/topic/{key}", "after")
        assert_only(subscriber, ["after"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_native_amqp_publisher_cannot_forge_a_frame(
    gateway: GatewayProcess, amqp_url: str, version: str
) -> None:
    key = topic()
    evil = spec.Basic.Properties(
        content_type="text/plain",
        correlation_id="c\nforged:1",
        app_id="app\x00ERROR",
        headers={"evil": FORGED, "evil\x00name": "v", "lf": "x\ny", "cr": "x\ry", "ok": "fine"},
    )
    with stomp_client(gateway.stomp_port, version=version) as subscriber:
        subscriber.subscribe(f"/topic/{key}", "s")
        connection = await aiormq.connect(amqp_url)
        try:
            channel = await connection.channel()
            await channel.basic_publish(
                b"one", exchange="amq.topic", routing_key=key, properties=evil
            )
            await channel.basic_publish(b"two", exchange="amq.topic", routing_key=key)
        finally:
            await connection.close()
        first, _ = assert_only(subscriber, ["one", "two"])
    assert first["ok"] == "fine"
    assert first["content-type"] == "text/plain"
    assert "evil" not in first
    assert "app-id" not in first
    assert "forged" not in first
    assert not any("\x00" in name or "\x00" in value for name, value in first.items())
    if version == "1.0":  # no escaping: what holds a CR or LF cannot be written
        assert ("lf" in first, "cr" in first, "correlation-id" in first) == (False, False, False)
    else:
        assert (first["lf"], first["correlation-id"]) == ("x\ny", "c\nforged:1")


async def test_text_reflected_into_an_error_cannot_end_it(gateway: GatewayProcess) -> None:
    """A chat post whose JSON key holds ``\\u0000``: the ERROR names the key in its body, where
    the NUL is written ``\\x00``; the ``message`` header is the short, fixed text."""
    async with StompPeer.tcp(gateway.stomp_port) as client:
        await client.send_frame(
            "CONNECT", [("accept-version", "1.2"), ("login", "guest"), ("passcode", "guest")]
        )
        assert (await client.frame()).command == "CONNECTED"
        post = json.dumps({"text": "hi", "client_id": "c-1", "\x00ERROR": 1})
        await client.send_frame("SEND", {"destination": "/app/rooms/smuggle/messages"}, post)
        error = await client.expect_error()
    assert error.message == "Invalid message"
    assert "\x00" not in error.body
    assert "\\x00ERROR" in error.body
