"""Malformed input: exactly one ProtocolError with a precise message, then nothing."""

from __future__ import annotations

import pytest

from gateway.stomp import Frame, Parser, ProtocolError
from gateway.stomp.errors import ProtocolMessage as M

from .helpers import first_line, parse_all

CASES = [
    (b"SEND\nnocolon\n\n\x00", "1.2", M.INVALID_FRAME, "header line without ':'"),
    (b"SEND\n:value\n\n\x00", "1.2", M.INVALID_FRAME, "header line without name"),
    (
        b"SEND\nk:a\\tb\n\n\x00",
        "1.2",
        M.INVALID_HEADER,
        "invalid escape sequence '\\\\t' in header",
    ),
    (
        b"SEND\nk:a\\tb\n\n\x00",
        "1.1",
        M.INVALID_HEADER,
        "invalid escape sequence '\\\\t' in header",
    ),
    (
        b"SEND\nk:trailing\\\n\n\x00",
        "1.2",
        M.INVALID_HEADER,
        "invalid escape sequence '\\\\' in header",
    ),
    (b"SEND\nk:\xff\xfe\n\n\x00", "1.2", M.INVALID_FRAME, "invalid UTF-8 in frame header"),
    (b"\xc3\x28\n\n\x00", "1.0", M.INVALID_FRAME, "invalid UTF-8 in frame header"),
    (b"SEND\ncontent-length:abc\n\n\x00", "1.2", M.INVALID_HEADER, "invalid content-length: 'abc'"),
    (b"SEND\ncontent-length:-1\n\n\x00", "1.2", M.INVALID_HEADER, "invalid content-length: '-1'"),
    (b"SEND\ncontent-length:\n\n\x00", "1.2", M.INVALID_HEADER, "invalid content-length: ''"),
    (
        b"SEND\ncontent-length:\xd9\xa3\n\n\x00",
        "1.2",
        M.INVALID_HEADER,
        "invalid content-length: '\u0663'",
    ),
    (
        b"SEND\ncontent-length:2\n\nabc\x00",
        "1.2",
        M.INVALID_FRAME,
        "frame body not followed by NUL",
    ),
]


@pytest.mark.parametrize(("data", "version", "message", "what"), CASES)
def test_error_message(data: bytes, version: str, message: str, what: str) -> None:
    events = parse_all(data, version)
    assert len(events) == 1
    [error] = events
    assert isinstance(error, ProtocolError)
    assert (error.message, first_line(error)) == (message, what)
    assert "\n" in error.detail  # what, then why


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
            ("content-type", "text/plain"),
            ("content-length", "12"),
        ),
        b"details here",
    )


def test_error_frame_without_detail_and_multiline_message() -> None:
    frame = ProtocolError("a\nb\rc\x00d").frame()
    assert frame == Frame("ERROR", (("message", "a b c d"),))


def test_error_body_never_holds_a_nul() -> None:
    """A client that reads a body up to the first NUL (ignoring content-length) must not see
    a second frame in it: text reflected from a client (a JSON key holding \\u0000) cannot
    end the ERROR early."""
    frame = ProtocolError("Invalid message", "key 'a\x00ERROR' is not allowed", None).frame(
        (("stompgate-reason", "invalid"),)
    )
    assert b"\x00" not in frame.body
    assert frame.body == b"key 'a\\x00ERROR' is not allowed"
    assert frame.header("stompgate-reason") == "invalid"
    assert frame.header("content-length") == str(len(frame.body))


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"SEND\ndestination:/t\nx:a\x00ERROR\n\nbody\x00", "NUL byte in header 'x'"),
        (b"SEND\ndestination:/t\nx\x00y:1\n\nbody\x00", "NUL byte in header 'x\\x00y'"),
        (b"SE\x00ND\ndestination:/t\n\nbody\x00", "NUL byte in the command 'SE\\x00ND'"),
    ],
)
def test_a_nul_in_a_header_is_refused_naming_it(data: bytes, what: str, version: str) -> None:
    """A header value holding a NUL would end the frame wherever the node relays it."""
    [error] = parse_all(data, version)
    assert isinstance(error, ProtocolError)
    assert (error.message, first_line(error)) == (M.INVALID_HEADER, what)


def test_a_cr_inside_a_10_header_is_refused() -> None:
    """1.0 has no escaping: a CR inside a value could not be written back (RECEIPT,
    MESSAGE subscription); a trailing CR is a CRLF line end and stays allowed."""
    [error] = parse_all(b"SEND\ndestination:/t\nreceipt:a\rb\n\n\x00", "1.0")
    assert isinstance(error, ProtocolError)
    assert (error.message, first_line(error)) == (M.INVALID_HEADER, "CR in header 'receipt'")
    [frame] = parse_all(b"SEND\r\ndestination:/t\r\nreceipt:r\r\n\r\n\x00", "1.0")
    assert frame == Frame("SEND", (("destination", "/t"), ("receipt", "r")))
    [frame] = parse_all(b"SEND\ndestination:/t\nx:a\rb\n\n\x00", "1.2")
    assert frame == Frame("SEND", (("destination", "/t"), ("x", "a\rb")))
    [frame] = parse_all(b"CONNECT\npasscode:a\rb\n\n\x00", "1.0")
    assert isinstance(frame, Frame)


def test_long_peer_data_is_truncated_in_messages() -> None:
    [error] = parse_all(b"SEND\ncontent-length:" + b"x" * 500 + b"\n\n\x00")
    assert isinstance(error, ProtocolError)
    assert first_line(error) == "invalid content-length: '" + "x" * 60 + "'..."
