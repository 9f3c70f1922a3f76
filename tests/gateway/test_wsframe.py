"""The lean path's WebSocket reader (gateway/transport/wsframe.py), held to wsproto's.

Any sequence of client frames (messages split in fragments with control frames between
them, close frames with any code and reason, frames that break the RFC), in any chunking,
decodes the same with both: the same messages and control frames in the same order, then the
same error close code (1002, 1007) or none. wsproto's reader has no message size limit: the
limit (1009) is tested on its own. Lengths are always minimally encoded (wsproto refuses
others; browsers never send them).
"""

from __future__ import annotations

import os
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from gateway.transport.wsframe import (
    ERROR,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    unmask,
    unmask_int,
)

Event = tuple[int, object]

CLOSE_CODES = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013]),
    st.sampled_from([0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535]),
    st.integers(3000, 4999),
    st.integers(0, 65535),
)


def raw_frame(first: int, payload: bytes, *, masked: bool = True, mask: bytes = b"") -> bytes:
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = mask or os.urandom(4)
    return head + mask + unmask_int(payload, mask)


@st.composite
def message(draw: st.DrawFn) -> list[bytes]:
    """A data message in 1-4 fragments, with pings/pongs between them."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
    if opcode == OP_TEXT and draw(st.booleans()):
        data = draw(st.text(max_size=300)).encode()
    else:
        data = draw(st.binary(max_size=300))  # as text: mostly invalid UTF-8
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    frames = []
    for index, piece in enumerate(pieces):
        final = 0x80 if index == len(pieces) - 1 else 0
        frames.append(raw_frame(final | (opcode if index == 0 else 0), piece))
        if not final and draw(st.booleans()):
            frames.append(draw(control()))
    return frames


@st.composite
def control(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([OP_PING, OP_PONG]))
    return raw_frame(0x80 | opcode, draw(st.binary(max_size=125)))


@st.composite
def close(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        payload = b""
    elif kind == 1:
        payload = draw(st.binary(min_size=1, max_size=1))
    else:
        reason = (
            draw(st.text(max_size=40)).encode()[:123] if kind == 2 else draw(st.binary(max_size=20))
        )
        payload = draw(CLOSE_CODES).to_bytes(2, "big") + reason
    return raw_frame(0x80 | OP_CLOSE, payload)


@st.composite
def broken(draw: st.DrawFn) -> bytes:
    """A frame with any first byte (reserved bits, opcodes, FIN), masked or not, any size."""
    first = draw(st.integers(0, 255))
    payload = draw(st.binary(max_size=200))
    return raw_frame(first, payload, masked=draw(st.booleans()))


STREAM = st.lists(
    st.one_of(message(), control().map(lambda f: [f]), close().map(lambda f: [f])),
    max_size=8,
).flatmap(
    lambda items: st.lists(st.booleans(), min_size=len(items), max_size=len(items)).flatmap(
        lambda _: st.just(items)
    )
)


@st.composite
def stream(draw: st.DrawFn) -> bytes:
    items = draw(STREAM)
    frames = [frame for item in items for frame in item]
    if frames and draw(st.integers(0, 3)) == 0:
        frames.insert(draw(st.integers(0, len(frames))), draw(broken()))
    return b"".join(frames)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def ours(chunks: list[bytes]) -> tuple[list[Event], int | None]:
    reader = FrameReader(1 << 20)
    events: list[Event] = []
    for chunk in chunks:
        for opcode, payload in reader.feed(chunk):
            if opcode == ERROR:
                assert reader.error is not None
                return events, reader.error.code
            if opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if payload else 1005
                events.append((opcode, (code, payload[2:].decode())))
            elif opcode == OP_TEXT:
                events.append((opcode, payload.decode()))
            else:
                events.append((opcode, payload))
    return events, None


def reference(chunks: list[bytes]) -> tuple[list[Event], int | None]:
    """wsproto's frames, partial payloads joined into messages, up to the first close."""
    protocol = FrameProtocol(client=False, extensions=[])
    events: list[Event] = []
    parts: list[object] = []
    try:
        for chunk in chunks:
            protocol.receive_bytes(chunk)
            for frame in protocol.received_frames():
                opcode = int(frame.opcode)
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                    parts.append(frame.payload)
                    if frame.message_finished:
                        text = isinstance(parts[0], str)
                        joined = "".join(parts) if text else b"".join(parts)  # type: ignore[arg-type]
                        events.append((OP_TEXT if text else OP_BINARY, joined))
                        parts = []
                elif frame.opcode is Opcode.CLOSE:
                    code, reason = cast(tuple[int, str], frame.payload)
                    events.append((opcode, (int(code), reason)))
                    return events, None
                elif frame.frame_finished:
                    events.append((opcode, bytes(frame.payload)))  # type: ignore[arg-type]
    except ParseFailed as exc:
        return events, int(exc.code)
    return events, None


@settings(max_examples=400, deadline=None)
@given(stream(), st.lists(st.integers(0, 1 << 16), max_size=12))
def test_any_frames_in_any_chunks_decode_as_wsproto_decodes_them(
    data: bytes, cuts: list[int]
) -> None:
    chunks = chunked(data, cuts)
    assert ours(chunks) == reference(chunks)
    assert ours(chunks) == ours([data])  # the chunking never matters


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_both_unmaskings_agree(payload: bytes, mask: bytes) -> None:
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert unmask(payload, mask) == unmask_int(payload, mask) == expected


def test_a_message_over_the_limit_is_1009_before_its_payload_arrives() -> None:
    reader = FrameReader(1000)
    head = raw_frame(0x80 | OP_TEXT, b"x" * 1001)[:8]  # the header only
    assert reader.feed(head) == [(ERROR, b"")]
    assert reader.error is not None
    assert reader.error.code == 1009
    assert reader.feed(b"anything") == []  # done


def test_fragments_count_toward_the_limit_together() -> None:
    reader = FrameReader(1000)
    assert reader.feed(raw_frame(OP_BINARY, b"x" * 600)) == []
    assert reader.buffered == 600
    assert reader.feed(raw_frame(0x80, b"x" * 401)) == [(ERROR, b"")]
    assert reader.error is not None
    assert reader.error.code == 1009
    reader = FrameReader(1000)
    reader.feed(raw_frame(OP_BINARY, b"x" * 600))
    assert reader.feed(raw_frame(0x80, b"y" * 400)) == [(OP_BINARY, b"x" * 600 + b"y" * 400)]
    assert reader.buffered == 0


def test_nothing_is_read_after_a_close() -> None:
    reader = FrameReader(1000)
    data = raw_frame(0x80 | OP_CLOSE, (1000).to_bytes(2, "big")) + raw_frame(0x81, b"late")
    assert reader.feed(data) == [(OP_CLOSE, (1000).to_bytes(2, "big"))]
    assert reader.feed(raw_frame(0x81, b"later")) == []
