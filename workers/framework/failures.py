"""Moving a failed message on: to a retry queue (with its attempt count) or to the DLQ.

Both republish a copy through the default exchange and wait for the publisher confirm; only
then may the caller ack the original, so a crash in between duplicates a message, never loses
one. The copy keeps the body, every property that can be republished, and the publisher's
headers, plus the framework's headers (see headers.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from workers.framework import headers as h


class DeadLetter(Exception):  # noqa: N818 - named for what the handler asks for
    """Raise from a handler when a message can never succeed (the service refused it for what
    it is): it goes to the DLQ at once, `x-dead-letter-reason: rejected`, with no retry.

    A batch handler that did the rest of its batch passes `only=[(delivery, error text), ...]`:
    just those deliveries are dead-lettered (each with its own `x-error`), the others count as
    handled and the batch is acked."""

    def __init__(self, *args: object, only: Sequence[tuple[Any, str]] | None = None) -> None:
        super().__init__(*args)
        self.only = None if only is None else tuple(only)


def original_route(message: AbstractIncomingMessage) -> tuple[str, str]:
    """(exchange, routing key) of the first publish, also for a message coming back from retry."""
    hdrs = message.headers or {}
    exchange = hdrs.get(h.ORIGINAL_EXCHANGE)
    routing_key = hdrs.get(h.ORIGINAL_ROUTING_KEY)
    return (
        _text(exchange) if exchange is not None else (message.exchange or ""),
        _text(routing_key) if routing_key is not None else (message.routing_key or ""),
    )


def copy_for(message: AbstractIncomingMessage, extra: dict[str, Any]) -> aio_pika.Message:
    exchange, routing_key = original_route(message)
    headers: dict[str, Any] = h.application_headers(message.headers)
    headers[h.ORIGINAL_EXCHANGE] = exchange
    headers[h.ORIGINAL_ROUTING_KEY] = routing_key
    headers.update(extra)
    # expiration is dropped (a per-message TTL would fight the retry queue's); user_id is
    # dropped (the broker rejects a user_id that is not the publishing connection's user).
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


async def send_to_retry(
    channel: AbstractChannel,
    message: AbstractIncomingMessage,
    *,
    retry_queue: str,
    failures: int,
    error: BaseException,
) -> None:
    copy = copy_for(message, {h.ATTEMPTS: failures, h.ERROR: h.describe_error(error)})
    await channel.default_exchange.publish(copy, routing_key=retry_queue, mandatory=True)


async def send_to_dead_letter(
    channel: AbstractChannel,
    message: AbstractIncomingMessage,
    *,
    dead_letter_queue: str,
    failures: int,
    error: BaseException | str,
    reason: str,
    worker: str,
) -> None:
    text = error if isinstance(error, str) else h.describe_error(error)
    copy = copy_for(
        message,
        {
            h.ATTEMPTS: failures,
            h.ERROR: text,
            h.DEAD_LETTER_REASON: reason,
            h.DEAD_LETTERED_BY: worker,
            "x-dead-lettered-at": int(time.time() * 1000),
        },
    )
    await channel.default_exchange.publish(copy, routing_key=dead_letter_queue, mandatory=True)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
