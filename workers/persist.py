"""The persist worker: chat messages from every room into the message store, exactly once.

Consumes `amq.topic` pattern `room.*` through the durable quorum queue `stompgate.persist`,
in batches (default up to 500 messages or 50 ms). Only events published with the header
`event-type: message` are stored; receipts, typing, presence and translations share the room
topics and are acked and skipped. Each body is validated against the chat.message.v1 schema
(`schemas/`), then the batch goes to `store.insert_many` in one call. The batch is acked (one
cumulative ack) only after that call returned. When the store fails, nothing is acked: the
same batch is written again after a backoff, for as long as it takes (no retry limit, no DLQ
for store outages); the broker stops sending at the prefetch limit meanwhile. Storage is
idempotent on the message id and on (sender, client_id), so redeliveries after a crash and
client retries are stored once. Invalid bodies go to `stompgate.persist.dlq`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import Counter

import schemas
from schemas.models import ChatMessage
from store import MessageStore, StoredMessage, open_store
from store.base import MAX_MESSAGE_ID
from workers.framework import BatchSpec, Delivery, WorkerApp
from workers.settings import WorkerSettings

log = logging.getLogger("stompgate.workers.persist")

EVENT = "chat.message.v1"
QUEUE = "stompgate.persist"
PATTERN = "room.*"
EXCHANGE = "amq.topic"
#: Store outages are retried with these delays (the last repeats) until the store is back.
STORE_BACKOFF = (0.25, 0.5, 1.0, 2.0, 5.0)


class InvalidChatMessageError(ValueError):
    """A chat.message.v1 event the store cannot take (e.g. a message id of 0 or >= 2**63)."""


class ChatMessageValidator:
    """`(bytes) -> StoredMessage`: validate against the chat.message.v1 schema (raising
    `schemas.SchemaError`, so the message is dead-lettered) and keep the exact bytes."""

    def __call__(self, body: bytes) -> StoredMessage:
        event = schemas.decode(ChatMessage, body)
        return StoredMessage(
            id=_message_id(event.id),
            room=event.room,
            sender=event.sender,
            client_id=event.client_id,
            sent_at=event.sent_at,
            event=body,
        )


def build_app(
    settings: WorkerSettings,
    *,
    store: MessageStore | None = None,
    batch: BatchSpec | None = None,
    backoff: Sequence[float] = STORE_BACKOFF,
    name: str = "persist",
    queue: str = QUEUE,
) -> WorkerApp:
    """The persist worker. A `store` passed in is used as is (the caller opens and closes
    it); otherwise one is made from `settings.store_url` and opened/closed with the app."""
    app = WorkerApp(name)
    app.configure(settings)
    if store is None:
        owned = open_store(settings.store_url)
        app.on_startup(owned.open)
        app.on_shutdown(owned.close)
        target: MessageStore = owned
    else:
        target = store
    duplicates = Counter(
        "stompgate_persist_duplicates",
        "Messages the store already had (redeliveries, client retries).",
        registry=app.metrics.registry,
    )

    @app.consumer(
        PATTERN,
        exchange=EXCHANGE,
        queue=queue,
        validator=ChatMessageValidator(),
        only_headers={"event-type": "message"},
        batch=batch or BatchSpec(settings.persist_batch_size, settings.persist_batch_wait),
        max_attempts=None,
        backoff=backoff,
    )
    async def persist(deliveries: list[Delivery[StoredMessage]]) -> None:
        messages = [d.payload for d in deliveries]
        stored = await target.insert_many(messages)
        if stored < len(messages):
            duplicates.inc(len(messages) - stored)
        log.debug("stored %d of %d message(s)", stored, len(messages))

    return app


def _message_id(text: str) -> int:
    value = int(text)  # the schema allows only decimal digits, no leading zero
    if not 0 < value <= MAX_MESSAGE_ID:
        raise InvalidChatMessageError(f"message id {text} outside 1..2**63-1")
    return value
