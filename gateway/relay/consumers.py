"""Per-subscription consumers on a shared pool of channels.

Queue, durable, exchange and client-ack subscriptions each get their own AMQP consumer, with
``basic.qos(prefetch_count, global=false)`` set just before ``basic.consume`` so the prefetch
is the subscription's own. Consumers share ``consumer_channels`` channels of two kinds:

* **auto** channels carry ``ack:auto`` subscriptions. Messages are consumed with manual acks
  (so ``prefetch-count`` bounds what is in flight, and a backlog is not dumped on the node)
  and acknowledged as soon as they were handed to the session: every delivery on such a
  channel is settled synchronously, so one cumulative ``basic.ack(multiple=true)`` per loop
  turn acks them all.
* **client** channels carry ``client``/``client-individual`` subscriptions. The channel keeps
  its unacknowledged delivery tags in order with their owners; a cumulative (``client``) ACK
  becomes one ``basic.ack(multiple=true)`` when every earlier unacked tag on the channel is
  the subscription's own, and individual acks otherwise, so one session's ACK never settles
  another session's messages.

Acks, nacks and rejects go out in order through one writer task per channel. An ``ack_id``
is ``"<channel serial>.<delivery tag>"``; ids from a channel that no longer exists (it was
closed, or the connection was lost) are ignored, because the broker has already requeued
those messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp import commands as spec

from .destinations import destination_of_delivery
from .errors import BrokerUnavailableError, SubscribeError, describe_amqp_error
from .settings import RelaySettings
from .subscription import DeliverySink, OnClosed, RelaySubscription, prepare_message

__all__ = ["ConsumerChannel", "ConsumerPool", "ConsumerSubscription"]

log = logging.getLogger("stompgate.relay")

_ACK, _NACK = True, False


class ConsumerChannel:
    """One pooled channel, its consumers and its unacknowledged deliveries."""

    __slots__ = (
        "_ack_upto",
        "_flush_scheduled",
        "_ops",
        "_writer",
        "channel",
        "client_mode",
        "consume_lock",
        "serial",
        "subs",
        "unacked",
    )

    def __init__(self, channel: AbstractChannel, serial: int, client_mode: bool) -> None:
        self.channel = channel
        self.serial = serial
        self.client_mode = client_mode
        self.subs: dict[str, ConsumerSubscription] = {}
        self.unacked: dict[int, ConsumerSubscription] = {}
        self.consume_lock = asyncio.Lock()
        self._ops: deque[tuple[bool, int, bool, bool]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._ack_upto = 0
        self._flush_scheduled = False

    @property
    def alive(self) -> bool:
        return not self.channel.is_closed

    # -- settling --------------------------------------------------------------------------

    def _enqueue(self, ack: bool, tag: int, multiple: bool, requeue: bool = True) -> None:
        self._ops.append((ack, tag, multiple, requeue))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._ops:
                ack, tag, multiple, requeue = self._ops.popleft()
                if ack:
                    await self.channel.basic_ack(tag, multiple=multiple, wait=False)
                else:
                    await self.channel.basic_nack(
                        tag, multiple=multiple, requeue=requeue, wait=False
                    )
        except Exception as exc:  # channel gone: the broker requeues what is unacked
            log.debug("dropping %d acks on closed channel: %s", len(self._ops) + 1, exc)
            self._ops.clear()
        finally:
            self._writer = None

    def auto_settled(self, tag: int) -> None:
        """An auto-mode delivery was handed over; ack it (cumulatively, once per loop turn)."""
        self._ack_upto = tag
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._ack_upto and self.alive:
            self._enqueue(_ACK, self._ack_upto, True)
        self._ack_upto = 0

    def requeue_one(self, tag: int) -> None:
        self._enqueue(_NACK, tag, False, True)

    def settle(self, sub: ConsumerSubscription, tags: list[int], ack: bool, requeue: bool) -> None:
        """Ack or nack ``tags`` (ascending, all ``sub``'s) on a client channel, cumulatively
        when no other subscription has an earlier unacked tag on this channel."""
        if not tags:
            return
        last = tags[-1]
        owned_prefix = True
        for tag, owner in self.unacked.items():
            if tag > last:
                break
            if owner is not sub:
                owned_prefix = False
                break
        for tag in tags:
            self.unacked.pop(tag, None)
            sub.unacked.pop(tag, None)
        if not self.alive:
            return
        if owned_prefix and len(tags) > 1:
            self._enqueue(ack, last, True, requeue)
        else:
            for tag in tags:
                self._enqueue(ack, tag, False, requeue)

    def forget(self, sub: ConsumerSubscription) -> None:
        """Drop ``sub``'s bookkeeping without telling the broker (its queue is gone)."""
        for tag in list(sub.unacked):
            self.unacked.pop(tag, None)
        sub.unacked.clear()


class ConsumerPool:
    """Up to ``consumer_channels`` channels per kind on the consuming connection."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        on_channel_lost: Callable[[ConsumerChannel], None] | None = None,
    ) -> None:
        """``on_channel_lost(channel)`` runs when the broker closes a channel that still
        had consumers (the connection being up): the relay restores them."""
        self._settings = settings
        self._connection: AbstractConnection | None = None
        self._channels: dict[bool, list[ConsumerChannel]] = {False: [], True: []}
        self._serials = itertools.count(1)
        self._tags = itertools.count(1)
        self._lock = asyncio.Lock()
        self._on_channel_lost = on_channel_lost

    def open(self, connection: AbstractConnection) -> None:
        self._connection = connection

    def reset(self) -> list[ConsumerChannel]:
        """The connection is gone: forget every channel; return them."""
        self._connection = None
        old = self._channels[False] + self._channels[True]
        self._channels = {False: [], True: []}
        return old

    def next_tag(self, hint: str) -> str:
        return f"stompgate.{next(self._tags)}.{hint[:64]}"

    async def acquire(self, client_mode: bool) -> ConsumerChannel:
        """The least-loaded channel of the kind, opening one while below the limit."""
        async with self._lock:
            connection = self._connection
            if connection is None or connection.is_closed:
                raise BrokerUnavailableError("broker unavailable")
            live = [c for c in self._channels[client_mode] if c.alive]
            self._channels[client_mode] = live
            if len(live) < self._settings.consumer_channels:
                channel = await connection.channel(publisher_confirms=False)
                pooled = ConsumerChannel(channel, next(self._serials), client_mode)
                self._watch(pooled, connection)
                live.append(pooled)
                return pooled
            return min(live, key=lambda c: len(c.subs))

    def _watch(self, pooled: ConsumerChannel, connection: AbstractConnection) -> None:
        def on_cancel(frame: spec.Basic.Cancel) -> None:
            self._broker_cancel(pooled, frame)

        def on_closed(_: asyncio.Future[object]) -> None:
            self._closed(pooled, connection)

        pooled.channel.on_consumer_cancel_callbacks.add(on_cancel)
        pooled.channel.closing.add_done_callback(on_closed)

    @staticmethod
    def _broker_cancel(pooled: ConsumerChannel, frame: spec.Basic.Cancel) -> None:
        tag = frame.consumer_tag or ""
        sub = pooled.subs.pop(tag, None)
        if sub is not None:
            sub.broker_cancelled()

    def _closed(self, pooled: ConsumerChannel, connection: AbstractConnection) -> None:
        channels = self._channels[pooled.client_mode]
        if pooled in channels:
            channels.remove(pooled)
        if connection is self._connection and not connection.is_closed and pooled.subs:
            log.warning(
                "consumer channel %d closed by the broker; restoring %d consumers",
                pooled.serial,
                len(pooled.subs),
            )
            if self._on_channel_lost is not None:
                self._on_channel_lost(pooled)


Prepare = Callable[[], Awaitable[str]]
Finalize = Callable[["ConsumerSubscription", Mapping[str, str] | None], Awaitable[None]]


class ConsumerSubscription(RelaySubscription):
    """A subscription with its own consumer (queue, durable, exchange, client-ack, temp)."""

    __slots__ = (
        "_channel",
        "_consuming",
        "_destination_override",
        "_finalize",
        "_pool",
        "_prepare",
        "_queue",
        "_tag",
        "durable",
        "prefetch",
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
        on_closed: OnClosed | None = None,
    ) -> None:
        super().__init__(sink, subscription_id, destination, ack_mode, on_closed=on_closed)
        self._pool = pool
        self._prepare = prepare
        self._finalize = finalize
        self._destination_override = destination_override
        self.prefetch = prefetch
        self.durable = durable
        self._channel: ConsumerChannel | None = None
        self._tag: str | None = None
        self._queue: str | None = None
        self._consuming = False
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

    async def establish(self) -> None:
        """Declare/bind (``prepare``), then consume; returns once the consumer exists."""
        if self._consuming:
            return
        self._queue = queue = await self._prepare()
        pooled = await self._pool.acquire(self.client_mode)
        tag = self._pool.next_tag(self.id)
        self._channel, self._tag = pooled, tag
        pooled.subs[tag] = self
        try:
            async with pooled.consume_lock:
                await pooled.channel.basic_qos(prefetch_count=self.prefetch, global_=False)
                await pooled.channel.basic_consume(
                    queue, self._on_message, no_ack=False, consumer_tag=tag
                )
        except Exception as exc:
            pooled.subs.pop(tag, None)
            if self._channel is pooled:
                self._channel = self._tag = None
            raise SubscribeError(
                f"broker refused the subscription: {describe_amqp_error(exc)}"
            ) from exc
        self._consuming = True
        if self._closed:  # cancelled while we were consuming
            await self._stop_consumer()

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
        # Whatever this consumer still holds goes back to the queue.
        if self.client_mode:
            pooled.settle(self, list(self.unacked), False, True)
        if self._channel is pooled:
            self._channel = self._tag = None

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        if not self.mark_closed():
            return
        await self._stop_consumer()
        await self._finalize(self, headers)

    # -- deliveries ------------------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        pooled = self._channel
        delivery = message.delivery
        if pooled is None or message.channel is not pooled.channel:
            return  # stale: that channel is gone and the broker requeues
        assert isinstance(delivery, spec.Basic.Deliver)
        tag = delivery.delivery_tag
        assert tag is not None
        if self.client_mode:
            pooled.unacked[tag] = self
            self.unacked[tag] = None
            if self._closed:
                pooled.settle(self, [tag], False, True)
                return
        elif self._closed:
            pooled.requeue_one(tag)
            return
        destination = self._destination_override or destination_of_delivery(
            delivery.exchange or "", delivery.routing_key or ""
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

    async def ack(self, ack_id: str) -> None:
        tag = self._parse(ack_id) if self.client_mode else None
        pooled = self._channel
        if tag is None or pooled is None:
            log.debug("ignoring ACK of unknown id %r", ack_id)
            return
        pooled.settle(self, self._scope(tag), _ACK, False)

    async def nack(self, ack_id: str, requeue: bool = True) -> None:
        tag = self._parse(ack_id) if self.client_mode else None
        pooled = self._channel
        if tag is None or pooled is None:
            log.debug("ignoring NACK of unknown id %r", ack_id)
            return
        pooled.settle(self, self._scope(tag), _NACK, requeue)
