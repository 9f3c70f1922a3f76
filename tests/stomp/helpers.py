"""Shared helpers for the STOMP core tests."""

from __future__ import annotations

from gateway.stomp import (
    Frame,
    HeartBeat,
    Limits,
    Parser,
    ProtocolError,
    ServerSession,
    SessionConfig,
    events,
)

ParserEvent = Frame | HeartBeat | ProtocolError


def drain(parser: Parser) -> list[ParserEvent]:
    """Every event the parser can produce from what it was fed."""
    out: list[ParserEvent] = []
    while (event := parser.next_event()) is not None:
        out.append(event)
    return out


def parse_all(data: bytes, version: str = "1.2", limits: Limits | None = None) -> list[ParserEvent]:
    """Feed ``data`` in one chunk and drain."""
    parser = Parser(limits or Limits(), version)
    parser.feed(data)
    return drain(parser)


def parse_chunks(
    chunks: list[bytes], version: str = "1.2", limits: Limits | None = None
) -> list[ParserEvent]:
    """Feed ``chunks`` one by one, draining after each."""
    parser = Parser(limits or Limits(), version)
    out: list[ParserEvent] = []
    for chunk in chunks:
        parser.feed(chunk)
        out.extend(drain(parser))
    return out


def frames_only(items: list[ParserEvent]) -> list[Frame | ProtocolError]:
    """Drop heart-beats."""
    return [item for item in items if not isinstance(item, HeartBeat)]


def connected_session(version: str = "1.2", config: SessionConfig | None = None) -> ServerSession:
    """A session past CONNECT/CONNECTED for ``version``, with output drained."""
    session = ServerSession(config or SessionConfig())
    session.receive_data(f"CONNECT\naccept-version:{version}\nhost:h\n\n\x00".encode())
    [connect] = session.events_received()
    assert isinstance(connect, events.ConnectRequested)
    session.accept(session_id="sess-1")
    session.data_to_send()
    assert session.events_received() == []
    return session


def send(session: ServerSession, data: bytes) -> list[events.Event]:
    """Feed ``data`` and return every event (draining with the documented loop)."""
    session.receive_data(data)
    out: list[events.Event] = []
    while batch := session.events_received():
        out.extend(batch)
    return out


def error_frame(session: ServerSession, version: str = "1.2") -> Frame:
    """Parse the single ERROR frame the session queued."""
    [frame] = frames_only(parse_all(session.data_to_send(), version))
    assert isinstance(frame, Frame)
    assert frame.command == "ERROR"
    return frame


def first_line(error: ProtocolError | Frame) -> str:
    """What an ERROR's body says first: the precise case (the ``message`` header is the
    short, stable text)."""
    detail = error.detail if isinstance(error, ProtocolError) else error.body.decode()
    return detail.split("\n", 1)[0]
