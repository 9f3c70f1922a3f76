"""Malformed input: exactly one ProtocolError with a precise message, then nothing."""

from __future__ import annotations

import pytest

from gateway.stomp import Frame, Parser, ProtocolError

from .helpers import parse_all

CASES = [
    (b"SEND\nnocolon\n\n\x00", "1.2", "header line without ':'"),
    (b"SEND\n:value\n\n\x00", "1.2", "header line without name"),
    (b"SEND\nk:a\\tb\n\n\x00", "1.2", "invalid escape sequence '\\\\t' in header"),
    (b"SEND\nk:a\\tb\n\n\x00", "1.1", "invalid escape sequence '\\\\t' in header"),
    (b"SEND\nk:trailing\\\n\n\x00", "1.2", "invalid escape sequence '\\\\' in header"),
    (b"SEND\nk:\xff\xfe\n\n\x00", "1.2", "invalid UTF-8 in frame header"),
    (b"\xc3\x28\n\n\x00", "1.0", "invalid UTF-8 in frame header"),
    (b"SEND\ncontent-length:abc\n\n\x00", "1.2", "invalid content-length: 'abc'"),
    (b"SEND\ncontent-length:-1\n\n\x00", "1.2", "invalid content-length: '-1'"),
    (b"SEND\ncontent-length:\n\n\x00", "1.2", "invalid content-length: ''"),
    (b"SEND\ncontent-length:\xd9\xa3\n\n\x00", "1.2", "invalid content-length: '\u0663'"),
    (b"SEND\ncontent-length:2\n\nabc\x00", "1.2", "frame body not followed by NUL"),
]


@pytest.mark.parametrize(("data", "version", "message"), CASES)
def test_error_message(data: bytes, version: str, message: str) -> None:
    events = parse_all(data, version)
    assert len(events) == 1
    [error] = events
    assert isinstance(error, ProtocolError)
    assert error.message == message
    assert error.detail


def test_frames_before_error_are_delivered() -> None:
    events = parse_all(b"ACK\nid:1\n\n\x00SEND\nbad\n\n\x00ACK\nid:2\n\n\x00")
    assert events[0] == Frame("ACK", (("id", "1"),))
    assert isinstance(events[1], ProtocolError)
    assert len(events) == 2


def test_parser_is_dead_after_error() -> None:
    parser = Parser()
    parser.feed(b"SEND\nbad\n\n\x00")
    assert isinstance(parser.next_event(), ProtocolError)
    assert parser.dead
    assert parser.next_event() is None
    parser.feed(b"ACK\nid:1\n\n\x00")
    assert parser.next_event() is None
    assert parser.buffered == 0


def test_escape_error_mentions_version() -> None:
    [error] = parse_all(b"SEND\nk:\\x\n\n\x00", "1.1")
    assert isinstance(error, ProtocolError)
    assert "STOMP 1.1" in error.detail


def test_error_frame_shape() -> None:
    error = ProtocolError("boom", "details here", "r-7", (("version", "1.2"),))
    assert error.frame() == Frame(
        "ERROR",
        (
            ("message", "boom"),
            ("receipt-id", "r-7"),
            ("version", "1.2"),
            ("content-type", "text/plain;charset=utf-8"),
            ("content-length", "12"),
        ),
        b"details here",
    )


def test_error_frame_without_detail_and_multiline_message() -> None:
    frame = ProtocolError("a\nb\rc").frame()
    assert frame == Frame("ERROR", (("message", "a b c"),))


def test_long_peer_data_is_truncated_in_messages() -> None:
    [error] = parse_all(b"SEND\ncontent-length:" + b"x" * 500 + b"\n\n\x00")
    assert isinstance(error, ProtocolError)
    assert error.message == "invalid content-length: '" + "x" * 60 + "'..."
