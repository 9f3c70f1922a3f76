"""Typing indicators: rate-limited per user and room, a false only to end a true, stopped by a
post, an UNSUBSCRIBE from the room or the session going away. The gate is pure (times are
passed in); the layer's tests use the real Redis and a recording publisher."""

from __future__ import annotations

import orjson
import pytest

import schemas
from gateway.chat.layer import ChatLayer
from gateway.chat.typing import TypingGate, TypingSettings
from tests.chat.fakes import ManualClock, RecordingPublisher

TYPING = "/app/rooms/general/typing"
POST = "/app/rooms/general/messages"
TRUE = b'{"typing": true}'
FALSE = b'{"typing": false}'


def gate(interval: float = 2.0, timeout: float = 10.0) -> TypingGate:
    return TypingGate(TypingSettings(interval=interval, timeout=timeout))


def test_at_most_one_true_per_user_and_room_per_interval() -> None:
    g = gate()
    assert g.typing("s1", "alice", "r", True, 100.0)
    assert not g.typing("s1", "alice", "r", True, 100.5)  # dropped
    assert not g.typing("s2", "alice", "r", True, 101.9)  # another session of alice: same limit
    assert g.typing("s1", "bob", "r", True, 101.0)  # another user
    assert g.typing("s1", "alice", "other", True, 101.0)  # another room
    assert g.typing("s1", "alice", "r", True, 102.0)  # the interval is over


def test_false_only_ends_a_true_the_room_was_told_and_does_not_reset_the_limit() -> None:
    g = gate()
    assert not g.typing("s1", "alice", "r", False, 100.0)  # nothing to end
    assert g.typing("s1", "alice", "r", True, 100.0)
    assert g.typing("s1", "alice", "r", False, 100.2)
    assert not g.typing("s1", "alice", "r", False, 100.3)  # ended already
    assert not g.typing("s1", "alice", "r", True, 100.4)  # true/false/true: still one per 2 s
    assert g.typing("s1", "alice", "r", True, 102.0)


def test_a_true_that_lapsed_needs_no_false() -> None:
    g = gate(timeout=5.0)
    assert g.typing("s1", "alice", "r", True, 100.0)
    assert not g.typing("s1", "alice", "r", False, 105.0)  # receivers hid it already
    assert not g.end("alice", "r", 105.0)


def test_a_post_or_a_removal_ends_typing_in_that_room_only() -> None:
    g = gate()
    g.typing("s1", "alice", "r", True, 100.0)
    g.typing("s1", "alice", "q", True, 100.0)
    assert g.end("alice", "r", 101.0)
    assert not g.end("alice", "r", 101.5)
    assert not g.end("bob", "r", 101.5)
    assert g.end("alice", "q", 101.5)


def test_typing_again_right_after_a_post_is_told_at_once() -> None:
    # A post ends typing and is a boundary of its own: the next message's typing shows at
    # once, not only after the interval (the demo's "bob posts, then types again" case).
    g = gate()
    assert g.typing("s1", "alice", "r", True, 100.0)
    assert g.end("alice", "r", 100.5)
    assert g.typing("s1", "alice", "r", True, 100.6)
    assert not g.typing("s1", "alice", "r", True, 100.7)  # the limit holds again
    assert not g.end("alice", "q", 100.8)  # nothing in another room


def test_leaving_a_room_or_going_away_ends_the_session_s_typing() -> None:
    g = gate()
    g.typing("s1", "alice", "r", True, 100.0)
    g.typing("s1", "alice", "q", True, 100.0)
    g.typing("s2", "bob", "r", True, 100.0)
    assert g.left("s1", "r", 101.0) == ["alice"]
    assert g.left("s1", "r", 101.0) == []
    assert g.left("s3", "r", 101.0) == []
    assert sorted(g.gone("s1", 101.0)) == [("alice", "q")]
    assert g.gone("s1", 101.0) == []
    assert g.gone("s2", 101.0) == [("bob", "r")]
    assert len(g) == 0  # a gone session's entries are forgotten


def test_the_session_typing_last_is_the_one_whose_leaving_ends_it() -> None:
    g = gate(interval=0.0)
    g.typing("s1", "alice", "r", True, 100.0)
    g.typing("s2", "alice", "r", True, 100.1)  # alice's other device types on
    assert g.gone("s1", 100.2) == []
    assert g.gone("s2", 100.3) == [("alice", "r")]


def test_memory_follows_the_users_typing_now() -> None:
    g = gate(interval=2.0, timeout=5.0)
    for n in range(100):
        g.typing(f"s{n}", f"u{n}", "r", True, 100.0)
    assert len(g) == 100
    g.typing("s-late", "late", "r", True, 106.0)  # a later call prunes what lapsed
    assert len(g) == 1


def test_settings_from_the_environment() -> None:
    assert TypingSettings.from_env({}) == TypingSettings(2.0, 10.0)
    got = TypingSettings.from_env(
        {"STOMPGATE_TYPING_INTERVAL": "0.5", "STOMPGATE_TYPING_TIMEOUT": ""}
    )
    assert got == TypingSettings(0.5, 10.0)
    with pytest.raises(ValueError, match="STOMPGATE_TYPING_INTERVAL: expected seconds"):
        TypingSettings.from_env({"STOMPGATE_TYPING_INTERVAL": "soon"})
    with pytest.raises(ValueError, match="STOMPGATE_TYPING_TIMEOUT must be positive"):
        TypingSettings.from_env({"STOMPGATE_TYPING_TIMEOUT": "0"})


def _typing(publisher: RecordingPublisher) -> list[tuple[str, bool]]:
    events = []
    for pub in publisher.published:
        doc = orjson.loads(pub.body)
        if doc["type"] == "typing":
            schemas.validate("chat.typing.v1", pub.body)
            events.append((doc["user"], doc["typing"]))
    return events


async def test_the_layer_rate_limits_and_a_post_stops_typing(
    chat: ChatLayer, clock: ManualClock, publisher: RecordingPublisher
) -> None:
    for _ in range(5):  # a burst: one event
        await chat.handle_send("alice", TYPING, [], TRUE, session="s1")
        clock.advance(100)
    assert _typing(publisher) == [("alice", True)]
    post = orjson.dumps({"client_id": "c1", "text": "hi"})
    await chat.handle_send("alice", POST, [], post, session="s1")
    assert _typing(publisher) == [("alice", True), ("alice", False)]
    kinds = [orjson.loads(p.body)["type"] for p in publisher.published]
    assert kinds == ["typing", "message", "typing"]  # the false follows the message
    await chat.handle_send("alice", POST, [], orjson.dumps({"client_id": "c2", "text": "x"}))
    assert len(_typing(publisher)) == 2  # not typing: a post publishes no false


async def test_a_removal_from_the_room_ends_typing(
    chat: ChatLayer, publisher: RecordingPublisher
) -> None:
    await chat.handle_send("alice", TYPING, [], TRUE, session="s1")
    await chat.member_removed("general", "alice")
    await chat.member_removed("general", "alice")
    assert _typing(publisher) == [("alice", True), ("alice", False)]


async def test_the_layer_ends_typing_when_the_session_leaves_or_goes(
    chat: ChatLayer, clock: ManualClock, publisher: RecordingPublisher
) -> None:
    await chat.handle_send("alice", TYPING, [], TRUE, session="s1")
    await chat.handle_send("bob", "/app/rooms/other/typing", [], TRUE, session="s2")
    await chat.left_room("s1", "general")
    await chat.left_room("s2", "general")  # bob typed elsewhere
    await chat.session_gone("s2")
    await chat.session_gone("s1")  # ended already
    assert _typing(publisher) == [
        ("alice", True),
        ("bob", True),
        ("alice", False),
        ("bob", False),
    ]
    assert [p.destination for p in publisher.published] == [
        "/topic/room.general",
        "/topic/room.other",
        "/topic/room.general",
        "/topic/room.other",
    ]
