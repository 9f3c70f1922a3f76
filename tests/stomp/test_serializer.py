"""serialize(): exact bytes, escaping per version, unrepresentable headers."""

from __future__ import annotations

import pytest

from gateway.stomp import Frame, serialize

SPECIAL = Frame("MESSAGE", (("k:x", "a\nb:c\\d\re"),), b"body")


def test_plain_frame() -> None:
    frame = Frame("SEND", (("destination", "/q"), ("content-length", "2")), b"hi")
    assert serialize(frame) == b"SEND\ndestination:/q\ncontent-length:2\n\nhi\x00"


def test_no_headers_no_body() -> None:
    assert serialize(Frame("DISCONNECT")) == b"DISCONNECT\n\n\x00"


def test_default_version_is_12() -> None:
    assert serialize(SPECIAL) == serialize(SPECIAL, "1.2")


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_escaping(version: str) -> None:
    assert serialize(SPECIAL, version) == b"MESSAGE\nk\\cx:a\\nb\\cc\\\\d\\re\n\nbody\x00"


def test_10_writes_colons_and_backslashes_raw() -> None:
    frame = Frame("MESSAGE", (("k", "a:b\\n"),))
    assert serialize(frame, "1.0") == b"MESSAGE\nk:a:b\\n\n\n\x00"


@pytest.mark.parametrize("command", ["CONNECT", "CONNECTED", "STOMP"])
def test_connect_frames_not_escaped(command: str) -> None:
    frame = Frame(command, (("passcode", "a:b\\c"),))
    assert serialize(frame, "1.2") == command.encode() + b"\npasscode:a:b\\c\n\n\x00"


@pytest.mark.parametrize(
    ("frame", "version"),
    [
        (Frame("MESSAGE", (("k", "a\nb"),)), "1.0"),
        (Frame("MESSAGE", (("k:x", "v"),)), "1.0"),
        (Frame("MESSAGE", (("k", "ab\r"),)), "1.0"),
        (Frame("CONNECTED", (("server", "x\ny"),)), "1.2"),
    ],
)
def test_unrepresentable_headers_raise(frame: Frame, version: str) -> None:
    with pytest.raises(ValueError, match="cannot be represented"):
        serialize(frame, version)


def test_unknown_version() -> None:
    with pytest.raises(ValueError, match="unsupported STOMP version"):
        serialize(Frame("SEND"), "2.0")


def test_binary_body_verbatim() -> None:
    body = bytes(range(256))
    frame = Frame("MESSAGE", (("content-length", "256"),), body)
    assert serialize(frame).endswith(b"\n\n" + body + b"\x00")


def test_utf8() -> None:
    frame = Frame("SEND", (("destination", "/topic/caf\u00e9"),))
    assert serialize(frame) == "SEND\ndestination:/topic/caf\u00e9\n\n\x00".encode()


def test_10_mid_value_cr_cannot_be_written() -> None:
    """Issue 13.4: no header the node writes holds an unescaped CR (1.0 cannot escape one;
    before, a CR inside a 1.0 value was written raw)."""
    frame = Frame("MESSAGE", (("k", "a\rb"),))
    with pytest.raises(ValueError, match="cannot be represented"):
        serialize(frame, "1.0")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
@pytest.mark.parametrize("header", [("k", "a\x00ERROR"), ("k\x00", "v")])
def test_a_nul_cannot_be_written_in_any_version(version: str, header: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        serialize(Frame("MESSAGE", (header,)), version)
