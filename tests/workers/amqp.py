"""AMQP helpers for worker tests: publish, peek at queues, wait for conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage


@asynccontextmanager
async def channel(url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def publish(
    ch: AbstractChannel,
    routing_key: str,
    body: bytes,
    *,
    exchange: str = "amq.topic",
    headers: Mapping[str, Any] | None = None,
    **properties: Any,
) -> None:
    target = await ch.get_exchange(exchange) if exchange else ch.default_exchange
    await target.publish(
        aio_pika.Message(
            body,
            headers=dict(headers or {}),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            **properties,
        ),
        routing_key=routing_key,
    )


async def ready_count(ch: AbstractChannel, queue: str) -> int:
    declared = await ch.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    return int(count or 0)


async def drain_queue(ch: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Take (and ack) every ready message of `queue`."""
    q = await ch.declare_queue(queue, passive=True)
    out = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        out.append(message)
    return out


async def wait_for(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_for_async(
    probe: Callable[[], Any], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
