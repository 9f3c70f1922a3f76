"""Destination hygiene table, a property test, and sender stamping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import hygiene
from gateway.auth.hygiene import (
    DestinationRejected,
    check_destination,
    strip_spoofed_headers,
)

GOOD = [
    ("/topic/room.7", True),
    ("/topic/room.7", False),
    ("/queue/orders-eu_1", True),
    ("/amq/queue/existing", True),
    ("/exchange/amq.topic/room.7", True),
    ("/temp-queue/reply", True),
    ("/user/queue/notifications", False),
    ("/app/rooms/7/messages", True),
    ("/topic/user:alice@example.com", True),
    ("/topic/room.*", False),
    ("/topic/room.#", False),
    ("/topic/#", False),
    ("/topic/*.messages.#", False),
    ("/exchange/amq.topic/room.*", False),
    ("/" + "a" * 254, True),
]

BAD = [
    ("", True, "destination is empty"),
    ("/topic/a..b", True, "destination '/topic/a..b' has an empty segment"),
    ("/topic//b", True, "destination '/topic//b' has an empty segment"),
    ("/topic/", False, "destination '/topic/' has an empty segment"),
    ("/topic/.a", True, "destination '/topic/.a' has an empty segment"),
    ("/topic/a.", True, "destination '/topic/a.' has an empty segment"),
    ("/", True, "destination '/' has an empty segment"),
    ("topic/a", True, "destination must start with '/': 'topic/a'"),
    ("/topic/room.*", True, "wildcards are not allowed in SEND destinations: '/topic/room.*'"),
    ("/topic/#", True, "wildcards are not allowed in SEND destinations: '/topic/#'"),
    ("/app/rooms/*/x", True, "wildcards are not allowed in SEND destinations: '/app/rooms/*/x'"),
    ("/topic/ro*m", False, "wildcard must be a whole word: '/topic/ro*m'"),
    ("/topic/room.7#", False, "wildcard must be a whole word: '/topic/room.7#'"),
    (
        "/queue/a.*",
        False,
        "wildcards are only allowed in the routing key of /topic/ and /exchange/ "
        "subscriptions: '/queue/a.*'",
    ),
    (
        "/exchange/*/key",
        False,
        "wildcards are only allowed in the routing key of /topic/ and /exchange/ "
        "subscriptions: '/exchange/*/key'",
    ),
    (
        "/exchange/amq.*",
        False,
        "wildcards are only allowed in the routing key of /topic/ and /exchange/ "
        "subscriptions: '/exchange/amq.*'",
    ),
    ("/" + "a" * 300, True, "destination too long: 301 bytes > 255"),
    ("/topic/" + "é" * 130, True, "destination too long: 267 bytes > 255"),
    ("/topic/\x00", True, "destination has a forbidden character '\\x00' at position 7"),
    ("/topic/a b", True, "destination has a forbidden character ' ' at position 8"),
    ("/topic/a\nb", True, "destination has a forbidden character '\\n' at position 8"),
    ("/topic/é", True, "destination has a forbidden character 'é' at position 7"),
    ("/topic/a%2Fb", True, "destination has a forbidden character '%' at position 8"),
    ("/topic/{x}", True, "destination has a forbidden character '{' at position 7"),
]


@pytest.mark.parametrize(("destination", "for_send"), GOOD)
def test_good_destinations(destination: str, for_send: bool) -> None:
    check_destination(destination, for_send=for_send)


@pytest.mark.parametrize(("destination", "for_send", "message"), BAD)
def test_bad_destinations(destination: str, for_send: bool, message: str) -> None:
    with pytest.raises(DestinationRejected) as caught:
        check_destination(destination, for_send=for_send)
    assert caught.value.detail == message
    assert str(caught.value) == message
    assert caught.value.message == "Invalid destination"
    assert isinstance(caught.value, ValueError)


def test_max_length_is_configurable() -> None:
    check_destination("/topic/abc", for_send=True, max_length=10)
    with pytest.raises(DestinationRejected) as caught:
        check_destination("/topic/abcd", for_send=True, max_length=10)
    assert caught.value.message == "Invalid destination"
    assert caught.value.detail == "destination too long: 11 bytes > 10"


@settings(max_examples=400, deadline=None)
@given(destination=st.text(max_size=300), for_send=st.booleans())
def test_never_raises_anything_else(destination: str, for_send: bool) -> None:
    message = ""
    try:
        check_destination(destination, for_send=for_send)
    except DestinationRejected as exc:  # anything else propagates and fails the test
        message = exc.detail or "<empty>"
    assert "\n" not in message
    assert "\x00" not in message


@settings(max_examples=300, deadline=None)
@given(
    destination=st.text(alphabet="/abc.*#:-", max_size=40),
    for_send=st.booleans(),
)
def test_accepted_names_are_routable(destination: str, for_send: bool) -> None:
    try:
        check_destination(destination, for_send=for_send)
    except DestinationRejected:
        return
    assert destination.startswith("/")
    assert "//" not in destination
    assert ".." not in destination
    assert not destination.endswith(("/", "."))
    if for_send:
        assert "*" not in destination
        assert "#" not in destination


def test_spoofed_sender_is_replaced() -> None:
    headers = (
        ("destination", "/app/rooms/7/messages"),
        ("sender", "bob"),
        ("Sender", "carol"),
        ("user-id", "bob"),
        ("X-User-Id", "bob"),
        ("stompgate-user", "bob"),
        ("STOMPGATE-Roles", "admin"),
        ("authorization", "Bearer leaked"),
        ("content-type", "application/json"),
        ("client-message-id", "c1"),
    )
    assert strip_spoofed_headers(headers, "alice") == (
        ("sender", "alice"),
        ("destination", "/app/rooms/7/messages"),
        ("content-type", "application/json"),
        ("client-message-id", "c1"),
    )


def test_sender_header_name_is_configurable() -> None:
    headers = [("x-chat-author", "bob"), ("sender", "bob"), ("k", "v")]
    assert strip_spoofed_headers(headers, "alice", sender_header="x-chat-author") == (
        ("x-chat-author", "alice"),
        ("k", "v"),
    )


@settings(max_examples=500, deadline=None)
@given(
    destination=st.one_of(
        st.text(alphabet="/abc.*#:-_@", max_size=40),
        st.text(max_size=40),
        st.sampled_from(["/", "/topic/room.7", "/topic/room.7/", "/topic/.a", "//x", "/a./b"]),
    ),
    for_send=st.booleans(),
    max_length=st.sampled_from([0, 1, 10, 255]),
)
def test_the_fast_path_agrees_with_the_full_check(
    destination: str, for_send: bool, max_length: int
) -> None:
    def outcome(check: Callable[..., None]) -> str | None:
        try:
            check(destination, for_send=for_send, max_length=max_length)
        except DestinationRejected as exc:
            return exc.detail
        return None

    assert outcome(check_destination) == outcome(hygiene._check_destination)
