"""BEGIN/COMMIT/ABORT: buffering, auto-receipts for BEGIN/ABORT, limits."""

from __future__ import annotations

from gateway.stomp import Limits, SessionConfig, events

from .helpers import connected_session, error_frame, first_line, send


def test_commit_emits_buffered_frames_in_order() -> None:
    session = connected_session()
    assert send(session, b"BEGIN\ntransaction:t1\nreceipt:b\n\n\x00") == []
    assert session.data_to_send() == b"RECEIPT\nreceipt-id:b\n\n\x00"
    buffered = send(
        session,
        b"SEND\ndestination:/q\ntransaction:t1\n\none\x00"
        b"ACK\nid:a1\ntransaction:t1\n\n\x00"
        b"NACK\nid:a2\ntransaction:t1\n\n\x00"
        b"SEND\ndestination:/q\n\noutside\x00",
    )
    assert buffered == [
        events.SendRequested("/q", (("destination", "/q"),), b"outside", None, None)
    ]
    [commit] = send(session, b"COMMIT\ntransaction:t1\nreceipt:c\n\n\x00")
    assert commit == events.TransactionCommitted(
        "t1",
        (
            events.SendRequested(
                "/q", (("destination", "/q"), ("transaction", "t1")), b"one", None, "t1"
            ),
            events.AckRequested("a1", None, None, "t1"),
            events.NackRequested("a2", None, None, "t1"),
        ),
        "c",
    )
    assert session.data_to_send() == b""  # COMMIT receipt is the adapter's


def test_abort_discards_and_receipts() -> None:
    session = connected_session()
    send(session, b"BEGIN\ntransaction:t1\n\n\x00SEND\ndestination:/q\ntransaction:t1\n\n\x00")
    assert send(session, b"ABORT\ntransaction:t1\nreceipt:x\n\n\x00") == [
        events.TransactionAborted("t1", "x", 1)
    ]
    assert session.data_to_send() == b"RECEIPT\nreceipt-id:x\n\n\x00"
    [violation] = send(session, b"COMMIT\ntransaction:t1\n\n\x00")
    assert isinstance(violation, events.ProtocolViolation)
    assert first_line(violation.error) == "unknown transaction 't1'"


def test_transaction_name_reusable_after_commit() -> None:
    session = connected_session()
    send(session, b"BEGIN\ntransaction:t\n\n\x00COMMIT\ntransaction:t\n\n\x00")
    assert send(session, b"BEGIN\ntransaction:t\n\n\x00") == []
    assert not session.closed


def test_unknown_transaction_on_send() -> None:
    session = connected_session()
    [violation] = send(session, b"SEND\ndestination:/q\ntransaction:nope\nreceipt:r\n\n\x00")
    assert isinstance(violation, events.ProtocolViolation)
    assert first_line(violation.error) == "unknown transaction 'nope'"
    assert error_frame(session).header("receipt-id") == "r"


def test_duplicate_begin() -> None:
    session = connected_session()
    [violation] = send(session, b"BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:t\n\n\x00")
    assert isinstance(violation, events.ProtocolViolation)
    assert first_line(violation.error) == "transaction 't' already started"


def test_too_many_transactions() -> None:
    session = connected_session(config=SessionConfig(limits=Limits(max_transactions=2)))
    data = b"".join(b"BEGIN\ntransaction:t%d\n\n\x00" % i for i in range(3))
    [violation] = send(session, data)
    assert isinstance(violation, events.ProtocolViolation)
    assert first_line(violation.error) == "too many transactions: 3 > max_transactions 2"


def test_too_many_frames_in_transaction() -> None:
    session = connected_session(config=SessionConfig(limits=Limits(max_transaction_frames=2)))
    data = b"BEGIN\ntransaction:t\n\n\x00" + b"ACK\nid:1\ntransaction:t\n\n\x00" * 3
    [violation] = send(session, data)
    assert isinstance(violation, events.ProtocolViolation)
    assert (
        first_line(violation.error)
        == "too many frames in transaction 't': 3 > max_transaction_frames 2"
    )


def test_disconnect_drops_open_transactions() -> None:
    session = connected_session()
    evs = send(
        session,
        b"BEGIN\ntransaction:t\n\n\x00SEND\ndestination:/q\ntransaction:t\n\n\x00"
        b"DISCONNECT\n\n\x00",
    )
    assert evs == [events.DisconnectRequested(None)]
