"""Limits are enforced while streaming, with messages naming limit and value."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.stomp import Frame, Limits, Parser, ProtocolError

from .helpers import drain, first_line, parse_all, parse_chunks


def only_error(events: Sequence[object]) -> ProtocolError:
    assert len(events) == 1, events
    [error] = events
    assert isinstance(error, ProtocolError)
    return error


def test_frame_exactly_at_limit_is_accepted() -> None:
    data = b"SEND\n\n" + b"x" * 10 + b"\x00"  # 17 bytes
    assert parse_all(data, limits=Limits(max_frame_size=17)) == [Frame("SEND", (), b"x" * 10)]


def test_frame_one_byte_over_limit() -> None:
    data = b"SEND\n\n" + b"x" * 11 + b"\x00"  # 18 bytes
    error = only_error(parse_all(data, limits=Limits(max_frame_size=17)))
    assert first_line(error) == "frame too large: 18 bytes > max_frame_size 17"


def test_default_limit_message() -> None:
    body = b"x" * (4 * 1024 * 1024 - 6)  # SEND\n\n + body + NUL = 4 MiB + 1
    error = only_error(parse_all(b"SEND\n\n" + body + b"\x00"))
    assert first_line(error) == "frame too large: 4194305 bytes > max_frame_size 4194304"


def test_content_length_over_limit_detected_before_body_arrives() -> None:
    parser = Parser(Limits(max_frame_size=1000))
    parser.feed(b"SEND\ncontent-length:5000\n\n")
    error = parser.next_event()
    assert isinstance(error, ProtocolError)
    assert first_line(error) == "frame too large: 5027 bytes > max_frame_size 1000"


def test_body_without_nul_detected_while_streaming() -> None:
    parser = Parser(Limits(max_frame_size=1000))
    parser.feed(b"SEND\n\n")
    assert parser.next_event() is None
    fed = 6
    result = None
    while result is None and fed < 10_000:
        parser.feed(b"x" * 100)
        fed += 100
        result = parser.next_event()
    assert isinstance(result, ProtocolError)
    assert first_line(result) == "frame too large: 1006 bytes > max_frame_size 1000"
    assert parser.buffered == 0


def test_endless_header_line_detected_while_streaming() -> None:
    parser = Parser(Limits(max_header_line=100))
    parser.feed(b"SEND\nk:")
    assert parser.next_event() is None
    for _ in range(3):
        parser.feed(b"v" * 40)
        event = parser.next_event()
    assert isinstance(event, ProtocolError)
    assert first_line(event) == "header line too long: 122 bytes > max_header_line 100"


def test_endless_command_line_detected_while_streaming() -> None:
    events = parse_chunks([b"X" * 50] * 3, limits=Limits(max_header_line=100))
    error = only_error(events)
    assert first_line(error) == "header line too long: 150 bytes > max_header_line 100"


def test_header_line_too_long_in_complete_frame() -> None:
    data = b"SEND\nk:" + b"v" * 100 + b"\n\n\x00"
    error = only_error(parse_all(data, limits=Limits(max_header_line=100)))
    assert first_line(error) == "header line too long: 102 bytes > max_header_line 100"


def test_header_line_at_limit_with_crlf() -> None:
    data = b"SEND\r\nk:" + b"v" * 98 + b"\r\n\r\n\x00"
    [frame] = parse_all(data, limits=Limits(max_header_line=100))
    assert isinstance(frame, Frame)


def test_too_many_headers_in_complete_frame() -> None:
    data = b"SEND\n" + b"h:1\n" * 4 + b"\n\x00"
    assert len(parse_all(data, limits=Limits(max_headers=4))) == 1
    assert isinstance(parse_all(data, limits=Limits(max_headers=4))[0], Frame)
    data = b"SEND\n" + b"h:1\n" * 5 + b"\n\x00"
    error = only_error(parse_all(data, limits=Limits(max_headers=4)))
    assert first_line(error) == "too many headers: 5 > max_headers 4"


def test_too_many_headers_detected_while_streaming() -> None:
    parser = Parser(Limits(max_headers=4))
    events: list[object] = []
    for _ in range(10):
        parser.feed(b"h:1\n" if events or parser.buffered else b"SEND\n")
        events.extend(drain(parser))
        if events:
            break
    error = only_error(events)
    assert first_line(error) == "too many headers: 5 > max_headers 4"


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_huge_input_rejected_with_bounded_buffering(chunk: int) -> None:
    limits = Limits(max_frame_size=2048, max_header_line=8192)
    parser = Parser(limits)
    piece = b"A" * chunk
    fed = 0
    error = None
    while error is None:
        parser.feed(piece)
        fed += chunk
        assert parser.buffered <= limits.max_frame_size + chunk
        error = parser.next_event()
        assert fed < 100_000
    assert isinstance(error, ProtocolError)
    assert first_line(error).startswith("frame too large")


def test_absurd_content_length_is_too_large_not_a_crash() -> None:
    error = only_error(parse_all(b"SEND\ncontent-length:" + b"9" * 5000 + b"\n\n\x00"))
    assert first_line(error) == (
        "frame too large: content-length '" + "9" * 24 + "'... > max_frame_size 4194304"
    )
