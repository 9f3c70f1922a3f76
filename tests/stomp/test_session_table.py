"""The state x command table: what every client command does in every state."""

from __future__ import annotations

import pytest

from gateway.stomp import ServerSession, SessionState, events

from .helpers import connected_session, send

FRAMES = {
    "CONNECT": b"CONNECT\naccept-version:1.2\n\n\x00",
    "STOMP": b"STOMP\naccept-version:1.2\n\n\x00",
    "SEND": b"SEND\ndestination:/q\n\nx\x00",
    "SUBSCRIBE": b"SUBSCRIBE\nid:new\ndestination:/q\n\n\x00",
    "UNSUBSCRIBE": b"UNSUBSCRIBE\nid:existing\n\n\x00",
    "ACK": b"ACK\nid:1\n\n\x00",
    "NACK": b"NACK\nid:1\n\n\x00",
    "BEGIN": b"BEGIN\ntransaction:new\n\n\x00",
    "COMMIT": b"COMMIT\ntransaction:open\n\n\x00",
    "ABORT": b"ABORT\ntransaction:open\n\n\x00",
    "DISCONNECT": b"DISCONNECT\n\n\x00",
    "CONNECTED": b"CONNECTED\n\n\x00",
    "MESSAGE": b"MESSAGE\n\n\x00",
    "RECEIPT": b"RECEIPT\n\n\x00",
    "ERROR": b"ERROR\n\n\x00",
    "BOGUS": b"BOGUS\n\n\x00",
}

V = events.ProtocolViolation
CONNECTED_OUTCOMES: dict[str, tuple[type | None, SessionState]] = {
    "CONNECT": (V, SessionState.CLOSED),
    "STOMP": (V, SessionState.CLOSED),
    "SEND": (events.SendRequested, SessionState.CONNECTED),
    "SUBSCRIBE": (events.SubscribeRequested, SessionState.CONNECTED),
    "UNSUBSCRIBE": (events.UnsubscribeRequested, SessionState.CONNECTED),
    "ACK": (events.AckRequested, SessionState.CONNECTED),
    "NACK": (events.NackRequested, SessionState.CONNECTED),
    "BEGIN": (None, SessionState.CONNECTED),
    "COMMIT": (events.TransactionCommitted, SessionState.CONNECTED),
    "ABORT": (events.TransactionAborted, SessionState.CONNECTED),
    "DISCONNECT": (events.DisconnectRequested, SessionState.CLOSED),
    "CONNECTED": (V, SessionState.CLOSED),
    "MESSAGE": (V, SessionState.CLOSED),
    "RECEIPT": (V, SessionState.CLOSED),
    "ERROR": (V, SessionState.CLOSED),
    "BOGUS": (V, SessionState.CLOSED),
}


def outcome(evs: list[events.Event]) -> type | None:
    assert len(evs) <= 1, evs
    return type(evs[0]) if evs else None


@pytest.mark.parametrize("command", sorted(FRAMES))
def test_awaiting_connect(command: str) -> None:
    session = ServerSession()
    result = outcome(send(session, FRAMES[command]))
    if command in ("CONNECT", "STOMP"):
        assert result is events.ConnectRequested
        assert session.state is SessionState.CONNECTING
    else:
        assert result is V
        assert session.state is SessionState.CLOSED


@pytest.mark.parametrize("command", sorted(FRAMES))
def test_connecting_holds_frames(command: str) -> None:
    session = ServerSession()
    send(session, FRAMES["CONNECT"])
    assert outcome(send(session, FRAMES[command])) is None
    assert session.state is SessionState.CONNECTING
    assert session.data_to_send() == b""


@pytest.mark.parametrize("command", sorted(FRAMES))
def test_connected(command: str) -> None:
    session = connected_session()
    send(session, b"SUBSCRIBE\nid:existing\ndestination:/q\n\n\x00")
    send(session, b"BEGIN\ntransaction:open\n\n\x00")
    expected_event, expected_state = CONNECTED_OUTCOMES[command]
    assert outcome(send(session, FRAMES[command])) is expected_event
    assert session.state is expected_state
    assert session.closed is (expected_state is SessionState.CLOSED)


@pytest.mark.parametrize("command", sorted(FRAMES))
def test_closed_ignores_everything(command: str) -> None:
    session = connected_session()
    send(session, FRAMES["DISCONNECT"])
    assert outcome(send(session, FRAMES[command])) is None
    assert session.state is SessionState.CLOSED
    assert session.data_to_send() == b""


def test_table_covers_every_command() -> None:
    from gateway.stomp.frames import CLIENT_COMMANDS, SERVER_COMMANDS

    assert set(FRAMES) == CLIENT_COMMANDS | SERVER_COMMANDS | {"BOGUS"}
