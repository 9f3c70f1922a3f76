"""Each client command in the CONNECTED state, per version."""

from __future__ import annotations

import pytest

from gateway.stomp import Frame, PreparedMessage, SessionState, events

from .helpers import connected_session, parse_all, send


def test_send_event_carries_all_headers_and_body() -> None:
    session = connected_session()
    data = b"SEND\ndestination:/q\ncontent-type:text/plain\nreceipt:r1\ncontent-length:2\n\nhi\x00"
    assert send(session, data) == [
        events.SendRequested(
            destination="/q",
            headers=(
                ("destination", "/q"),
                ("content-type", "text/plain"),
                ("receipt", "r1"),
                ("content-length", "2"),
            ),
            body=b"hi",
            receipt="r1",
            transaction=None,
        )
    ]
    assert session.data_to_send() == b""  # never auto-receipted


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_subscribe(version: str) -> None:
    session = connected_session(version)
    [event] = send(session, b"SUBSCRIBE\nid:7\ndestination:/topic/x\nack:client\nreceipt:r\n\n\x00")
    assert event == events.SubscribeRequested(
        "7",
        "/topic/x",
        "client",
        (("id", "7"), ("destination", "/topic/x"), ("ack", "client"), ("receipt", "r")),
        "r",
    )
    assert session.subscription("7") == event
    assert session.subscription("8") is None
    assert session.data_to_send() == b""


@pytest.mark.parametrize("ack", ["auto", "client", "client-individual"])
def test_ack_modes(ack: str) -> None:
    session = connected_session()
    [event] = send(session, f"SUBSCRIBE\nid:1\ndestination:/d\nack:{ack}\n\n\x00".encode())
    assert isinstance(event, events.SubscribeRequested)
    assert event.ack == ack


def test_ack_mode_defaults_to_auto() -> None:
    session = connected_session()
    [event] = send(session, b"SUBSCRIBE\nid:1\ndestination:/d\n\n\x00")
    assert isinstance(event, events.SubscribeRequested)
    assert event.ack == "auto"


def test_subscribe_10_id_defaults_to_destination() -> None:
    session = connected_session("1.0")
    [event] = send(session, b"SUBSCRIBE\ndestination:/topic/x\n\n\x00")
    assert isinstance(event, events.SubscribeRequested)
    assert event.subscription_id == "/topic/x"
    [event] = send(session, b"UNSUBSCRIBE\ndestination:/topic/x\n\n\x00")
    assert event == events.UnsubscribeRequested("/topic/x", None)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_unsubscribe(version: str) -> None:
    session = connected_session(version)
    send(session, b"SUBSCRIBE\nid:s1\ndestination:/d\n\n\x00")
    [event] = send(session, b"UNSUBSCRIBE\nid:s1\nreceipt:u\n\n\x00")
    assert event == events.UnsubscribeRequested("s1", "u")
    assert session.subscription("s1") is None
    # the id can be reused afterwards
    [again] = send(session, b"SUBSCRIBE\nid:s1\ndestination:/d\n\n\x00")
    assert isinstance(again, events.SubscribeRequested)


@pytest.mark.parametrize(
    ("version", "data", "expected"),
    [
        ("1.2", b"ACK\nid:a1\n\n\x00", events.AckRequested("a1", None, None, None)),
        (
            "1.2",
            b"ACK\nid:a1\nsubscription:s\nreceipt:r\n\n\x00",
            events.AckRequested("a1", "s", "r", None),
        ),
        (
            "1.1",
            b"ACK\nmessage-id:m1\nsubscription:s\n\n\x00",
            events.AckRequested("m1", "s", None, None),
        ),
        ("1.0", b"ACK\nmessage-id:m1\n\n\x00", events.AckRequested("m1", None, None, None)),
        ("1.2", b"NACK\nid:a1\n\n\x00", events.NackRequested("a1", None, None, None)),
        (
            "1.1",
            b"NACK\nmessage-id:m1\nsubscription:s\n\n\x00",
            events.NackRequested("m1", "s", None, None),
        ),
        ("1.0", b"NACK\nmessage-id:m1\n\n\x00", events.NackRequested("m1", None, None, None)),
    ],
)
def test_ack_and_nack(version: str, data: bytes, expected: events.Event) -> None:
    session = connected_session(version)
    assert send(session, data) == [expected]
    assert session.data_to_send() == b""


def test_disconnect() -> None:
    session = connected_session()
    events_ = send(session, b"DISCONNECT\nreceipt:bye\n\n\x00SEND\ndestination:/q\n\n\x00")
    assert events_ == [events.DisconnectRequested("bye")]
    assert session.closed
    assert session.state is SessionState.CLOSED
    assert session.data_to_send() == b""
    session.receipt("bye")
    assert session.data_to_send() == b"RECEIPT\nreceipt-id:bye\n\n\x00"
    session.receive_data(b"SEND\ndestination:/q\n\n\x00")
    assert session.events_received() == []


def test_disconnect_without_receipt() -> None:
    session = connected_session()
    assert send(session, b"DISCONNECT\n\n\x00") == [events.DisconnectRequested(None)]


def test_heartbeats_produce_no_events() -> None:
    session = connected_session()
    assert send(session, b"\n\r\n\n") == []
    assert not session.closed


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_receipt_escaped_per_version(version: str) -> None:
    session = connected_session(version)
    session.receipt("a:b")
    expected = b"a:b" if version == "1.0" else b"a\\cb"
    assert session.data_to_send() == b"RECEIPT\nreceipt-id:" + expected + b"\n\n\x00"


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_receipt_with_headers_after_the_receipt_id(version: str) -> None:
    session = connected_session(version)
    session.receipt("m-1", (("stompgate-message-id", "7412733457280073728"), ("x", "a:b")))
    value = b"a:b" if version == "1.0" else b"a\\cb"
    assert session.data_to_send() == (
        b"RECEIPT\nreceipt-id:m-1\nstompgate-message-id:7412733457280073728\nx:"
        + value
        + b"\n\n\x00"
    )


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_send_message_renders_for_session_version(version: str) -> None:
    session = connected_session(version)
    message = PreparedMessage("/topic/x", [("k", "a:b")], b"body")
    session.send_message(message, "sub-0", "m-1", ack="a-1")
    [frame] = parse_all(session.data_to_send(), version)
    assert frame == Frame(
        "MESSAGE",
        (
            ("subscription", "sub-0"),  # RabbitMQ's order (issue 14.9)
            ("destination", "/topic/x"),
            ("message-id", "m-1"),
            ("ack", "a-1"),
            ("k", "a:b"),
            ("content-length", "4"),
        ),
        b"body",
    )


def test_send_raw_and_heartbeat_batching() -> None:
    session = connected_session()
    message = PreparedMessage("/d", [], b"x")
    raw = message.render("1.2", "s", "1")
    session.send_raw(raw)
    session.send_heartbeat()
    session.send_raw(raw)
    assert session.data_to_send() == raw + b"\n" + raw
    assert session.data_to_send() == b""


def test_outbound_calls_before_connected_are_bugs() -> None:
    from gateway.stomp import ServerSession

    session = ServerSession()
    with pytest.raises(RuntimeError):
        session.send_message(PreparedMessage("/d", [], b""), "s", "m")
    with pytest.raises(RuntimeError):
        session.send_raw(b"x")
    session.send_heartbeat()  # silently nothing
    assert session.data_to_send() == b""


def test_outbound_calls_after_error_are_noops() -> None:
    session = connected_session()
    session.error("going away", "shutdown")
    assert session.closed
    first = session.data_to_send()
    assert first.startswith(b"ERROR\nmessage:going away\n")
    session.send_message(PreparedMessage("/d", [], b""), "s", "m")
    session.send_raw(b"x")
    session.send_heartbeat()
    session.receipt("r")
    session.error("again")
    assert session.data_to_send() == b""
    assert session.events_received() == []


def test_error_without_close() -> None:
    session = connected_session()
    session.error("publish failed", "broker nack", receipt_id="r9", close=False)
    [frame] = parse_all(session.data_to_send())
    assert frame == Frame(
        "ERROR",
        (
            ("message", "publish failed"),
            ("receipt-id", "r9"),
            ("content-type", "text/plain"),
            ("content-length", "11"),
        ),
        b"broker nack",
    )
    assert not session.closed
    assert session.state is SessionState.CONNECTED
