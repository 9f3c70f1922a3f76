"""The persist worker: chat messages from every room into the message store, exactly once.

Consumes the rooms' topic exchange (`STOMPGATE_TOPIC_EXCHANGE`, default `amq.topic`) pattern
`room.*` through the durable quorum queue `STOMPGATE_PERSIST_QUEUE` (default
`<deployment>.persist`, so `stompgate.persist`; one queue per store: two workers on one queue
split its messages, two queues each get every message),
in batches (default up to 500 messages or 50 ms). Only events published with the header
`event-type: message` are stored; receipts, typing, presence and translations share the room
topics and are acked and skipped. Each body is validated against the chat.message.v1 schema
(`schemas/`), then the batch goes to `store.insert_many` in one call. The batch is acked (one
cumulative ack) only after that call returned. When the store fails, nothing is acked: the
same batch is written again after a backoff, for as long as it takes (no retry limit, no DLQ
for store outages); the broker stops sending at the prefetch limit meanwhile. Storage is
idempotent on the message id and on (sender, client_id), so redeliveries after a crash and
client retries are stored once. Invalid bodies go to `<queue>.dlq`.

Conflicts: a message whose id the store already holds as ANOTHER message (another room, sender
or client id: two issuers of one Snowflake id) is never dropped silently. The store keeps the
rest of the batch and names the conflicts; each conflicting message goes whole to `<queue>.dlq`
(`x-dead-letter-reason: rejected`, `x-error` naming both messages), is counted in
`stompgate_persist_conflicts_total` and logged with both ids and rooms, and its id is recorded
in its room's rejected set in the deployment's Redis (`{prefix}room:{room}:rejected`, kept 8
days): it will never be stored, so history, which waits for it in the room's unstored set,
treats it as a dead post instead of answering 503 "store is behind" (`gateway.chat.unstored`).
The batch is acked.

At start the worker checks that its topic exchange and deployment name belong to its Redis
lease namespace (`chatstate.deployment`): a clash stops it with a message naming both sides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from prometheus_client import Counter

import schemas
from chatstate.client import redis_client
from chatstate.deployment import Namespace
from chatstate.keys import ChatKeys, id_member
from schemas.models import ChatMessage
from store import MessageStore, StoreConflictError, StoredMessage, open_store
from store.base import MAX_MESSAGE_ID
from workers.framework import BatchSpec, DeadLetter, Delivery, WorkerApp
from workers.settings import WorkerSettings

log = logging.getLogger("stompgate.workers.persist")

EVENT = "chat.message.v1"
QUEUE = "stompgate.persist"
"""The queue's name in the default deployment (`STOMPGATE_PERSIST_QUEUE` in general)."""
PATTERN = "room.*"
#: How long a room's rejected ids are kept (beyond the gateway's 7-day recent cache, whose
#: trims can still add such an id to the unstored set).
REJECTED_TTL_S = 8 * 24 * 3600
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
    queue: str | None = None,
    redis: aioredis.Redis | None = None,
) -> WorkerApp:
    """The persist worker. A `store` passed in is used as is (the caller opens and closes
    it); otherwise one is made from `settings.store_url` and opened/closed with the app.
    `queue` defaults to `settings.persist_queue`; `redis` (the deployment's: the namespace
    check, the unstored sets) to a client of `settings.redis_url`, closed with the app."""
    app = WorkerApp(name)
    app.configure(settings)
    if redis is None:
        redis = redis_client(settings.redis_url, name=f"persist-{settings.deployment}")
        app.on_shutdown(redis.aclose)
    app.check_namespace(
        Namespace(
            settings.deployment,
            settings.topic_exchange,
            settings.redis_url,
            settings.redis_prefix,
            who=f"persist worker {queue or settings.persist_queue}",
        ),
        redis,
    )
    keys = ChatKeys(settings.redis_prefix)
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
    conflicts = Counter(
        "stompgate_persist_conflicts",
        "Messages refused because their id is stored as another message (dead-lettered).",
        registry=app.metrics.registry,
    )

    async def settle(deliveries: list[Delivery[StoredMessage]], exc: StoreConflictError) -> None:
        if exc.stored < len(deliveries) - len(exc.conflicts):
            duplicates.inc(len(deliveries) - len(exc.conflicts) - exc.stored)
        by_payload = {id(d.payload): d for d in deliveries}
        only = []
        for conflict in exc.conflicts:
            conflicts.inc()
            text = f"message id conflict: {conflict.describe()}"
            log.error("persist %s: %s (dead-lettered)", queue_name, text)
            only.append((by_payload[id(conflict.message)], text))
            try:
                rejected = keys.rejected(conflict.message.room)
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.zadd(rejected, {id_member(conflict.message.id): 0})
                    pipe.expire(rejected, REJECTED_TTL_S)
                    await pipe.execute()
            except Exception as redis_exc:  # the DLQ keeps it; history may say 503 a while
                log.warning("cannot mark id %s rejected: %s", conflict.message.id, redis_exc)
        raise DeadLetter(str(exc), only=only)

    queue_name = queue or settings.persist_queue

    @app.consumer(
        PATTERN,
        exchange=settings.topic_exchange,
        queue=queue_name,
        validator=ChatMessageValidator(),
        only_headers={"event-type": "message"},
        batch=batch or BatchSpec(settings.persist_batch_size, settings.persist_batch_wait),
        max_attempts=None,
        backoff=backoff,
    )
    async def persist(deliveries: list[Delivery[StoredMessage]]) -> None:
        messages = [d.payload for d in deliveries]
        try:
            stored = await target.insert_many(messages)
        except StoreConflictError as exc:
            await settle(deliveries, exc)
            return
        if stored < len(messages):
            duplicates.inc(len(messages) - stored)
        log.debug("stored %d of %d message(s)", stored, len(messages))

    return app


def _message_id(text: str) -> int:
    value = int(text)  # the schema allows only decimal digits, no leading zero
    if not 0 < value <= MAX_MESSAGE_ID:
        raise InvalidChatMessageError(f"message id {text} outside 1..2**63-1")
    return value
