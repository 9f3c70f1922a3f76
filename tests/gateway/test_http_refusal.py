"""The HTTP guard's own answer to a socket refused at accept (gateway/transport/http_refusal.py):
a WebSocket upgrade is upgraded only to carry the ERROR frame, anything else gets 429."""

from __future__ import annotations

import base64
import hashlib

from gateway.auth.errors import LimitExceeded
from gateway.transport.http_refusal import answer, parse_head

ERROR = LimitExceeded("connections_per_ip", "too many connections from 10.0.0.7: 4 > 3")
KEY = base64.b64encode(b"0123456789abcdef").decode()
UPGRADE = (
    "GET /ws?x=1 HTTP/1.1\r\nHost: node:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: v11.stomp, v12.stomp\r\n{extra}\r\n"
)


def any_origin(origin: str | None, host: str) -> str | None:
    return None


def refuse(request: str, check=any_origin) -> tuple[bytes, bool]:  # type: ignore[no-untyped-def]
    return answer(parse_head(request.encode()), ERROR, "/ws", check)


def test_an_upgrade_gets_101_the_error_frame_and_a_close() -> None:
    reply, upgraded = refuse(UPGRADE.format(extra=""))
    assert upgraded
    head, _, frames = reply.partition(b"\r\n\r\n")
    accept = base64.b64encode(
        hashlib.sha1(
            KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11", usedforsecurity=False
        ).digest()
    )
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 101 Switching Protocols"
    assert b"Sec-WebSocket-Accept: " + accept in head
    assert b"Sec-WebSocket-Protocol: v11.stomp" in head  # the client's first known one
    assert frames[0] == 0x81  # one final text frame
    size, start = frames[1], 2
    if size == 126:  # a 16-bit length follows
        size, start = int.from_bytes(frames[2:4], "big"), 4
    stomp = frames[start : start + size]
    assert stomp.startswith(b"ERROR\nmessage:Too many connections\n")
    assert b"stompgate-reason:connections_per_ip" in stomp
    assert stomp.endswith(b"too many connections from 10.0.0.7: 4 > 3\x00")
    assert frames[start + size :] == b"\x88\x02\x03\xe8"  # close, 1000


def test_a_plain_request_or_a_bad_upgrade_gets_429() -> None:
    requests = [
        "GET / HTTP/1.1\r\nHost: node\r\n\r\n",
        UPGRADE.format(extra="").replace("/ws?x=1", "/other"),
        UPGRADE.format(extra="").replace(KEY, "short"),
        UPGRADE.format(extra="").replace("Version: 13", "Version: 99"),
        "not http\r\n\r\n",
    ]
    for request in requests:
        reply, upgraded = refuse(request)
        assert not upgraded
        assert reply.startswith(f"HTTP/1.1 429 {ERROR.detail}\r\n".encode()), reply
        assert reply.endswith(ERROR.detail.encode())
    reply, upgraded = answer(None, ERROR, "/ws", any_origin)  # a head past MAX_HEAD
    assert not upgraded
    assert reply.startswith(b"HTTP/1.1 429 ")


def test_a_foreign_origin_is_refused_as_the_endpoint_would() -> None:
    seen: list[tuple[str | None, str]] = []

    def check(origin: str | None, host: str) -> str | None:
        seen.append((origin, host))
        return f"origin not allowed: {origin}"

    reply, upgraded = refuse(UPGRADE.format(extra="Origin: https://evil.example\r\n"), check)
    assert not upgraded
    assert reply.startswith(b"HTTP/1.1 403 origin not allowed: https://evil.example\r\n")
    assert seen == [("https://evil.example", "node:8080")]
