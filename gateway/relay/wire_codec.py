"""AMQP 0-9-1 framing for :mod:`gateway.relay.wire`: the hot frames by hand, the rest by pamqp.

The frames the node sends or receives once per message (``basic.publish`` with its content
header and body, ``basic.ack``/``basic.nack`` confirms, ``basic.deliver``) are packed and
unpacked here with :mod:`struct`, a few hundred nanoseconds each. Everything else (the
handshake, declares, binds, closes) goes through pamqp, the codec aiormq itself uses, so no
second copy of the AMQP specification lives in this project.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from typing import Final

from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.base import Frame as MethodFrame
from pamqp.header import ContentHeader

log = logging.getLogger("stompgate.relay")

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "HEAD",
    "HEARTBEAT",
    "PROTOCOL_HEADER",
    "ContentHeaderTooLargeError",
    "MethodFrame",
    "decode_method",
    "encode_method",
    "encode_properties",
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


class ContentHeaderTooLargeError(ValueError):
    """A publish's properties (its content header frame) do not fit in one frame; the
    broker would answer it with FRAME_ERROR, a connection error. Nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message properties of {size} bytes do not fit in one frame ({limit})")
        self.size = size
        self.limit = limit


def shortstr(data: bytes, offset: int) -> tuple[str, int]:
    """An AMQP short string at ``offset``: (text, offset after it)."""
    end = offset + 1 + data[offset]
    return data[offset + 1 : end].decode("utf-8", "surrogateescape"), end


def _text_shortstr(data: bytes, offset: int) -> tuple[str, int]:
    """Like :func:`shortstr`, but bytes that are not UTF-8 become U+FFFD (pamqp would
    raise; a surrogate escape would fail later, when the MESSAGE frame is encoded)."""
    end = offset + 1 + data[offset]
    return data[offset + 1 : end].decode("utf-8", "replace"), end


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
    """``basic.publish``, its content header and body frames, as one byte string. Raises
    ValueError (a name that is not a short string) or :class:`ContentHeaderTooLargeError`."""
    args = (
        _pack_shortstr(exchange) + _pack_shortstr(routing_key) + (b"\x01" if mandatory else b"\x00")
    )
    method = _PUBLISH_START.pack(FRAME_METHOD, channel, 6 + len(args), _BASIC, _PUBLISH, 0) + args
    props = encode_properties(properties)
    if 12 + len(props) > frame_max - 8:  # a header frame is never split (AMQP 4.2.6)
        raise ContentHeaderTooLargeError(12 + len(props), frame_max - 8)
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
    body_size: int = _BODY_SIZE.unpack_from(payload, 4)[0]
    flags: int = _FLAGS.unpack_from(payload, 12)[0]
    if not flags:
        return body_size, spec.Basic.Properties()
    if not flags & _SLOW_FLAGS:
        found = _decode_properties(payload, flags)
        if found is not None:
            return body_size, found
    header = ContentHeader()
    try:
        header.unmarshal(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        # One message with properties pamqp cannot read (a short string that is not UTF-8,
        # next to a timestamp) must not cost the connection: deliver it without them.
        log.warning("message properties unreadable (%s); delivering without them", exc)
        return body_size, spec.Basic.Properties()
    return body_size, header.properties


# -- properties: the common case by hand, the rest by pamqp ------------------------------------
#
# Basic's properties, in wire order, with their flag bits. A shortstr is a length octet and
# UTF-8; the headers table is a long length and entries (shortstr name, type octet, value);
# delivery mode and priority are octets. Tables whose values are all strings ('S', a long
# length and UTF-8), and everything but the timestamp (and the reserved continuation bit),
# are handled here; pamqp does the rest, and tests hold both to the same bytes.

_BODY_SIZE: Final = struct.Struct(">Q")
_FLAGS: Final = struct.Struct(">H")
_LONG: Final = struct.Struct(">I")
_SHORTSTR_FIELDS: Final = (
    (0x8000, "content_type"),
    (0x4000, "content_encoding"),
)
_HEADERS: Final = 0x2000
_DELIVERY_MODE: Final = 0x1000
_PRIORITY: Final = 0x0800
_TAIL_FIELDS: Final = (
    (0x0400, "correlation_id"),
    (0x0200, "reply_to"),
    (0x0100, "expiration"),
    (0x0080, "message_id"),
)
_TIMESTAMP: Final = 0x0040
_LAST_FIELDS: Final = (
    (0x0020, "message_type"),
    (0x0010, "user_id"),
    (0x0008, "app_id"),
    (0x0004, "cluster_id"),
)
_SLOW_FLAGS: Final = _TIMESTAMP | 0x0001


def encode_properties(p: spec.Basic.Properties) -> bytes:
    """The property flags and values of a content header (as pamqp's ``marshal``)."""
    if p.timestamp is not None:
        return p.marshal()
    headers = p.headers
    table = b""
    if headers is not None:
        encoded = _encode_table(headers)
        if encoded is None:
            return p.marshal()
        table = encoded
    flags = 0
    parts: list[bytes] = []
    for bit, name in _SHORTSTR_FIELDS:
        value = getattr(p, name)
        if value is not None and value != "":  # pamqp leaves empty strings out
            flags |= bit
            parts.append(_pack_shortstr(value))
    if headers is not None:
        flags |= _HEADERS
        parts.append(table)
    if p.delivery_mode is not None:
        flags |= _DELIVERY_MODE
        parts.append(bytes((p.delivery_mode,)))
    if p.priority is not None:
        flags |= _PRIORITY
        parts.append(bytes((p.priority,)))
    for fields in (_TAIL_FIELDS, _LAST_FIELDS):
        for bit, name in fields:
            value = getattr(p, name)
            if value is not None and value != "":
                flags |= bit
                parts.append(_pack_shortstr(value))
    return _FLAGS.pack(flags) + b"".join(parts)


def _encode_table(table: Mapping[str, object]) -> bytes | None:
    """A field table whose values are all strings, as pamqp writes it (names sorted);
    None for anything else (pamqp's job)."""
    out: list[bytes] = []
    for name, value in sorted(table.items()):
        if type(value) is not str:
            return None
        key = name.encode("utf-8")
        if len(key) > 128:  # pamqp truncates such names (with a warning)
            return None
        raw = value.encode("utf-8")
        out += (bytes((len(key),)), key, b"S", _LONG.pack(len(raw)), raw)
    body = b"".join(out)
    return _LONG.pack(len(body)) + body


def _decode_properties(data: bytes, flags: int) -> spec.Basic.Properties | None:
    """Properties after the flag word at offset 14; None if pamqp must do it."""
    values: dict[str, object] = {}
    at = 14
    for bit, name in _SHORTSTR_FIELDS:
        if flags & bit:
            values[name], at = _text_shortstr(data, at)
    if flags & _HEADERS:
        size = _LONG.unpack_from(data, at)[0]
        at += 4
        end = at + size
        table: dict[str, object] = {}
        while at < end:
            name, at = _text_shortstr(data, at)
            if data[at] != 0x53:  # 'S'
                return None
            length = _LONG.unpack_from(data, at + 1)[0]
            raw = data[at + 5 : at + 5 + length]
            at += 5 + length
            try:
                table[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                table[name] = raw  # as pamqp does
        values["headers"] = table
    if flags & _DELIVERY_MODE:
        values["delivery_mode"] = data[at]
        at += 1
    if flags & _PRIORITY:
        values["priority"] = data[at]
        at += 1
    for fields in (_TAIL_FIELDS, _LAST_FIELDS):
        for bit, name in fields:
            if flags & bit:
                values[name], at = _text_shortstr(data, at)
    return spec.Basic.Properties(**values)  # type: ignore[arg-type]
