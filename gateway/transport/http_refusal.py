"""The whole answer to a socket on the HTTP port refused at accept (past the per-IP limit).

Such a socket never reaches aiohttp: building its request, response and WebSocket objects for
each of thousands of refused sockets cost a storm ~20 MiB of RSS that stayed (Python arenas
pinned by the admitted sessions). The guard (:mod:`gateway.transport.http_guard`) keeps the
socket's bytes until the end of its request head and hands them here:

* a WebSocket upgrade of the STOMP endpoint gets ``101``, one ERROR frame (the same frame the
  endpoint and the TCP listener send: ``Too many connections``) and a close frame, as a
  browser's WebSocket API shows no HTTP status; from a disallowed Origin, ``403`` as the
  endpoint would answer;
* anything else, ``429`` with the limit's text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import ClientError
from gateway.transport.base import refusal_frame

__all__ = [
    "MAX_HEAD",
    "SUBPROTOCOLS",
    "RequestHead",
    "accept_key",
    "answer",
    "http_response",
    "parse_head",
    "subprotocol",
    "switching_protocols",
]

SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")

#: A refused socket's request head is kept up to this many bytes (aiohttp's own limits are
#: 8190 bytes a line); past it, the socket is answered as a plain request.
MAX_HEAD = 16384

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE_NORMAL = b"\x88\x02\x03\xe8"  # FIN + close, code 1000


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased; a repeated header's values joined by ", "
    query: str = ""  # the request target after "?", undecoded


def parse_head(data: bytes) -> RequestHead | None:
    """The request line and headers of ``data`` (a head ending in a blank line), or None if
    they are not HTTP/1.x."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    line, *fields = head.split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon:
            return None
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = parts[1].partition("?")
    return RequestHead(parts[0], path, headers, query)


def accept_key(key: str) -> str | None:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (None: not 16 bytes of
    base64)."""
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(
        hashlib.sha1(key.encode() + _WS_GUID, usedforsecurity=False).digest()
    ).decode()


def _text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload  # an ERROR is < 64 KiB


def http_response(status: str, text: str) -> bytes:
    """A whole plain-text response that closes the connection."""
    body = text.encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def answer(
    head: RequestHead | None,
    error: ClientError,
    ws_path: str,
    check_origin: Callable[[str | None, str], str | None],
) -> tuple[bytes, bool]:
    """The bytes that answer a refused socket's request, and whether they upgraded it to a
    WebSocket (whose client then answers the close frame). ``check_origin(origin, host)``
    says why an upgrade's Origin is refused (``Access.check_origin``), or None."""
    headers = {} if head is None else head.headers
    accept = accept_key(headers.get("sec-websocket-key", ""))
    upgrade = (
        head is not None
        and head.method == "GET"
        and head.path == ws_path
        and headers.get("upgrade", "").lower() == "websocket"
        and "upgrade" in headers.get("connection", "").lower()
        and headers.get("sec-websocket-version", "") in ("13", "8", "7")
        and accept is not None
    )
    if not upgrade or accept is None:
        return http_response(f"429 {error.detail}", error.detail), False
    origin_refusal = check_origin(headers.get("origin"), headers.get("host", ""))
    if origin_refusal is not None:
        return http_response(f"403 {origin_refusal}", origin_refusal), False
    handshake = switching_protocols(accept, subprotocol(headers))
    return handshake + _text_frame(refusal_frame(error)) + _CLOSE_NORMAL, True


def subprotocol(headers: dict[str, str]) -> str | None:
    """The STOMP subprotocol agreed: the client's first offer that the node speaks (as
    aiohttp's ``WebSocketResponse`` chooses), or None."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    return next((p for p in offered if p in SUBPROTOCOLS), None)


def switching_protocols(accept: str, protocol: str | None) -> bytes:
    """The ``101`` response that upgrades a socket to a WebSocket (no extension)."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: upgrade",
        f"Sec-WebSocket-Accept: {accept}",
    ]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
