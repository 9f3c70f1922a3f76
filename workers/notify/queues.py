"""The notify worker's own queues, and publishing to them.

- `stompgate.notify` (quorum, bound to `amq.topic` with `room.*`): chat messages; who should
  hear of each.
- `stompgate.notify.wait.<window>` (e.g. `stompgate.notify.wait.10s`; a quorum queue, its
  `x-message-ttl` the window, dead-lettering at least once to `stompgate.notify.due`; an
  older version's classic one is used as it is): collapse windows running.
- `stompgate.notify.due` (quorum): a window closed; decide and build the notification.
- `stompgate.notify.send` (quorum): one notification for one target, named by the header
  `stompgate-push-target` (a subscription id, or `webhook`).

Each of the three consumers also has the framework's retry queues and `<queue>.dlq`. The
wait queue is declared here (the framework declares the others); its name carries the
window, so changing the window declares a new queue instead of clashing with the old one's
TTL. Publishes are persistent, mandatory and publisher-confirmed, on a connection of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from workers.framework.connection import connect_cluster
from workers.framework.spec import delay_label
from workers.framework.topology import declare_delay_queue, delay_arguments
from workers.settings import split_amqp_urls

QUEUE = "stompgate.notify"
DUE_QUEUE = "stompgate.notify.due"
SEND_QUEUE = "stompgate.notify.send"
TARGET_HEADER = "stompgate-push-target"


@dataclass(frozen=True, slots=True)
class QueueNames:
    """The notify worker's queues in a deployment (the constants above: `stompgate`'s)."""

    deployment: str = "stompgate"

    @property
    def queue(self) -> str:
        return f"{self.deployment}.notify"

    @property
    def due(self) -> str:
        return f"{self.queue}.due"

    @property
    def send(self) -> str:
        return f"{self.queue}.send"

    def wait(self, window: float) -> str:
        return f"{self.queue}.wait.{delay_label(window)}"


def wait_queue(window: float) -> str:
    return QueueNames().wait(window)


class DueJob(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A collapse window of (user, room) is over; `token` names the window (collapse.py)."""

    user: str
    room: str
    token: str


_encode = msgspec.json.Encoder().encode
decode_due = msgspec.json.Decoder(DueJob).decode


class NotifyQueues:
    def __init__(
        self,
        amqp_url: str,
        window: float,
        names: QueueNames | None = None,
        *,
        quorum_group_size: int | None = None,
        reconnect_interval: float = 1.0,
    ) -> None:
        self.amqp_url = amqp_url
        self.window = window
        self.names = names or QueueNames()
        self.quorum_group_size = quorum_group_size
        self.reconnect_interval = reconnect_interval
        self.wait_queue = self.names.wait(window)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def open(self) -> None:
        connection = await connect_cluster(
            split_amqp_urls(self.amqp_url), reconnect_interval=self.reconnect_interval
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            arguments = delay_arguments(self.window, self.names.due, self.quorum_group_size)
            await declare_delay_queue(connection, channel, self.wait_queue, arguments)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def schedule(self, job: DueJob) -> None:
        """The job reaches `<deployment>.notify.due` one window from now."""
        await self._publish(self.wait_queue, _encode(job), {})

    async def send(self, body: bytes, target: str, key: str) -> None:
        """One push.notification.v1 `body` for `target`; `key` is its idempotency key."""
        await self._publish(self.names.send, body, {TARGET_HEADER: target}, message_id=key)

    async def _publish(
        self, queue: str, body: bytes, headers: dict[str, str], message_id: str | None = None
    ) -> None:
        if self._channel is None:
            raise RuntimeError("NotifyQueues is not open")
        message = aio_pika.Message(
            body,
            headers=dict(headers),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
