"""AMQP 0-9-1 framing for :mod:`gateway.relay.wire`: the hot frames by hand, the rest by pamqp.

The frames the node sends or receives once per message (``basic.publish`` with its content
header and body, ``basic.ack``/``basic.nack`` confirms, ``basic.deliver``) are packed and
unpacked here with :mod:`struct`, a few hundred nanoseconds each. Everything else (the
handshake, declares, binds, closes) goes through pamqp, the codec aiormq itself uses, so no
second copy of the AMQP specification lives in this project.
"""

from __future__ import annotations

import struct
from typing import Final

from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.base import Frame as MethodFrame
from pamqp.header import ContentHeader

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "HEAD",
    "HEARTBEAT",
    "PROTOCOL_HEADER",
    "MethodFrame",
    "decode_method",
    "encode_method",
    "encode_publish",
    "read_properties",
    "shortstr",
]

FRAME_METHOD: Final = 1
FRAME_HEADER: Final = 2
FRAME_BODY: Final = 3
FRAME_HEARTBEAT: Final = 8
FRAME_END: Final = 0xCE
_END: Final = b"\xce"
PROTOCOL_HEADER: Final = b"AMQP\x00\x00\x09\x01"
HEARTBEAT: Final = b"\x08\x00\x00\x00\x00\x00\x00\xce"

#: type, channel, size: the 7 bytes in front of every frame's payload.
HEAD: Final = struct.Struct(">BHI")
_PUBLISH_START: Final = struct.Struct(">BHIHHH")  # frame head + class, method, reserved
_HEADER_START: Final = struct.Struct(">BHIHHQ")  # frame head + class, weight, body size
_BASIC: Final = 60
_PUBLISH: Final = 40


def shortstr(data: bytes, offset: int) -> tuple[str, int]:
    """An AMQP short string at ``offset``: (text, offset after it)."""
    end = offset + 1 + data[offset]
    return data[offset + 1 : end].decode("utf-8", "surrogateescape"), end


def _pack_shortstr(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError(f"AMQP short string over 255 bytes: {text[:40]!r}...")
    return bytes((len(raw),)) + raw


def encode_method(channel: int, method: MethodFrame) -> bytes:
    """A whole method frame for a (non-hot) pamqp method."""
    return pamqp_frame.marshal(method, channel)


def decode_method(payload: bytes) -> MethodFrame:
    """A method frame's payload (class id onwards) as a pamqp method object."""
    whole = HEAD.pack(FRAME_METHOD, 0, len(payload)) + payload + _END
    _, _, method = pamqp_frame.unmarshal(whole)
    if not isinstance(method, MethodFrame):  # pragma: no cover - pamqp returns methods here
        raise ValueError(f"not a method frame: {method!r}")
    return method


def encode_publish(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: spec.Basic.Properties,
    *,
    mandatory: bool,
    frame_max: int,
) -> bytes:
    """``basic.publish``, its content header and body frames, as one byte string."""
    args = (
        _pack_shortstr(exchange) + _pack_shortstr(routing_key) + (b"\x01" if mandatory else b"\x00")
    )
    method = _PUBLISH_START.pack(FRAME_METHOD, channel, 6 + len(args), _BASIC, _PUBLISH, 0) + args
    props = properties.marshal()
    header = _HEADER_START.pack(FRAME_HEADER, channel, 12 + len(props), _BASIC, 0, len(body))
    parts: list[bytes | memoryview] = [method, _END, header, props, _END]
    chunk = frame_max - 8
    size = len(body)
    if size <= chunk:
        if size:
            parts += (HEAD.pack(FRAME_BODY, channel, size), body, _END)
    else:
        view = memoryview(body)
        for start in range(0, size, chunk):
            piece = view[start : start + chunk]
            parts += (HEAD.pack(FRAME_BODY, channel, len(piece)), piece, _END)
    return b"".join(parts)


def read_properties(payload: bytes) -> tuple[int, spec.Basic.Properties]:
    """A content header frame's payload: (body size, properties)."""
    if len(payload) >= 14 and payload[12] == 0 and payload[13] == 0:
        return struct.unpack_from(">Q", payload, 4)[0], spec.Basic.Properties()
    header = ContentHeader()
    header.unmarshal(payload)
    return header.body_size, header.properties
