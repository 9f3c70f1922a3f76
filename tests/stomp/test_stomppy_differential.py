"""Differential checks against stomp.py's own frame codec (stomp.utils)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stomp import Frame, serialize

from .helpers import parse_all
from .strategies import frames

stomp_utils: Any = pytest.importorskip("stomp.utils")
stomp_protocol: Any = pytest.importorskip("stomp.protocol")

# Names stomp.py writes unescaped (it escapes values only) and reads with [^:]+.
plain_name = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r:\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda name: name != "content-length" and name.strip() == name)
value = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
# (A NUL in a header is refused by the parser, see test_parser_errors: issue 13.4.)


def first_wins(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, val in headers:
        out.setdefault(name, val)
    return out


@settings(max_examples=200, deadline=None)
@given(frames("1.2").filter(lambda f: f.command not in ("CONNECT", "CONNECTED", "STOMP")))
def test_stomppy_parses_what_we_serialize(frame: Frame) -> None:
    data = serialize(frame, "1.2")
    theirs = stomp_utils.parse_frame(data[:-1])  # stomp.py's transport strips the NUL
    assert theirs.cmd == frame.command
    assert theirs.headers == first_wins(frame.headers)
    assert theirs.body == frame.body


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["SEND", "SUBSCRIBE", "ACK", "NACK", "BEGIN", "COMMIT", "DISCONNECT"]),
    st.dictionaries(plain_name, value, max_size=6),
    st.binary(max_size=64),
)
def test_we_parse_what_stomppy_serializes(
    command: str, headers: dict[str, str], body: bytes
) -> None:
    headers = dict(headers)
    if body:
        headers["content-length"] = ""  # convert_frame fills in the real length
    escaped = dict(headers)
    stomp_protocol.Protocol12._escape_headers(None, escaped)
    data = b"".join(stomp_utils.convert_frame(stomp_utils.Frame(command, escaped, body)))
    [frame] = parse_all(data, "1.2")
    assert isinstance(frame, Frame)
    assert frame.command == command
    expected = dict(headers)
    if body:
        expected["content-length"] = str(len(body))
    assert dict(frame.headers) == expected
    assert frame.body == body


def test_stomppy_heartbeat_calculation_agrees() -> None:
    from gateway.stomp.session import negotiate_heartbeat

    # stomp.py computes the client's view: (send every, expect every).
    for server in [(0, 0), (1000, 0), (0, 1000), (4000, 6000)]:
        for client in [(0, 0), (5000, 0), (0, 5000), (3000, 7000)]:
            plan = negotiate_heartbeat(server, client)
            client_send, client_expect = stomp_utils.calculate_heartbeats(
                (str(server[0]), str(server[1])), client
            )
            assert client_send == plan.expect_every_ms
            assert client_expect == plan.send_every_ms
