"""Fuzzing: any input gives frames and at most one ProtocolError; no exception, no hang."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stomp import (
    Frame,
    HeartBeat,
    Limits,
    Parser,
    ProtocolError,
    ServerSession,
    SessionConfig,
    SessionState,
    events,
    serialize,
)

from .strategies import frames, versions

SMALL = Limits(max_frame_size=512, max_headers=8, max_header_line=64)
BUDGET_SECONDS = 1.0


def check_parser(chunks: list[bytes], version: str, limits: Limits) -> None:
    parser = Parser(limits, version)
    seen: list[Frame | HeartBeat | ProtocolError] = []
    start = time.perf_counter()
    for chunk in chunks:
        parser.feed(chunk)
        for _ in range(len(chunk) + 2):  # each event consumes >= 1 byte
            event = parser.next_event()
            if event is None:
                break
            seen.append(event)
        else:
            raise AssertionError("parser produced more events than bytes")
        assert parser.buffered <= limits.max_frame_size + len(chunk)
    assert time.perf_counter() - start < BUDGET_SECONDS
    errors = [i for i, e in enumerate(seen) if isinstance(e, ProtocolError)]
    assert len(errors) <= 1
    if errors:
        assert errors[0] == len(seen) - 1
        assert parser.dead
        parser.feed(b"SEND\n\n\x00")
        assert parser.next_event() is None
    assert all(isinstance(event, Frame | HeartBeat) for event in seen[: len(seen) - len(errors)])


def check_violation_last(seen: list[events.Event], session: ServerSession) -> None:
    """At most one ProtocolViolation among a session's events, the last, and the session
    closed after it."""
    violations = [i for i, e in enumerate(seen) if isinstance(e, events.ProtocolViolation)]
    assert len(violations) <= 1, f"more than one protocol violation: {seen!r}"
    if violations:
        assert violations[0] == len(seen) - 1, f"events after a protocol violation: {seen!r}"
        assert session.closed, "a protocol violation left the session open"


def check_fresh_session(chunks: list[bytes], limits: Limits) -> list[events.Event]:
    """A fresh session fed ``chunks`` (accepted as soon as it asks): never more events than
    bytes, at most one violation, the last. Returns its events (the fuzzer tells new
    behaviour by them)."""
    most = sum(len(chunk) for chunk in chunks) + 2
    session = ServerSession(SessionConfig(limits=limits))
    seen: list[events.Event] = []
    for chunk in chunks:
        session.receive_data(chunk)
        while batch := session.events_received():
            seen.extend(batch)
            assert len(seen) <= most, "the session produced more events than bytes"
            if session.state is SessionState.CONNECTING:
                session.accept(session_id="s")
        session.data_to_send()
    check_violation_last(seen, session)
    return seen


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8), versions)
def test_random_bytes(data: bytes, cuts: list[int], version: str) -> None:
    check_parser(split(data, cuts), version, SMALL)


ALPHABET = b"\x00\n\r:\\ cSENDACKtransaction-length0123456789\xff\xc3"
#: What a mutation inserts: the bytes that delimit frames, headers and escapes.
DELIMITERS = [b"\x00", b"\n", b":", b"\\", b"\r"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([bytes([b]) for b in ALPHABET]), max_size=300),
    st.lists(st.integers(0, 300), max_size=8),
    versions,
)
def test_protocol_alphabet_soup(symbols: list[bytes], cuts: list[int], version: str) -> None:
    check_parser(split(b"".join(symbols), cuts), version, SMALL)
    check_parser(split(b"".join(symbols), cuts), version, Limits())


@st.composite
def mutated_streams(draw: st.DrawFn) -> tuple[bytes, str]:
    version = draw(versions)
    stream = bytearray(
        b"".join(serialize(f, version) for f in draw(st.lists(frames(version), max_size=4)))
    )
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        position = draw(st.integers(0, len(stream)))
        if kind == "flip" and position < len(stream):
            stream[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            stream[position:position] = draw(st.sampled_from(DELIMITERS))
        elif kind == "delete":
            del stream[position : position + draw(st.integers(1, 4))]
        elif kind == "truncate":
            del stream[position:]
        else:
            stream[position:position] = stream[max(0, position - 16) : position]
    return bytes(stream), version


@settings(max_examples=400, deadline=None)
@given(mutated_streams(), st.lists(st.integers(0, 2000), max_size=8))
def test_mutated_valid_frames(sample: tuple[bytes, str], cuts: list[int]) -> None:
    data, version = sample
    check_parser(split(data, cuts), version, Limits())
    check_parser(split(data, cuts), version, SMALL)


@settings(max_examples=300, deadline=None)
@given(mutated_streams(), st.lists(st.integers(0, 2000), max_size=8))
def test_session_never_raises(sample: tuple[bytes, str], cuts: list[int]) -> None:
    data, version = sample
    session = ServerSession(SessionConfig(limits=SMALL))
    session.receive_data(f"CONNECT\naccept-version:{version}\n\n\x00".encode())
    session.events_received()
    session.accept(session_id="s")
    seen: list[events.Event] = []
    start = time.perf_counter()
    for chunk in split(data, cuts):
        session.receive_data(chunk)
        while batch := session.events_received():
            seen.extend(batch)
            assert len(seen) <= len(data) + 1
        session.data_to_send()
    assert time.perf_counter() - start < BUDGET_SECONDS
    check_violation_last(seen, session)


@settings(max_examples=300, deadline=None)
@given(mutated_streams(), st.lists(st.integers(0, 2000), max_size=8), st.booleans())
def test_fresh_session_never_raises(
    sample: tuple[bytes, str], cuts: list[int], with_connect: bool
) -> None:
    data, version = sample
    if with_connect:
        data = f"CONNECT\naccept-version:{version}\n\n\x00".encode() + data
    check_fresh_session(split(data, cuts), SMALL)
