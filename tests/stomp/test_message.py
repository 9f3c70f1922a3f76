"""PreparedMessage: header order (RabbitMQ's), per-version caching, escaping, and the
filtering that keeps any relayed header from ending a line or the frame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.stomp import Frame, PreparedMessage, message_head

from .helpers import parse_all
from .strategies import any_text, versions


def make() -> PreparedMessage:
    return PreparedMessage(
        "/topic/room.1",
        [("content-type", "application/json"), ("event-type", "message")],
        b'{"t":"hi"}',
    )


def test_render_exact_bytes() -> None:
    """RabbitMQ's STOMP plugin's order: subscription, destination, message-id, then the
    message's own headers, then content-length (issue 14.9)."""
    assert make().render("1.2", "sub-0", "m-1") == (
        b"MESSAGE\nsubscription:sub-0\ndestination:/topic/room.1\nmessage-id:m-1\n"
        b"content-type:application/json\nevent-type:message\ncontent-length:10\n\n"
        b'{"t":"hi"}\x00'
    )


def test_render_with_ack_header_order() -> None:
    [frame] = parse_all(make().render("1.2", "s", "m", ack="a-1"))
    assert isinstance(frame, Frame)
    assert [name for name, _ in frame.headers] == [
        "subscription",
        "destination",
        "message-id",
        "ack",
        "content-type",
        "event-type",
        "content-length",
    ]
    assert frame.header("ack") == "a-1"


@pytest.mark.parametrize("ack", [None, "a-1"])
def test_redelivered_comes_right_after_message_id_and_before_ack(ack: str | None) -> None:
    """As RabbitMQ writes it: ``redelivered`` first of the message's headers, ``ack``
    after it; a repeated ``redelivered`` is dropped."""
    message = PreparedMessage(
        "/queue/q",
        [("x-a", "1"), ("redelivered", "true"), ("x-b", "2"), ("redelivered", "false")],
        b"m",
    )
    [frame] = parse_all(message.render("1.2", "s", "m-1", ack))
    assert isinstance(frame, Frame)
    expected = ["subscription", "destination", "message-id", "redelivered"]
    expected += ["ack"] if ack else []
    assert [name for name, _ in frame.headers] == [*expected, "x-a", "x-b", "content-length"]
    assert frame.header("redelivered") == "true"


def test_tail_cached_per_version() -> None:
    message = make()
    tail = message.tail("1.2")
    assert message.tail("1.2") is tail
    assert message.tail("1.1") is not tail
    assert message.render("1.2", "a", "b").endswith(tail)


def test_reserved_headers_dropped() -> None:
    message = PreparedMessage(
        "/d",
        [
            ("destination", "/other"),
            ("subscription", "x"),
            ("message-id", "x"),
            ("ack", "x"),
            ("content-length", "999"),
            ("keep", "1"),
        ],
        b"ab",
    )
    [frame] = parse_all(message.render("1.2", "s", "m"))
    assert frame == Frame(
        "MESSAGE",
        (
            ("subscription", "s"),
            ("destination", "/d"),
            ("message-id", "m"),
            ("keep", "1"),
            ("content-length", "2"),
        ),
        b"ab",
    )


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_escaping_everywhere(version: str) -> None:
    message = PreparedMessage("/a:b", [("x\ny", "1:2\\")], b"")
    data = message.render(version, "s:1", "m\n2", ack="a\\b")
    assert b"subscription:s\\c1\n" in data
    assert b"message-id:m\\n2\n" in data
    assert b"ack:a\\\\b\n" in data
    assert b"destination:/a\\cb\n" in data
    [frame] = parse_all(data, version)
    assert isinstance(frame, Frame)
    assert frame.header("subscription") == "s:1"
    assert frame.header("message-id") == "m\n2"
    assert frame.header("x\ny") == "1:2\\"


def test_10_no_escaping_and_unrepresentable_headers_dropped() -> None:
    message = PreparedMessage(
        "/a:b",
        [
            ("ok", "a:b\\c"),
            ("bad", "x\ny"),
            ("bad:name", "v"),
            ("cr", "ab\r"),
            ("mid-cr", "a\rb"),
            ("nul", "a\x00b"),
        ],
        b"z",
    )
    [frame] = parse_all(message.render("1.0", "s:1", "m\\2"), "1.0")
    assert frame == Frame(
        "MESSAGE",
        (
            ("subscription", "s:1"),
            ("destination", "/a:b"),
            ("message-id", "m\\2"),
            ("ok", "a:b\\c"),
            ("content-length", "1"),
        ),
        b"z",
    )


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_no_relayed_header_can_end_the_frame_or_a_line(version: str) -> None:
    """Issue 13.4: a relayed header holding a NUL is dropped in every version (nothing can
    escape a NUL); CR and LF are escaped where the version can (1.1, 1.2), else the header
    is dropped. The frame parses as exactly one MESSAGE, whatever the values."""
    forged = "a\x00ERROR\nmessage:forged\n\nowned\x00"
    message = PreparedMessage(
        "/topic/t",
        [
            ("redelivered", "false"),
            ("evil", forged),
            ("evil\x00name", "v"),
            ("lf", "x\nforged:1"),
            ("cr", "x\ry"),
            ("ok", "fine"),
        ],
        b"body",
    )
    data = message.render(version, "s", "m-1")
    assert data.count(b"\x00") == 1
    assert data.endswith(b"\x00")
    [frame] = parse_all(data, version)
    assert isinstance(frame, Frame)
    assert frame.header("evil") is None
    assert frame.header("forged") is None
    assert frame.header("ok") == "fine"
    assert frame.header("redelivered") == "false"
    if version == "1.0":
        assert (frame.header("lf"), frame.header("cr")) == (None, None)
    else:
        assert (frame.header("lf"), frame.header("cr")) == ("x\nforged:1", "x\ry")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_a_session_value_holding_a_nul_cannot_be_rendered(version: str) -> None:
    with pytest.raises(ValueError, match="cannot be represented"):
        make().render(version, "s\x00", "m")
    with pytest.raises(ValueError, match="cannot be represented"):
        message_head(version, "s", "m\x00")


def test_10_unrepresentable_session_header_raises() -> None:
    with pytest.raises(ValueError, match="cannot be represented"):
        make().render("1.0", "s\n", "m")


def test_binary_body_with_nul() -> None:
    message = PreparedMessage("/d", [], b"a\x00b")
    [frame] = parse_all(message.render("1.2", "s", "m"))
    assert isinstance(frame, Frame)
    assert frame.body == b"a\x00b"


def test_unknown_version() -> None:
    with pytest.raises(ValueError, match="unsupported STOMP version"):
        make().render("3.0", "s", "m")


@given(versions, any_text, any_text, st.integers(min_value=0, max_value=2**63))
def test_render_numbered_is_render_with_the_number_appended(
    version: str, subscription: str, prefix: str, number: int
) -> None:
    """The fan-out's fast path (a head encoded once per subscription) renders the same
    bytes as render() with the full message id, or refuses where render() refuses."""
    message = PreparedMessage(
        "/topic/room.1", [("redelivered", "false"), ("content-type", "text/plain")], b"x"
    )
    try:
        expected = message.render(version, subscription, f"{prefix}{number}")
    except ValueError:
        with pytest.raises(ValueError, match="cannot be represented"):
            message_head(version, subscription, prefix)
        return
    head = message_head(version, subscription, prefix)
    assert message.render_numbered(version, head, number) == expected
