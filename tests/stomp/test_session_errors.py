"""Every client violation: one ERROR (exact message, receipt-id), one event, closed."""

from __future__ import annotations

import pytest

from gateway.stomp import Limits, ServerSession, SessionConfig, SessionState, events
from gateway.stomp.errors import ProtocolMessage as M

from .helpers import connected_session, error_frame, first_line, send

# (version, frames sent after CONNECTED, expected ERROR message, first line of its body)
CONNECTED_CASES = [
    ("1.2", b"FOO\nreceipt:r\n\n\x00", M.BAD_COMMAND, "unknown command 'FOO'"),
    ("1.2", b"send\nreceipt:r\n\n\x00", M.BAD_COMMAND, "unknown command 'send'"),
    (
        "1.2",
        b"MESSAGE\nreceipt:r\n\n\x00",
        M.BAD_COMMAND,
        "unexpected server frame 'MESSAGE' from client",
    ),
    (
        "1.2",
        b"RECEIPT\nreceipt:r\n\n\x00",
        M.BAD_COMMAND,
        "unexpected server frame 'RECEIPT' from client",
    ),
    (
        "1.2",
        b"ERROR\nreceipt:r\n\n\x00",
        M.BAD_COMMAND,
        "unexpected server frame 'ERROR' from client",
    ),
    (
        "1.2",
        b"CONNECTED\nreceipt:r\n\n\x00",
        M.BAD_COMMAND,
        "unexpected server frame 'CONNECTED' from client",
    ),
    ("1.2", b"CONNECT\naccept-version:1.2\nreceipt:r\n\n\x00", M.BAD_COMMAND, "already connected"),
    ("1.2", b"STOMP\naccept-version:1.2\nreceipt:r\n\n\x00", M.BAD_COMMAND, "already connected"),
    (
        "1.2",
        b"SEND\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION,
        "missing header 'destination' in SEND",
    ),
    (
        "1.2",
        b"SEND\ndestination:\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION,
        "missing header 'destination' in SEND",
    ),
    (
        "1.2",
        b"SUBSCRIBE\nid:1\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION,
        "missing header 'destination' in SUBSCRIBE",
    ),
    (
        "1.2",
        b"SUBSCRIBE\ndestination:/d\nreceipt:r\n\n\x00",
        M.MISSING_HEADER,
        "missing header 'id' in SUBSCRIBE",
    ),
    (
        "1.1",
        b"SUBSCRIBE\ndestination:/d\nreceipt:r\n\n\x00",
        M.MISSING_HEADER,
        "missing header 'id' in SUBSCRIBE",
    ),
    (
        "1.2",
        b"SUBSCRIBE\nid:1\ndestination:/d\nack:sometimes\nreceipt:r\n\n\x00",
        M.INVALID_HEADER,
        "invalid ack mode 'sometimes'",
    ),
    (
        "1.2",
        b"SUBSCRIBE\nid:1\ndestination:/d\n\n\x00SUBSCRIBE\nid:1\ndestination:/e\nreceipt:r\n\n\x00",
        M.DUPLICATED_SUBSCRIPTION,
        "A subscription identified by '1' already exists.",
    ),
    (
        "1.2",
        b"UNSUBSCRIBE\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION_OR_ID,
        "missing header 'id' in UNSUBSCRIBE",
    ),
    (
        "1.1",
        b"UNSUBSCRIBE\ndestination:/d\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION_OR_ID,
        "missing header 'id' in UNSUBSCRIBE",
    ),
    (
        "1.0",
        b"UNSUBSCRIBE\nreceipt:r\n\n\x00",
        M.MISSING_DESTINATION_OR_ID,
        "missing header 'id' in UNSUBSCRIBE",
    ),
    (
        "1.2",
        b"UNSUBSCRIBE\nid:nope\nreceipt:r\n\n\x00",
        M.NO_SUBSCRIPTION,
        "unknown subscription id 'nope'",
    ),
    (
        "1.2",
        b"ACK\nmessage-id:m\nreceipt:r\n\n\x00",
        M.MISSING_ACK_HEADER,
        "missing header 'id' in ACK",
    ),
    (
        "1.1",
        b"ACK\nid:m\nreceipt:r\n\n\x00",
        M.MISSING_ACK_HEADER,
        "missing header 'message-id' in ACK",
    ),
    ("1.0", b"ACK\nreceipt:r\n\n\x00", M.MISSING_ACK_HEADER, "missing header 'message-id' in ACK"),
    ("1.2", b"NACK\nreceipt:r\n\n\x00", M.MISSING_ACK_HEADER, "missing header 'id' in NACK"),
    (
        "1.2",
        b"BEGIN\nreceipt:r\n\n\x00",
        M.MISSING_TRANSACTION,
        "missing header 'transaction' in BEGIN",
    ),
    (
        "1.2",
        b"COMMIT\nreceipt:r\n\n\x00",
        M.MISSING_TRANSACTION,
        "missing header 'transaction' in COMMIT",
    ),
    (
        "1.2",
        b"ABORT\nreceipt:r\n\n\x00",
        M.MISSING_TRANSACTION,
        "missing header 'transaction' in ABORT",
    ),
    (
        "1.2",
        b"COMMIT\ntransaction:t\nreceipt:r\n\n\x00",
        M.BAD_TRANSACTION,
        "unknown transaction 't'",
    ),
    (
        "1.2",
        b"ABORT\ntransaction:t\nreceipt:r\n\n\x00",
        M.BAD_TRANSACTION,
        "unknown transaction 't'",
    ),
    (
        "1.2",
        b"ACK\nid:1\ntransaction:t\nreceipt:r\n\n\x00",
        M.BAD_TRANSACTION,
        "unknown transaction 't'",
    ),
]


@pytest.mark.parametrize(("version", "data", "message", "what"), CONNECTED_CASES)
def test_violation_when_connected(version: str, data: bytes, message: str, what: str) -> None:
    session = connected_session(version)
    evs = send(session, data + b"SEND\ndestination:/after\n\n\x00")
    assert [type(e) for e in evs][-1] is events.ProtocolViolation
    violation = evs[-1]
    assert isinstance(violation, events.ProtocolViolation)
    assert (violation.error.message, first_line(violation.error)) == (message, what)
    assert session.closed
    assert session.state is SessionState.CLOSED
    frame = error_frame(session, version)
    assert frame.header("message") == message
    assert first_line(frame) == what
    assert frame.header("receipt-id") == "r"
    assert frame.header("content-type") == "text/plain"
    assert frame.body
    assert frame.header("content-length") == str(len(frame.body))
    # nothing more is processed or produced
    session.receive_data(b"SEND\ndestination:/q\n\n\x00")
    assert session.events_received() == []
    assert session.data_to_send() == b""


@pytest.mark.parametrize(
    ("data", "message", "what"),
    [
        (
            b"SEND\ndestination:/q\n\n\x00",
            M.ILLEGAL_COMMAND,
            "expected CONNECT or STOMP frame, got 'SEND'",
        ),
        (
            b"SUBSCRIBE\nid:1\n\n\x00",
            M.ILLEGAL_COMMAND,
            "expected CONNECT or STOMP frame, got 'SUBSCRIBE'",
        ),
        (
            b"DISCONNECT\n\n\x00",
            M.ILLEGAL_COMMAND,
            "expected CONNECT or STOMP frame, got 'DISCONNECT'",
        ),
        (b"FOO\n\n\x00", M.ILLEGAL_COMMAND, "expected CONNECT or STOMP frame, got 'FOO'"),
        (
            b"CONNECTED\n\n\x00",
            M.ILLEGAL_COMMAND,
            "expected CONNECT or STOMP frame, got 'CONNECTED'",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00",
            M.ILLEGAL_COMMAND,
            "expected CONNECT or STOMP frame, got 'GET / HTTP/1.1'",
        ),
        (b"HELLO\nworld\n\n\x00", M.INVALID_FRAME, "header line without ':'"),
        (b"CONNECT\n\xff:x\n\n\x00", M.INVALID_FRAME, "invalid UTF-8 in frame header"),
    ],
)
def test_violation_before_connect(data: bytes, message: str, what: str) -> None:
    session = ServerSession()
    session.receive_data(data)
    [violation] = session.events_received()
    assert isinstance(violation, events.ProtocolViolation)
    assert (violation.error.message, first_line(violation.error)) == (message, what)
    assert session.closed
    assert error_frame(session, "1.0").header("message") == message


def test_parser_error_after_connect_uses_negotiated_version() -> None:
    session = connected_session("1.2")
    [violation] = send(session, b"SEND\ndestination:a\\tb\n\n\x00")
    assert isinstance(violation, events.ProtocolViolation)
    assert violation.error.message == M.INVALID_HEADER
    assert first_line(violation.error) == "invalid escape sequence '\\\\t' in header"
    frame = error_frame(session)
    assert frame.header("message") == "Invalid header"
    assert first_line(frame) == "invalid escape sequence '\\\\t' in header"


def test_too_many_subscriptions() -> None:
    session = connected_session(config=SessionConfig(limits=Limits(max_subscriptions=2)))
    data = b"".join(b"SUBSCRIBE\nid:%d\ndestination:/d\n\n\x00" % i for i in range(3))
    evs = send(session, data)
    assert [type(e) for e in evs] == [
        events.SubscribeRequested,
        events.SubscribeRequested,
        events.ProtocolViolation,
    ]
    violation = evs[-1]
    assert isinstance(violation, events.ProtocolViolation)
    assert violation.error.message == M.TOO_MANY_SUBSCRIPTIONS
    assert first_line(violation.error) == "too many subscriptions: 3 > max_subscriptions 2"


def test_frame_limit_error_reaches_client() -> None:
    config = SessionConfig(limits=Limits(max_frame_size=64))
    session = connected_session(config=config)
    [violation] = send(session, b"SEND\ndestination:/q\n\n" + b"x" * 100)
    assert isinstance(violation, events.ProtocolViolation)
    assert violation.error.message == M.FRAME_TOO_LARGE
    assert first_line(violation.error) == "frame too large: 121 bytes > max_frame_size 64"
    assert error_frame(session).header("message") == violation.error.message


def test_receipt_before_connect_is_echoed_raw() -> None:
    session = ServerSession()
    session.receive_data(b"SEND\nreceipt:a\\nb\n\n\x00")
    assert error_frame(session, "1.0").header("receipt-id") == "a\\nb"


def test_unrepresentable_receipt_id_is_refused_not_raised() -> None:
    """1.0 cannot escape a CR, so a receipt id holding one could not be written back: the
    parser refuses the frame (before, the ERROR dropped the receipt-id)."""
    session = connected_session("1.0")
    [violation] = send(session, b"FOO\nreceipt:a\r\r\n\n\x00")
    assert isinstance(violation, events.ProtocolViolation)
    assert violation.error.receipt_id is None
    frame = error_frame(session, "1.0")
    assert frame.header("message") == "Invalid header"
    assert first_line(frame) == "CR in header 'receipt'"
    assert frame.header("receipt-id") is None


def test_an_error_receipt_id_the_version_cannot_carry_is_dropped() -> None:
    session = connected_session("1.0")
    session.error("Invalid header", "why", receipt_id="a\rb", headers=(("k", "v"),))
    frame = error_frame(session, "1.0")
    assert frame.header("receipt-id") is None
    assert frame.header("k") == "v"


def test_violation_headers_are_added_to_the_sessions_own_errors() -> None:
    config = SessionConfig(violation_headers=(("stompgate-reason", "protocol"),))
    session = connected_session(config=config)
    send(session, b"FOO\n\n\x00")
    frame = error_frame(session)
    assert frame.header("message") == "Bad command"
    assert frame.header("stompgate-reason") == "protocol"
