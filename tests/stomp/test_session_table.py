"""The state x command table: what every client command does in every state."""

from __future__ import annotations

import re

import pytest

import gateway.stomp.session as session_module
from gateway.stomp import InvalidState, PreparedMessage, ServerSession, SessionState, events
from gateway.stomp.session import CALL_TRANSITIONS, OTHER, TRANSITIONS

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


# -- the tables in gateway/stomp/session.py are the source of truth ------------------------

FRAME_ROW = re.compile(r"    ([A-Z_]+|any state)  +(.+?) +-> ([A-Z_]+)  ")


def diagram() -> set[tuple[str, str, str]]:
    """(state, trigger, state after) from the state diagram in the module docstring."""
    doc = session_module.__doc__
    assert doc is not None
    rows: set[tuple[str, str, str]] = set()
    for line in doc.splitlines():
        if match := FRAME_ROW.match(line):
            state, triggers, after = match.groups()
            rows.update((state, trigger, after) for trigger in triggers.split(", "))
    return rows


def tables() -> set[tuple[str, str, str]]:
    """(state, trigger, state after) from TRANSITIONS and CALL_TRANSITIONS."""
    rows = {
        (state.name, "any other frame" if command is OTHER else command, t.next_state.name)
        for state, row in TRANSITIONS.items()
        for command, t in row.items()
    }
    rows.update(
        (state.name, call, after.name)
        for state, calls in CALL_TRANSITIONS.items()
        for call, after in calls.items()
    )
    return rows


def test_the_docstring_diagram_is_the_table() -> None:
    drawn = diagram()
    assert len(drawn) > 15
    in_the_tables = {(s, t, a) for s, t, a in drawn if s != "any state" and t != "(frames)"}
    assert in_the_tables == tables()
    # States without a row parse no frames: the diagram says what happens to them instead.
    held = {s for s, t, _ in drawn if t == "(frames)"}
    assert held == {s.name for s in SessionState if s not in TRANSITIONS}
    assert {(s, a) for s, t, a in drawn if t == "(frames)"} == {(s, s) for s in held}
    # Every error path ends in CLOSED.
    assert {a for s, _, a in drawn if s == "any state"} == {"CLOSED"}


def test_the_table_says_what_the_tests_above_observe() -> None:
    row = TRANSITIONS[SessionState.CONNECTED]
    for command, (_, expected_state) in CONNECTED_OUTCOMES.items():
        assert (row.get(command) or row[OTHER]).next_state is expected_state, command
    before = TRANSITIONS[SessionState.AWAITING_CONNECT]
    for command in FRAMES:
        expected = (
            SessionState.CONNECTING if command in ("CONNECT", "STOMP") else SessionState.CLOSED
        )
        assert (before.get(command) or before[OTHER]).next_state is expected, command


def test_state_is_read_only() -> None:
    session = ServerSession()
    with pytest.raises(AttributeError):
        session.state = SessionState.CONNECTED  # type: ignore[misc]
    assert session.state is SessionState.AWAITING_CONNECT


def test_calls_in_the_wrong_state_raise_invalid_state() -> None:
    assert issubclass(InvalidState, RuntimeError)
    fresh = ServerSession()
    connecting = ServerSession()
    send(connecting, FRAMES["CONNECT"])
    connected = connected_session()
    disconnected = connected_session()
    send(disconnected, FRAMES["DISCONNECT"])
    prepared = PreparedMessage("/d", [], b"")
    for session in (fresh, connected, disconnected):
        with pytest.raises(InvalidState, match=r"accept\(\) in state " + session.state.name):
            session.accept(session_id="s")
        with pytest.raises(InvalidState, match=r"reject\(\) in state " + session.state.name):
            session.reject("no")
    for session in (fresh, connecting):
        with pytest.raises(InvalidState, match=r"receipt\(\) in state " + session.state.name):
            session.receipt("r")
        with pytest.raises(InvalidState, match=r"send_message\(\) in state"):
            session.send_message(prepared, "s", "m")
        with pytest.raises(InvalidState, match=r"send_raw\(\) in state"):
            session.send_raw(b"x")
    disconnected.receipt("bye")  # allowed: the adapter answers the DISCONNECT receipt
    assert b"receipt-id:bye" in disconnected.data_to_send()
