"""Subscriptions with a consumer of their own, each on its client's own channel.

Queue, durable, exchange and client-ack subscriptions (and temp queues) each get their own
AMQP consumer on the channel of their client (:mod:`.channels`), with
``basic.qos(prefetch_count, global=false)`` set just before ``basic.consume`` so the prefetch
is the subscription's own. Messages are always consumed with manual acks: ``ack:auto``
deliveries are acked by the relay once handed to the session (so ``prefetch-count`` bounds
what is in flight, and a stream, which refuses automatic acks, works too), ``client`` and
``client-individual`` ones when the client ACKs them (cumulative within the subscription
for ``client``, one message for ``client-individual``), never settling another
subscription's messages.

A subscription knows it reads a **stream** when its plan declared one (``x-queue-type:
stream``) or once a delivery carries the integer ``x-stream-offset`` header RabbitMQ puts on
every message a stream delivers (that header is also what the MESSAGE frame shows, as
RabbitMQ's STOMP plugin shows it). A NACK on a stream is refused with an ERROR (RabbitMQ
answers ``basic.nack`` on a stream with a connection error), and what a stream subscription
gives back unread on UNSUBSCRIBE or disconnect is never nacked.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiormq.abc import AbstractConnection, DeliveredMessage
from pamqp import commands as spec
from pamqp.common import FieldValue

from .broker_rules import stream_nack
from .channels import ClientChannel, ConsumerPool
from .destinations import TOPIC_EXCHANGE, destination_of_delivery
from .errors import SubscribeError, describe_amqp_error
from .subscription import DeliverySink, OnClosed, RelaySubscription, prepare_message

__all__ = ["ConsumerSubscription", "is_stream_delivery"]

log = logging.getLogger("stompgate.relay")

_ACK = True
_STREAM_OFFSET = "x-stream-offset"


def is_stream_delivery(properties: spec.Basic.Properties) -> bool:
    """Did this message come from a stream? (RabbitMQ adds an integer ``x-stream-offset``
    header to each; a STOMP client can only set string headers.)"""
    headers = properties.headers
    if not headers:
        return False
    offset = headers.get(_STREAM_OFFSET)
    return isinstance(offset, int) and not isinstance(offset, bool)


#: Declares, checks and binds what the subscription reads, on the given connection (the
#: one its client's channel is on: an exclusive queue is its connection's own); returns the
#: queue's name.
Prepare = Callable[[AbstractConnection], Awaitable[str]]
Finalize = Callable[["ConsumerSubscription", Mapping[str, str] | None], Awaitable[None]]


class ConsumerSubscription(RelaySubscription):
    """A subscription with its own consumer (queue, durable, exchange, client-ack, temp)."""

    __slots__ = (
        "_arguments",
        "_channel",
        "_consuming",
        "_destination_override",
        "_establishing",
        "_finalize",
        "_pool",
        "_prepare",
        "_queue",
        "_tag",
        "_topic_exchange",
        "durable",
        "prefetch",
        "stream",
        "unacked",
    )

    def __init__(
        self,
        pool: ConsumerPool,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack_mode: str,
        *,
        prefetch: int,
        prepare: Prepare,
        finalize: Finalize,
        durable: bool = False,
        destination_override: str | None = None,
        arguments: Mapping[str, FieldValue] | None = None,
        stream: bool = False,
        on_closed: OnClosed | None = None,
        topic_exchange: str = TOPIC_EXCHANGE,
    ) -> None:
        """``arguments``: of ``basic.consume``; ``stream``: the queue is known to be a
        stream (else it is found out from the deliveries); ``topic_exchange``: deliveries
        from it are shown as ``/topic/<key>``."""
        super().__init__(sink, subscription_id, destination, ack_mode, on_closed=on_closed)
        self._pool = pool
        self._prepare = prepare
        self._finalize = finalize
        self._destination_override = destination_override
        self._topic_exchange = topic_exchange
        self._arguments = dict(arguments) if arguments else None
        self.prefetch = prefetch
        self.durable = durable
        self.stream = stream
        self._channel: ClientChannel | None = None
        self._tag: str | None = None
        self._queue: str | None = None
        self._consuming = False
        self._establishing = False
        self.unacked: dict[int, None] = {}

    @property
    def queue(self) -> str | None:
        return self._queue

    @property
    def client_mode(self) -> bool:
        return self.ack_mode != "auto"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def established(self) -> bool:
        """True while a consumer exists on the broker for this subscription."""
        return self._consuming

    @property
    def establishing(self) -> bool:
        """True while :meth:`establish` runs."""
        return self._establishing

    async def establish(self) -> None:
        """Declare/bind (``prepare``), then consume on the client's channel; returns once
        the consumer exists."""
        if self._consuming or self._closed or self._establishing:
            return
        self._establishing = True
        try:
            pooled = await self._pool.acquire(self.sink.session_id)
            try:
                await self._consume_on(pooled)
            finally:
                await self._pool.done(pooled)
        finally:
            self._establishing = False

    async def _consume_on(self, pooled: ClientChannel) -> None:
        if self._cancelled():
            return
        self._queue = queue = await self._prepare(pooled.connection)
        if self._cancelled():
            return
        tag = self._pool.next_tag(self.id)
        self._channel, self._tag = pooled, tag
        pooled.subs[tag] = self
        try:
            async with pooled.consume_lock:
                await pooled.channel.basic_qos(prefetch_count=self.prefetch, global_=False)
                await pooled.channel.basic_consume(
                    queue,
                    self._on_message,
                    no_ack=False,
                    consumer_tag=tag,
                    arguments=self._arguments,
                )
        except Exception as exc:
            pooled.subs.pop(tag, None)
            if self._channel is pooled:
                self._channel = self._tag = None
            raise SubscribeError(
                f"broker refused the subscription: {describe_amqp_error(exc)}"
            ) from exc
        self._consuming = True
        if self._cancelled():  # while we were consuming
            await self._stop_consumer()

    def _cancelled(self) -> bool:
        """Closed (by :meth:`cancel`, maybe while an await of ours was pending)?"""
        return self._closed

    def lost(self) -> None:
        """The channel or connection is gone: the broker requeued our unacked messages."""
        pooled = self._channel
        if pooled is not None and self._tag is not None:
            pooled.subs.pop(self._tag, None)
            pooled.forget(self)
        self._channel = self._tag = None
        self._consuming = False
        self.unacked.clear()

    def broker_cancelled(self) -> None:
        log.warning(
            "broker cancelled consumer for %s (queue %r deleted?)",
            self.destination,
            self._queue,
            extra={"session": self.sink.session_id},
        )
        self.lost()

    async def _stop_consumer(self) -> None:
        pooled, tag = self._channel, self._tag
        if pooled is None or tag is None or not self._consuming:
            return  # not consuming (yet): establish() stops it once consume returns
        self._consuming = False
        if pooled.alive:
            with contextlib.suppress(Exception):
                await pooled.channel.basic_cancel(tag)
        pooled.subs.pop(tag, None)
        # What this consumer still holds goes back to the queue (not on a stream).
        pooled.release(self, list(self.unacked))
        if self._channel is pooled:
            self._channel = self._tag = None

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        if not self.mark_closed():
            return
        pooled = self._channel
        await self._stop_consumer()
        await self._finalize(self, headers)
        if pooled is not None:
            await self._pool.close_if_idle(pooled)

    # -- deliveries ------------------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        pooled = self._channel
        delivery = message.delivery
        if pooled is None or message.channel is not pooled.channel:
            return  # stale: that channel is gone and the broker requeues
        assert isinstance(delivery, spec.Basic.Deliver)
        tag = delivery.delivery_tag
        assert tag is not None
        pooled.unacked[tag] = self
        if not self.stream and is_stream_delivery(message.header.properties):
            self.stream = True
        if self._closed:
            pooled.release(self, [tag])
            return
        if self.client_mode:
            self.unacked[tag] = None
        destination = self._destination_override or destination_of_delivery(
            delivery.exchange or "", delivery.routing_key or "", self._topic_exchange
        )
        prepared = prepare_message(message, destination)
        ack_id = f"{pooled.serial}.{tag}" if self.client_mode else None
        try:
            self.sink.deliver(self.id, prepared, ack_id)
        except Exception:
            log.exception("sink failed to take a message", extra={"session": self.sink.session_id})
        if not self.client_mode:
            pooled.auto_settled(tag)

    # -- ACK / NACK ------------------------------------------------------------------------

    def _parse(self, ack_id: str) -> int | None:
        pooled = self._channel
        if pooled is None:
            return None
        serial, _, tag = ack_id.partition(".")
        if serial != str(pooled.serial) or not tag.isdigit():
            return None
        number = int(tag)
        return number if number in self.unacked else None

    def owns(self, ack_id: str) -> bool:
        return self.client_mode and self._parse(ack_id) is not None

    def _scope(self, tag: int) -> list[int]:
        if self.ack_mode == "client-individual":
            return [tag]
        scope: list[int] = []
        for unacked in self.unacked:
            if unacked > tag:
                break
            scope.append(unacked)
        return scope

    def _settle(self, ack_id: str, ack: bool, requeue: bool) -> None:
        tag = self._parse(ack_id) if self.client_mode else None
        pooled = self._channel
        if tag is None or pooled is None:
            log.debug("ignoring ACK/NACK of unknown id %r", ack_id)
            return
        scope = self._scope(tag)
        for settled in scope:
            self.unacked.pop(settled, None)
        pooled.settle(scope, ack, requeue)

    async def ack(self, ack_id: str) -> None:
        self._settle(ack_id, _ACK, False)

    async def nack(self, ack_id: str, requeue: bool = True) -> None:
        if self.client_mode and self.stream:
            raise stream_nack(self.destination)
        self._settle(ack_id, not _ACK, requeue)
