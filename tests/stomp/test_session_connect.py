"""CONNECT/STOMP handling: version and heart-beat negotiation, accept and reject."""

from __future__ import annotations

import pytest

from gateway.stomp import (
    Frame,
    HeartBeatPlan,
    Limits,
    ServerSession,
    SessionConfig,
    SessionState,
    events,
)
from gateway.stomp.session import negotiate_heartbeat

from .helpers import error_frame, first_line, frames_only, parse_all, send


def connect(data: bytes, config: SessionConfig | None = None) -> ServerSession:
    session = ServerSession(config or SessionConfig())
    session.receive_data(data)
    return session


@pytest.mark.parametrize(
    ("accept_version", "expected"),
    [
        (None, "1.0"),
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,1.1,1.0", "1.2"),
        ("1.1,1.0", "1.1"),
        (" 1.0 , 1.1 ", "1.1"),
        ("1.1,2.0", "1.1"),
    ],
)
def test_version_negotiation(accept_version: str | None, expected: str) -> None:
    header = b"" if accept_version is None else f"accept-version:{accept_version}\n".encode()
    session = connect(b"CONNECT\n" + header + b"\n\x00")
    [event] = session.events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.version == expected
    assert session.state is SessionState.CONNECTING
    before = session.version
    assert before is None
    session.accept(session_id="s")
    assert session.version == expected
    [connected] = parse_all(session.data_to_send(), expected)
    assert isinstance(connected, Frame)
    assert connected.command == "CONNECTED"
    assert connected.header("version") == expected


def test_version_restricted_by_config() -> None:
    config = SessionConfig(versions=("1.1",))
    session = connect(b"CONNECT\naccept-version:1.0,1.1,1.2\n\n\x00", config)
    [event] = session.events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.version == "1.1"


def test_no_common_version() -> None:
    session = connect(b"CONNECT\naccept-version:2.0,3.0\nreceipt:r\n\n\x00")
    [event] = session.events_received()
    assert isinstance(event, events.ProtocolViolation)
    assert event.error.message == "Version mismatch"
    frame = error_frame(session)
    assert frame.header("message") == "Version mismatch"  # RabbitMQ's text, and its body:
    assert first_line(frame) == "Supported versions are 1.0,1.1,1.2"
    assert frame.header("version") == "1.0,1.1,1.2"
    assert frame.header("receipt-id") == "r"
    assert session.closed
    assert session.state is SessionState.CLOSED


def test_absent_accept_version_when_10_not_supported() -> None:
    session = connect(b"CONNECT\n\n\x00", SessionConfig(versions=("1.2",)))
    assert error_frame(session).header("version") == "1.2"


def test_stomp_command_for_11_and_later() -> None:
    session = connect(b"STOMP\naccept-version:1.1\nhost:h\n\n\x00")
    [event] = session.events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.version == "1.1"


def test_stomp_command_rejected_for_10() -> None:
    session = connect(b"STOMP\n\n\x00")
    [event] = session.events_received()
    assert isinstance(event, events.ProtocolViolation)
    assert first_line(event.error) == "STOMP frame requires protocol version 1.1 or later"


def test_connect_requested_fields_and_repr_hides_secrets() -> None:
    data = (
        b"CONNECT\naccept-version:1.2\nhost:vh\nlogin:alice\npasscode:s3cret\n"
        b"heart-beat:5000,7000\nAuthorization:Bearer x\n\n\x00"
    )
    [event] = connect(data).events_received()
    assert event == events.ConnectRequested(
        version="1.2",
        host="vh",
        login="alice",
        passcode="s3cret",
        client_heartbeat=(5000, 7000),
        headers=(
            ("accept-version", "1.2"),
            ("host", "vh"),
            ("login", "alice"),
            ("passcode", "s3cret"),
            ("heart-beat", "5000,7000"),
            ("Authorization", "Bearer x"),
        ),
    )
    assert "s3cret" not in repr(event)


def test_host_not_required() -> None:
    [event] = connect(b"CONNECT\naccept-version:1.2\n\n\x00").events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.host is None


@pytest.mark.parametrize(
    ("server", "client", "plan"),
    [
        ((10000, 10000), (10000, 10000), (10000, 10000)),
        ((10000, 10000), (0, 0), (0, 0)),
        ((0, 0), (5000, 5000), (0, 0)),
        ((4000, 6000), (5000, 3000), (4000, 6000)),
        ((4000, 6000), (7000, 9000), (9000, 7000)),
        ((10000, 0), (5000, 20000), (20000, 0)),
        ((0, 10000), (5000, 20000), (0, 10000)),
    ],
)
def test_heartbeat_negotiation(
    server: tuple[int, int], client: tuple[int, int], plan: tuple[int, int]
) -> None:
    assert negotiate_heartbeat(server, client) == HeartBeatPlan(*plan)
    config = SessionConfig(heartbeat=server)
    data = f"CONNECT\naccept-version:1.2\nheart-beat:{client[0]},{client[1]}\n\n\x00"
    session = connect(data.encode(), config)
    before = session.heartbeat
    assert before is None
    session.accept(session_id="s")
    assert session.heartbeat == HeartBeatPlan(*plan)
    [connected] = parse_all(session.data_to_send())
    assert isinstance(connected, Frame)
    assert connected.header("heart-beat") == f"{server[0]},{server[1]}"


def test_heartbeat_absent_means_none() -> None:
    session = connect(b"CONNECT\naccept-version:1.2\n\n\x00")
    session.accept(session_id="s")
    assert session.heartbeat == HeartBeatPlan(0, 0)


def test_heartbeat_ignored_in_10() -> None:
    session = connect(b"CONNECT\nheart-beat:1000,1000\n\n\x00")
    [event] = session.events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.client_heartbeat == (0, 0)
    session.accept(session_id="s")
    assert session.heartbeat == HeartBeatPlan(0, 0)
    [connected] = parse_all(session.data_to_send(), "1.0")
    assert isinstance(connected, Frame)
    assert connected.header("heart-beat") is None


def test_heartbeat_with_spaces_tolerated() -> None:
    [event] = connect(
        b"CONNECT\naccept-version:1.2\nheart-beat: 100, 200\n\n\x00"
    ).events_received()
    assert isinstance(event, events.ConnectRequested)
    assert event.client_heartbeat == (100, 200)


@pytest.mark.parametrize("value", ["", "1", "1,2,3", "a,b", "-1,0", "1.5,2", "9999999999,1"])
def test_invalid_heartbeat(value: str) -> None:
    session = connect(f"CONNECT\naccept-version:1.2\nheart-beat:{value}\n\n\x00".encode())
    [event] = session.events_received()
    assert isinstance(event, events.ProtocolViolation)
    assert first_line(event.error) == f"invalid heart-beat header: {value!r}"


def test_connected_frame_headers() -> None:
    session = connect(b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
    session.accept(session_id="abc", user_name="alice", extra_headers=[("x-node", "n1")])
    assert session.data_to_send() == (
        b"CONNECTED\nversion:1.2\nheart-beat:10000,10000\nserver:stompgate/0.1\n"
        b"session:abc\nuser-name:alice\nx-node:n1\n\n\x00"
    )
    assert session.state is SessionState.CONNECTED
    assert not session.closed


def test_reject() -> None:
    session = connect(b"CONNECT\naccept-version:1.2\nlogin:x\n\n\x00")
    session.events_received()
    session.reject("bad credentials", "login failed for x")
    frame = error_frame(session)
    assert frame.header("message") == "bad credentials"
    assert frame.body == b"login failed for x"
    assert session.closed
    assert session.events_received() == []  # the adapter knows why it rejected
    session.accept(session_id="late")  # no-op after the session errored
    assert session.data_to_send() == b""


def test_accept_in_wrong_state_is_a_bug() -> None:
    session = ServerSession()
    with pytest.raises(RuntimeError, match="AWAITING_CONNECT"):
        session.accept(session_id="s")
    with pytest.raises(RuntimeError, match="AWAITING_CONNECT"):
        session.reject("x")
    with pytest.raises(RuntimeError, match="AWAITING_CONNECT"):
        session.receipt("r")


def test_pipelined_frames_wait_for_accept_and_use_negotiated_version() -> None:
    session = ServerSession()
    session.receive_data(b"CONNECT\nlogin:u\n\n\x00SUBSCRIBE\ndestination:/topic/a\\cb\n\n\x00")
    [connect_event] = session.events_received()
    assert isinstance(connect_event, events.ConnectRequested)
    assert connect_event.version == "1.0"
    session.receive_data(b"SEND\ndestination:/q\n\nx\x00")
    assert session.events_received() == []
    session.accept(session_id="s")
    evs = send(session, b"")
    assert [type(e) for e in evs] == [events.SubscribeRequested, events.SendRequested]
    subscribe = evs[0]
    assert isinstance(subscribe, events.SubscribeRequested)
    assert subscribe.destination == "/topic/a\\cb"  # 1.0: not unescaped
    assert subscribe.subscription_id == "/topic/a\\cb"


def test_too_much_pipelined_data_before_accept() -> None:
    config = SessionConfig(limits=Limits(max_frame_size=100))
    session = connect(b"CONNECT\naccept-version:1.2\n\n\x00" + b"SEND\n\n" + b"x" * 200, config)
    evs = session.events_received()
    assert isinstance(evs[0], events.ConnectRequested)
    assert isinstance(evs[1], events.ProtocolViolation)
    assert (
        first_line(evs[1].error) == "too much data before CONNECTED: 206 bytes > max_frame_size 100"
    )
    assert session.closed


def test_error_before_negotiation_is_not_escaped() -> None:
    session = connect(b"SEND\ndestination:/q\n\n\x00")
    data = session.data_to_send()
    assert b"message:Illegal command\n" in data
    assert b"expected CONNECT or STOMP frame, got 'SEND'\n" in data
    [frame] = frames_only(parse_all(data, "1.0"))
    assert isinstance(frame, Frame)


def test_reject_before_connected_is_not_escaped() -> None:
    session = connect(b"CONNECT\naccept-version:1.2\n\n\x00")
    session.reject("bad credentials: expired", "token expired")
    assert session.data_to_send().startswith(b"ERROR\nmessage:bad credentials: expired\n")
