"""Queues a consumer needs, declared idempotently at start.

- `<queue>`: durable quorum queue, bound to `exchange` with each routing pattern.
- `<queue>.retry.<delay>` (one per distinct backoff delay): durable quorum queue whose
  messages expire after the delay and are dead-lettered back to `<queue>` through the default
  exchange, at least once (`x-dead-letter-strategy: at-least-once`, which needs
  `x-overflow: reject-publish`): an expired retry is never dropped, even while `<queue>` has
  no leader. Every message in one retry queue has the same TTL, so expiry from the head is
  exact.
- `<queue>.dlq`: durable quorum queue holding dead-lettered messages for a person to look at.

All three are quorum queues, so each lives on several nodes of a cluster (every node, or
`spec.quorum_group_size` of them) and survives the loss of a minority of its members. A
classic queue lives on one node: after that node is lost, declaring it again fails
(`NOT_FOUND - home node ... is down`), and aio-pika's reconnect would retry that forever.

Before this, retry queues were classic queues. One that exists already under its name (an
older deployment's) cannot be declared as a quorum queue (`PRECONDITION_FAILED`): it is used
as it is, with a warning (delete it once empty, and restart the worker, to have it redeclared
as a quorum queue; docs/migrating.md). That check runs on a channel of its own, because the
broker closes the channel a refused declare came on.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue

from workers.framework.spec import ConsumerSpec

log = logging.getLogger("stompgate.workers")

QUORUM = {"x-queue-type": "quorum"}


def quorum(spec: ConsumerSpec, **extra: Any) -> dict[str, Any]:
    """The arguments of one of ``spec``'s quorum queues."""
    arguments: dict[str, Any] = {**QUORUM, **extra}
    if spec.quorum_group_size is not None:
        arguments["x-quorum-initial-group-size"] = spec.quorum_group_size
    return arguments


async def declare_topology(
    connection: AbstractConnection, channel: AbstractChannel, spec: ConsumerSpec
) -> AbstractQueue:
    queue = await channel.declare_queue(spec.queue, durable=True, arguments=quorum(spec))
    if spec.exchange:
        for pattern in spec.patterns:
            await queue.bind(spec.exchange, routing_key=pattern)
    for delay, name in spec.retry_queue_names.items():
        arguments = delay_arguments(delay, spec.queue, spec.quorum_group_size)
        await declare_delay_queue(connection, channel, name, arguments)
    await channel.declare_queue(spec.dead_letter_queue, durable=True, arguments=quorum(spec))
    return queue


def delay_arguments(delay: float, target: str, group_size: int | None) -> dict[str, Any]:
    """A delay queue's arguments: quorum, messages expire after ``delay`` seconds and are
    dead-lettered, at least once, to queue ``target`` through the default exchange."""
    arguments: dict[str, Any] = {
        **QUORUM,
        "x-message-ttl": max(1, round(delay * 1000)),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    if group_size is not None:
        arguments["x-quorum-initial-group-size"] = group_size
    return arguments


async def declare_delay_queue(
    connection: AbstractConnection,
    channel: AbstractChannel,
    name: str,
    arguments: dict[str, Any],
) -> None:
    """Declare delay queue ``name`` on ``channel`` (so a robust channel declares it again
    after a reconnect), unless a queue of that name exists with other arguments (an older
    version's classic one): then it is used as it is, with a warning."""
    if await _declarable(connection, name, arguments):
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def _declarable(connection: AbstractConnection, name: str, arguments: dict[str, Any]) -> bool:
    """Declare ``name`` on a channel of its own; False (and a warning) when a queue of that
    name exists with other arguments: an older deployment's classic retry queue."""
    scratch = await connection.channel(publisher_confirms=False)
    try:
        await scratch.declare_queue(name, durable=True, arguments=arguments)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        log.warning(
            "delay queue %s exists with other arguments (%s): using it as it is; delete it "
            "once empty and restart the worker to have it declared as a quorum queue",
            name,
            exc,
        )
        return False
    finally:
        with contextlib.suppress(Exception):
            await scratch.close()
    return True
