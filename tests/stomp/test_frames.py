"""Frame value semantics and escaping helpers."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.stomp import Frame
from gateway.stomp.escaping import EscapeError, escape, unescape


def test_header_first_occurrence_wins() -> None:
    frame = Frame("SEND", (("a", "1"), ("b", "2"), ("a", "3")))
    assert frame.header("a") == "1"
    assert frame.header("b") == "2"
    assert frame.header("c") is None
    assert frame.header("c", "dflt") == "dflt"


def test_frozen_and_slotted() -> None:
    frame = Frame("SEND")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.command = "ACK"  # type: ignore[misc]
    assert not hasattr(frame, "__dict__")


def test_escape_roundtrip() -> None:
    value = "a\\b:c\nd\re"
    assert escape(value) == "a\\\\b\\cc\\nd\\re"
    assert unescape(escape(value)) == value


@pytest.mark.parametrize("bad", ["\\t", "x\\", "\\C", "\\ "])
def test_unescape_rejects_undefined_sequences(bad: str) -> None:
    with pytest.raises(EscapeError):
        unescape(bad)


def test_unescape_fast_path_returns_same_object() -> None:
    value = "plain"
    assert unescape(value) is value
