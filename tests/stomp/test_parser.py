"""Parser basics: framing, streaming, EOLs, CRLF, bodies and escaping by version."""

from __future__ import annotations

import pytest

from gateway.stomp import Frame, HeartBeat, Parser

from .helpers import drain, frames_only, parse_all, parse_chunks

SEND = b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello\x00"
SEND_FRAME = Frame("SEND", (("destination", "/queue/a"), ("content-type", "text/plain")), b"hello")


def test_single_frame() -> None:
    assert parse_all(SEND) == [SEND_FRAME]


def test_frame_without_headers_or_body() -> None:
    assert parse_all(b"DISCONNECT\n\n\x00") == [Frame("DISCONNECT")]


def test_nothing_until_nul() -> None:
    parser = Parser()
    parser.feed(SEND[:-1])
    assert parser.next_event() is None
    parser.feed(b"\x00")
    assert parser.next_event() == SEND_FRAME
    assert parser.next_event() is None
    assert parser.buffered == 0


def test_byte_at_a_time() -> None:
    data = SEND + b"\n" + b"ACK\nid:1\r\n\r\n\x00"
    events = parse_chunks([data[i : i + 1] for i in range(len(data))])
    assert events == [SEND_FRAME, HeartBeat(), Frame("ACK", (("id", "1"),))]


@pytest.mark.parametrize("size", [2, 3, 5, 7, 11])
def test_arbitrary_chunking(size: int) -> None:
    data = (SEND + b"\n\n") * 3
    events = parse_chunks([data[i : i + size] for i in range(0, len(data), size)])
    assert frames_only(events) == [SEND_FRAME] * 3


def test_several_frames_in_one_chunk() -> None:
    data = SEND + SEND + b"COMMIT\ntransaction:t\n\n\x00"
    assert parse_all(data) == [SEND_FRAME, SEND_FRAME, Frame("COMMIT", (("transaction", "t"),))]


def test_heartbeats_between_frames_are_coalesced() -> None:
    data = b"\n\n\r\n" + SEND + b"\n\n\n" + SEND + b"\r\n"
    assert parse_all(data) == [HeartBeat(), SEND_FRAME, HeartBeat(), SEND_FRAME, HeartBeat()]


def test_heartbeat_alone() -> None:
    assert parse_all(b"\n") == [HeartBeat()]
    assert parse_chunks([b"\n", b"\n", b"\r", b"\n"]) == [HeartBeat()] * 4


def test_crlf_line_endings() -> None:
    data = b"SEND\r\ndestination:/queue/a\r\ncontent-type:text/plain\r\n\r\nhello\x00"
    assert parse_all(data) == [SEND_FRAME]


def test_mixed_line_endings() -> None:
    data = b"SEND\r\ndestination:/queue/a\ncontent-type:text/plain\r\n\nhello\x00"
    assert parse_all(data) == [SEND_FRAME]


def test_crlf_blank_line_right_after_lf_line() -> None:
    assert parse_all(b"SEND\ndestination:x\n\r\nbody\x00") == [
        Frame("SEND", (("destination", "x"),), b"body")
    ]


def test_crlf_accepted_in_every_version() -> None:
    for version in ("1.0", "1.1", "1.2"):
        assert parse_all(b"ACK\r\nid:1\r\n\r\n\x00", version) == [Frame("ACK", (("id", "1"),))]


def test_content_length_body_with_nuls() -> None:
    data = b"SEND\ndestination:d\ncontent-length:5\n\na\x00b\x00c\x00"
    [frame] = parse_all(data)
    assert isinstance(frame, Frame)
    assert frame.body == b"a\x00b\x00c"


def test_content_length_zero() -> None:
    assert parse_all(b"SEND\ncontent-length:0\n\n\x00") == [
        Frame("SEND", (("content-length", "0"),))
    ]


def test_content_length_streamed_byte_at_a_time() -> None:
    body = bytes(range(256)) * 4
    data = b"SEND\ncontent-length:%d\n\n" % len(body) + body + b"\x00"
    events = parse_chunks([data[i : i + 1] for i in range(len(data))])
    assert events == [Frame("SEND", (("content-length", str(len(body))),), body)]


def test_first_content_length_wins() -> None:
    [frame] = parse_all(b"SEND\ncontent-length:2\ncontent-length:9\n\nab\x00")
    assert isinstance(frame, Frame)
    assert frame.body == b"ab"


def test_content_length_with_surrounding_spaces_is_tolerated() -> None:
    [frame] = parse_all(b"SEND\ncontent-length: 2 \n\nab\x00")
    assert isinstance(frame, Frame)
    assert frame.body == b"ab"


def test_repeated_headers_kept_in_order_first_wins() -> None:
    [frame] = parse_all(b"MESSAGE\nfoo:1\nfoo:2\n\n\x00")
    assert isinstance(frame, Frame)
    assert frame.headers == (("foo", "1"), ("foo", "2"))
    assert frame.header("foo") == "1"


def test_values_keep_whitespace_and_colons() -> None:
    [frame] = parse_all(b"SEND\n a : b:c \nempty:\n\n\x00", "1.0")
    assert isinstance(frame, Frame)
    assert frame.headers == ((" a ", " b:c "), ("empty", ""))


def test_utf8_headers() -> None:
    [frame] = parse_all("SEND\ndestination:/topic/caf\u00e9\n\n\x00".encode())
    assert isinstance(frame, Frame)
    assert frame.header("destination") == "/topic/caf\u00e9"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_unescaping_in_11_and_12(version: str) -> None:
    data = b"SEND\nk\\cx:a\\nb\\cc\\\\d\\re\n\n\x00"
    [frame] = parse_all(data, version)
    assert isinstance(frame, Frame)
    assert frame.headers == (("k:x", "a\nb:c\\d\re"),)


def test_no_unescaping_in_10() -> None:
    [frame] = parse_all(b"SEND\nk:a\\nb\\t\n\n\x00", "1.0")
    assert isinstance(frame, Frame)
    assert frame.headers == (("k", "a\\nb\\t"),)


@pytest.mark.parametrize("command", ["CONNECT", "STOMP", "CONNECTED"])
def test_connect_frames_never_unescaped(command: str) -> None:
    data = command.encode() + b"\npasscode:p\\ss\\c\n\n\x00"
    [frame] = parse_all(data, "1.2")
    assert isinstance(frame, Frame)
    assert frame.header("passcode") == "p\\ss\\c"


def test_version_change_applies_to_next_frame() -> None:
    parser = Parser(version="1.2")
    parser.feed(b"SEND\nk:a\\cb\n\n\x00SEND\nk:a\\cb\n\n\x00")
    first = parser.next_event()
    parser.version = "1.0"
    second = parser.next_event()
    assert isinstance(first, Frame)
    assert isinstance(second, Frame)
    assert first.header("k") == "a:b"
    assert second.header("k") == "a\\cb"


def test_invalid_version_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported STOMP version"):
        Parser(version="2.0")


def test_empty_feed_and_drain() -> None:
    parser = Parser()
    parser.feed(b"")
    assert drain(parser) == []
    assert not parser.dead


def test_trailing_partial_frame_kept() -> None:
    parser = Parser()
    parser.feed(SEND + b"SEN")
    assert drain(parser) == [SEND_FRAME]
    assert parser.buffered == 3
    parser.feed(b"D\n\n\x00")
    assert drain(parser) == [Frame("SEND")]
