"""Destination parsing and formatting, as RabbitMQ's STOMP plugin does it."""

from __future__ import annotations

import pytest

from gateway.relay.destinations import (
    AmqQueue,
    Destination,
    DestinationError,
    Exchange,
    Queue,
    ReplyQueue,
    TempQueue,
    Topic,
    UserQueue,
    destination_of_delivery,
    parse_destination,
)

VALID: list[tuple[str, bool, Destination]] = [
    ("/topic/room.1", False, Topic("room.1")),
    ("/topic/a", False, Topic("a")),
    ("/topic/room.*", True, Topic("room.*")),
    ("/topic/#", True, Topic("#")),
    ("/topic/a.#.b.*", True, Topic("a.#.b.*")),
    ("/topic/a%2Fb", False, Topic("a/b")),
    ("/queue/jobs", False, Queue("jobs")),
    ("/queue/with.dots-and_dash", False, Queue("with.dots-and_dash")),
    ("/amq/queue/amq.gen-abc", False, AmqQueue("amq.gen-abc")),
    ("/amq/queue/existing", True, AmqQueue("existing")),
    ("/exchange/ex", False, Exchange("ex", None)),
    ("/exchange/ex/key.1", False, Exchange("ex", "key.1")),
    ("/exchange/ex/a.*", True, Exchange("ex", "a.*")),
    ("/exchange/amq.direct/k", False, Exchange("amq.direct", "k")),
    ("/temp-queue/reply", False, TempQueue("reply")),
    ("/reply-queue/amq.gen-xyz", False, ReplyQueue("amq.gen-xyz")),
    ("/reply-queue/with/slash", False, ReplyQueue("with/slash")),
    ("/user/queue/notifications", False, UserQueue("notifications", None)),
    ("/user/alice/queue/notifications", False, UserQueue("notifications", "alice")),
    ("/user/a%2Fb/queue/x", False, UserQueue("x", "a/b")),
    ("/topic/caf\u00e9", False, Topic("caf\u00e9")),
]


@pytest.mark.parametrize(("text", "for_subscribe", "expected"), VALID)
def test_valid(text: str, for_subscribe: bool, expected: Destination) -> None:
    assert parse_destination(text, for_subscribe=for_subscribe) == expected


PREFIX_ERROR = (
    "destination must start with /topic/, /queue/, /amq/queue/, /exchange/, /temp-queue/, "
    "/reply-queue/ or /user/: got '{}'"
)

INVALID: list[tuple[str, bool, str]] = [
    ("", False, "destination must not be empty"),
    ("/foo", False, PREFIX_ERROR.format("/foo")),
    ("topic/a", False, PREFIX_ERROR.format("topic/a")),
    ("/app/chat", False, PREFIX_ERROR.format("/app/chat")),
    ("/topic", False, PREFIX_ERROR.format("/topic")),
    ("/topic/", False, "topic key must not be empty in destination '/topic/'"),
    ("/queue/", False, "queue name must not be empty in destination '/queue/'"),
    ("/amq/queue/", False, "queue name must not be empty in destination '/amq/queue/'"),
    (
        "/queue/a/b",
        False,
        "queue name must not contain '/' (write %2F) in destination '/queue/a/b'",
    ),
    (
        "/topic/a/b",
        False,
        "topic key must not contain '/' (write %2F) in destination '/topic/a/b'",
    ),
    (
        "/topic/a\nb",
        False,
        "destination must not contain control characters: got '/topic/a\\x0ab'",
    ),
    (
        "/queue/a\x00",
        False,
        "destination must not contain control characters: got '/queue/a\\x00'",
    ),
    (
        "/topic/room.*",
        False,
        "wildcards * and # are only allowed when subscribing, not in destination '/topic/room.*'",
    ),
    (
        "/topic/#",
        False,
        "wildcards * and # are only allowed when subscribing, not in destination '/topic/#'",
    ),
    (
        "/topic/room*",
        True,
        "wildcards * and # must be whole words between dots in destination '/topic/room*'",
    ),
    (
        "/topic/a..b",
        True,
        "topic key must not have empty words (check the dots) in destination '/topic/a..b'",
    ),
    (
        "/topic/.a",
        False,
        "topic key must not have empty words (check the dots) in destination '/topic/.a'",
    ),
    (
        "/queue/amq.foo",
        False,
        "queue names starting with 'amq.' are reserved by RabbitMQ (use /amq/queue/ for an "
        "existing one): got '/queue/amq.foo'",
    ),
    ("/exchange/", False, "exchange name must not be empty in destination '/exchange/'"),
    ("/exchange//k", False, "exchange name must not be empty in destination '/exchange//k'"),
    ("/exchange/x/", False, "routing key must not be empty in destination '/exchange/x/'"),
    (
        "/exchange/x/a/b",
        False,
        "destination must be /exchange/<name> or /exchange/<name>/<routing key> (write %2F "
        "for '/' in a name): got '/exchange/x/a/b'",
    ),
    ("/temp-queue/", False, "temp queue name must not be empty in destination '/temp-queue/'"),
    (
        "/reply-queue/",
        False,
        "reply queue name must not be empty in destination '/reply-queue/'",
    ),
    (
        "/user/queue",
        False,
        "destination must be /user/queue/<name> or /user/<user>/queue/<name>: got '/user/queue'",
    ),
    (
        "/user/alice/topic/x",
        False,
        "destination must be /user/queue/<name> or /user/<user>/queue/<name>: "
        "got '/user/alice/topic/x'",
    ),
    ("/user/queue/", False, "queue name must not be empty in destination '/user/queue/'"),
    ("/user//queue/x", False, "user name must not be empty in destination '/user//queue/x'"),
    (
        "/queue/" + "q" * 256,
        False,
        "queue name is longer than 255 bytes in destination '/queue/" + "q" * 110 + "...'",
    ),
    (
        "/topic/" + "\u00e9" * 128,
        False,
        "topic key is longer than 255 bytes in destination '/topic/" + "\u00e9" * 110 + "...'",
    ),
]


@pytest.mark.parametrize(("text", "for_subscribe", "message"), INVALID)
def test_invalid(text: str, for_subscribe: bool, message: str) -> None:
    with pytest.raises(DestinationError) as info:
        parse_destination(text, for_subscribe=for_subscribe)
    assert str(info.value) == message


def test_destination_error_is_a_value_error() -> None:
    assert issubclass(DestinationError, ValueError)


def test_255_bytes_is_fine() -> None:
    assert parse_destination("/queue/" + "q" * 255) == Queue("q" * 255)


@pytest.mark.parametrize(
    ("exchange", "key", "expected"),
    [
        ("amq.topic", "room.1", "/topic/room.1"),
        ("", "jobs", "/queue/jobs"),
        ("amq.direct", "k", "/exchange/amq.direct/k"),
        ("ex", "", "/exchange/ex"),
        ("amq.topic", "a/b", "/topic/a%2Fb"),
        ("amq.topic", "50%", "/topic/50%25"),
        ("amq.topic", "caf\u00e9", "/topic/caf%C3%A9"),
        ("amq.topic", "tab\there", "/topic/tab%09here"),
        ("x/y", "k/l", "/exchange/x%2Fy/k%2Fl"),
    ],
)
def test_destination_of_delivery(exchange: str, key: str, expected: str) -> None:
    assert destination_of_delivery(exchange, key) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/topic/room.1",
        "/queue/jobs",
        "/amq/queue/q",
        "/exchange/ex",
        "/exchange/ex/k",
        "/temp-queue/r",
        "/reply-queue/amq.gen-1",
        "/user/queue/n",
        "/user/bob/queue/n",
    ],
)
def test_str_round_trips(text: str) -> None:
    assert str(parse_destination(text)) == text
