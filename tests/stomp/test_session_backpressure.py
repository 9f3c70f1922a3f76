"""max_pending_frames: events handed out in batches; unbounded backlog is an error."""

from __future__ import annotations

from gateway.stomp import Limits, SessionConfig, events

from .helpers import connected_session, first_line

ACK = b"ACK\nid:1\n\n\x00"


def test_events_handed_out_in_batches_and_nothing_lost() -> None:
    session = connected_session(config=SessionConfig(limits=Limits(max_pending_frames=4)))
    session.receive_data(ACK * 10)
    sizes = []
    total = 0
    while batch := session.events_received():
        sizes.append(len(batch))
        total += len(batch)
        assert all(isinstance(e, events.AckRequested) for e in batch)
    assert sizes == [4, 4, 2]
    assert total == 10
    assert not session.closed


def test_leftover_events_delivered_on_later_calls() -> None:
    session = connected_session(config=SessionConfig(limits=Limits(max_pending_frames=2)))
    session.receive_data(ACK * 3)
    assert len(session.events_received()) == 2
    session.receive_data(ACK)
    assert len(session.events_received()) == 2
    assert session.events_received() == []


def test_unbounded_backlog_is_an_error() -> None:
    limits = Limits(max_pending_frames=2, max_frame_size=100)
    session = connected_session(config=SessionConfig(limits=limits))
    for _ in range(12):
        session.receive_data(ACK)
    evs = session.events_received()
    assert [type(e) for e in evs] == [
        events.AckRequested,
        events.AckRequested,
        events.ProtocolViolation,
    ]
    violation = evs[-1]
    assert isinstance(violation, events.ProtocolViolation)
    assert first_line(violation.error) == (
        "too many pending frames: 2 events pending (max_pending_frames 2) "
        "and 110 bytes unparsed > max_frame_size 100"
    )
    assert session.closed
