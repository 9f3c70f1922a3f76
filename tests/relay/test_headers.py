"""Header mapping and queue arguments, without a broker."""

from __future__ import annotations

import pytest

from gateway.relay.headers import (
    HeaderError,
    first_headers,
    properties_from_send,
    queue_arguments,
)


def test_first_header_wins() -> None:
    assert first_headers([("a", "1"), ("b", "2"), ("a", "3")]) == {"a": "1", "b": "2"}


def test_queue_arguments_are_typed() -> None:
    args = queue_arguments(
        {
            "x-queue-type": "quorum",
            "x-message-ttl": "60000",
            "x-expires": " 120000 ",
            "x-max-length": "10",
            "x-max-length-bytes": "1048576",
            "x-dead-letter-exchange": "dlx",
            "x-dead-letter-routing-key": "dead",
            "x-max-priority": "9",
            "x-overflow": "reject-publish",
            "x-single-active-consumer": "true",
            "x-queue-name": "not-an-argument",
            "event-type": "not-an-argument-either",
        }
    )
    assert args == {
        "x-queue-type": "quorum",
        "x-message-ttl": 60000,
        "x-expires": 120000,
        "x-max-length": 10,
        "x-max-length-bytes": 1048576,
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "dead",
        "x-max-priority": 9,
        "x-overflow": "reject-publish",
        "x-single-active-consumer": True,
    }


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-message-ttl": "1.5"}, "header 'x-message-ttl' must be an integer: got '1.5'"),
        ({"x-max-length": "-1"}, "header 'x-max-length' must be between 0 and"),
        ({"x-single-active-consumer": "yes"}, "must be true or false: got 'yes'"),
        ({"x-overflow": "explode"}, "header 'x-overflow' must be one of drop-head"),
    ],
)
def test_bad_queue_arguments(headers: dict[str, str], message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        queue_arguments(headers)


def test_properties_defaults() -> None:
    props = properties_from_send({})
    assert props.delivery_mode == 2
    assert props.headers is None
    assert props.content_type is None
    assert properties_from_send({"persistent": "FALSE"}).delivery_mode == 1
    assert properties_from_send({"persistent": "true"}).delivery_mode == 2
    assert properties_from_send(
        {"reply-to": "/temp-queue/a"}, reply_to="/reply-queue/q"
    ).reply_to == ("/reply-queue/q")
