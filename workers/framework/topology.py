"""Queues a consumer needs, declared idempotently at start.

- `<queue>`: durable quorum queue, bound to `exchange` with each routing pattern.
- `<queue>.retry.<delay>` (one per distinct backoff delay): durable queue whose messages
  expire after the delay and are dead-lettered back to `<queue>` through the default exchange.
  Every message in one retry queue has the same TTL, so expiry from the head is exact.
- `<queue>.dlq`: durable quorum queue holding dead-lettered messages for a person to look at.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractQueue

from workers.framework.spec import ConsumerSpec

QUORUM = {"x-queue-type": "quorum"}


async def declare_topology(channel: AbstractChannel, spec: ConsumerSpec) -> AbstractQueue:
    queue = await channel.declare_queue(spec.queue, durable=True, arguments=dict(QUORUM))
    if spec.exchange:
        for pattern in spec.patterns:
            await queue.bind(spec.exchange, routing_key=pattern)
    for delay, name in spec.retry_queue_names.items():
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-message-ttl": max(1, round(delay * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": spec.queue,
            },
        )
    await channel.declare_queue(spec.dead_letter_queue, durable=True, arguments=dict(QUORUM))
    return queue
