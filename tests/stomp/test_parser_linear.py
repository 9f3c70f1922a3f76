"""Byte-at-a-time feeding costs linear time: nothing is rescanned from the frame start."""

from __future__ import annotations

import time

from gateway.stomp import Frame, Limits, Parser


def feed_bytewise(parser: Parser, data: bytes) -> list[object]:
    out: list[object] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        event = parser.next_event()
        if event is not None:
            out.append(event)
    return out


def test_large_header_block_bytewise_is_linear() -> None:
    headers = b"".join(b"h%02d:%s\n" % (i, b"v" * 900) for i in range(60))  # ~55 KB
    data = b"SEND\n" + headers + b"\nbody\x00"
    start = time.perf_counter()
    [frame] = feed_bytewise(Parser(Limits(max_header_line=1000)), data)
    elapsed = time.perf_counter() - start
    assert isinstance(frame, Frame)
    assert len(frame.headers) == 60
    assert elapsed < 5.0  # quadratic rescanning would take minutes


def test_large_body_without_content_length_bytewise_is_linear() -> None:
    data = b"SEND\n\n" + b"x" * 200_000 + b"\x00"
    start = time.perf_counter()
    [frame] = feed_bytewise(Parser(), data)
    elapsed = time.perf_counter() - start
    assert isinstance(frame, Frame)
    assert len(frame.body) == 200_000
    assert elapsed < 5.0


def test_many_heartbeats_bytewise() -> None:
    parser = Parser()
    events = feed_bytewise(parser, b"\n" * 50_000 + b"ACK\nid:1\n\n\x00")
    assert events[-1] == Frame("ACK", (("id", "1"),))
    assert len(events) == 50_001
