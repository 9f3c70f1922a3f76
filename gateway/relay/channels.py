"""Each client's own AMQP channel for its consumers, on a few shared consume connections.

Theory of operation. The broker answers a bad ``basic.ack``, ``basic.consume`` or the like by
closing the channel it came on, and a channel carries every consumer opened on it. So each
client (each :class:`~gateway.relay.subscription.DeliverySink`, keyed by its session id) gets
a :class:`ClientChannel` of its own, opened when its first consumer needs it and closed when
its last one is gone (or it disconnects): a channel error reaches that one client only. The
relay refuses beforehand whatever would be a *connection* error
(:mod:`~gateway.relay.broker_rules`).

The channels live on the node's consume connection (:mod:`.link`), and on more consume
connections (``stompgate <node> consume-<n>``) opened only when one would pass its
``channel_max`` (the broker answers the channel after that with a connection error, 530):
each connection keeps ``SCRATCH_CHANNELS`` channels free for the topology's throw-away
channels, and takes ``client_channels_per_connection`` client channels at most (0: as many
as ``channel_max`` leaves). An extra connection closes again when its last channel does.

Settling. Every delivery on a channel, whatever its ack mode, is held in
:attr:`ClientChannel.unacked` until it is settled; ``ack:auto`` deliveries are acked once per
loop turn (cumulatively when nothing older is unsettled). A settle becomes one
``basic.ack``/``basic.nack`` with ``multiple`` only when no older delivery is unsettled, so
no ACK ever settles a message the client did not mean; only tags the channel holds are ever
sent (an unknown tag is a channel error). Acks go out in order through one writer task per
channel. An ``ack_id`` is ``"<channel serial>.<delivery tag>"``; ids of a channel that is
gone are ignored (the broker requeued those messages).

A delivery that comes from a stream (RabbitMQ marks it with an integer ``x-stream-offset``
header) is never nacked: the broker answers ``basic.nack`` on a stream with a connection
error. Released stream deliveries stay on the channel until it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from pamqp import commands as spec

from .errors import BrokerUnavailableError
from .settings import RelaySettings

__all__ = ["SCRATCH_CHANNELS", "ClientChannel", "Consumer", "ConsumerPool"]

log = logging.getLogger("stompgate.relay")

#: Channels each consume connection keeps free for the topology's throw-away channels.
SCRATCH_CHANNELS: Final = 32
#: The channel_max RabbitMQ negotiates by default (used when the broker says 0: no limit).
DEFAULT_CHANNEL_MAX: Final = 2047
_ACK, _NACK = True, False


class Consumer(Protocol):
    """A subscription consuming on a channel, as the channel sees it
    (:class:`~gateway.relay.consumers.ConsumerSubscription`)."""

    #: Does it read a stream (whose deliveries are never nacked)?
    stream: bool
    #: Its deliveries the client has still to ACK or NACK.
    unacked: dict[int, None]

    def broker_cancelled(self) -> None:
        """The broker cancelled the consumer (its queue was deleted)."""


class ClientChannel:
    """One client's channel: its consumers and every delivery not settled yet."""

    __slots__ = (
        "_auto",
        "_flush_scheduled",
        "_ops",
        "_writer",
        "channel",
        "connection",
        "consume_lock",
        "owner",
        "pending",
        "serial",
        "subs",
        "unacked",
    )

    def __init__(
        self, channel: AbstractChannel, connection: AbstractConnection, serial: int, owner: str
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.serial = serial
        self.owner = owner
        #: Consumers by consumer tag.
        self.subs: dict[str, Consumer] = {}
        #: Unsettled deliveries (in delivery order, so ascending) and their subscription.
        self.unacked: dict[int, Consumer] = {}
        #: Subscriptions being established on this channel right now.
        self.pending = 0
        self.consume_lock = asyncio.Lock()
        self._ops: deque[tuple[bool, int, bool, bool]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._auto: list[int] = []
        self._flush_scheduled = False

    @property
    def alive(self) -> bool:
        return not self.channel.is_closed

    @property
    def idle(self) -> bool:
        """No consumer on it and none being made: it may close."""
        return not self.subs and not self.pending

    # -- settling --------------------------------------------------------------------------

    def settle(self, tags: list[int], ack: bool, requeue: bool = False) -> None:
        """Ack or nack ``tags`` (ascending) that this channel holds unsettled; others are
        skipped. One ``multiple`` settle when no older delivery stays unsettled."""
        unacked = self.unacked
        settled = [tag for tag in tags if unacked.pop(tag, None) is not None]
        if not settled or not self.alive:
            return
        last = settled[-1]
        oldest_left = next(iter(unacked), None)
        if len(settled) > 1 and (oldest_left is None or oldest_left > last):
            self._enqueue(ack, last, True, requeue)
        else:
            for tag in settled:
                self._enqueue(ack, tag, False, requeue)

    def release(self, sub: Consumer, tags: list[int]) -> None:
        """``sub`` gives ``tags`` back unread: requeued, except from a stream (never
        nacked; they stay unsettled until the channel closes)."""
        for tag in tags:
            sub.unacked.pop(tag, None)
        if not sub.stream:
            self.settle(tags, _NACK, True)

    def auto_settled(self, tag: int) -> None:
        """An ``ack:auto`` delivery was handed over; ack it (once per loop turn)."""
        self._auto.append(tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        tags, self._auto = self._auto, []
        self.settle(tags, _ACK)

    def forget(self, sub: Consumer) -> None:
        """Drop ``sub``'s deliveries without telling the broker (its queue or channel is
        gone)."""
        for tag in list(sub.unacked):
            self.unacked.pop(tag, None)
        sub.unacked.clear()

    def _enqueue(self, ack: bool, tag: int, multiple: bool, requeue: bool) -> None:
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
            log.debug("dropping %d acks on a closed channel: %s", len(self._ops) + 1, exc)
            self._ops.clear()
        finally:
            self._writer = None

    async def close(self) -> None:
        """Send what is still to settle, then close the channel (the broker requeues what
        stays unacked, except on streams)."""
        if self._flush_scheduled:
            self._flush()
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer)
        if self.alive:
            with contextlib.suppress(Exception):
                await self.channel.close()


OnChannelLost = Callable[[ClientChannel], None]


class ConsumerPool:
    """The client channels of one node and the consume connections they live on."""

    def __init__(
        self, settings: RelaySettings, *, on_channel_lost: OnChannelLost | None = None
    ) -> None:
        """``on_channel_lost(channel)`` runs when a client channel that still had consumers
        is closed by the broker (or its extra connection is lost) while the node's consume
        connection is up: the relay restores them."""
        self._settings = settings
        self._on_channel_lost = on_channel_lost
        self._primary: AbstractConnection | None = None
        self._extra: list[AbstractConnection] = []
        self._counts: dict[int, int] = {}  # client channels per connection, by id()
        self._by_owner: dict[str, ClientChannel] = {}
        self._serials = itertools.count(1)
        self._tags = itertools.count(1)
        self._names = itertools.count(2)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, connection: AbstractConnection) -> None:
        """The node's consume connection is up."""
        self._primary = connection
        self._counts[id(connection)] = 0

    def reset(self) -> None:
        """The consume connection is gone: forget every channel; close extra connections."""
        self._primary = None
        extra, self._extra = self._extra, []
        self._by_owner.clear()
        self._counts.clear()
        for connection in extra:
            self._spawn(_close_connection(connection))

    async def close(self) -> None:
        """The relay closes: close extra connections (the link closes its own)."""
        self.reset()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def connections(self) -> list[AbstractConnection]:
        """The open consume connections, the node's own first."""
        found = [] if self._primary is None else [self._primary]
        return found + [c for c in self._extra if not c.is_closed]

    def channel_of(self, owner: str) -> ClientChannel | None:
        """The channel of client ``owner`` (a session id), if it has one."""
        return self._by_owner.get(owner)

    def next_tag(self, hint: str) -> str:
        """A consumer tag: unique on the node, at most 255 bytes whatever ``hint`` holds."""
        short = hint.encode()[:64].decode("utf-8", "ignore")
        return f"stompgate.{next(self._tags)}.{short}"

    # -- channels --------------------------------------------------------------------------

    async def acquire(self, owner: str) -> ClientChannel:
        """``owner``'s channel (opened if it has none), held open for a subscription being
        established: call :meth:`done` with it afterwards."""
        async with self._lock:
            pooled = self._by_owner.get(owner)
            if pooled is None or not pooled.alive:
                connection = await self._connection_with_room()
                channel = await connection.channel(publisher_confirms=False)
                pooled = ClientChannel(channel, connection, next(self._serials), owner)
                self._counts[id(connection)] = self._counts.get(id(connection), 0) + 1
                self._by_owner[owner] = pooled
                self._watch(pooled)
            pooled.pending += 1
            return pooled

    async def done(self, pooled: ClientChannel) -> None:
        """A subscription that :meth:`acquire` held the channel for is established (or
        failed): close the channel if nothing uses it any more."""
        pooled.pending -= 1
        await self.close_if_idle(pooled)

    async def close_if_idle(self, pooled: ClientChannel) -> None:
        """Close ``pooled`` if it has no consumer left."""
        if pooled.idle:
            await self._close(pooled)

    async def close_owner(self, owner: str) -> None:
        """Client ``owner`` is gone: close its channel."""
        pooled = self._by_owner.get(owner)
        if pooled is not None:
            await self._close(pooled)

    async def _close(self, pooled: ClientChannel) -> None:
        if self._by_owner.get(pooled.owner) is pooled:
            del self._by_owner[pooled.owner]
        await pooled.close()

    def _capacity(self, connection: AbstractConnection) -> int:
        configured = self._settings.client_channels_per_connection
        if configured:
            return configured
        tune = getattr(connection, "connection_tune", None)
        channel_max = int(getattr(tune, "channel_max", 0) or DEFAULT_CHANNEL_MAX)
        return max(1, channel_max - SCRATCH_CHANNELS - 1)

    async def _connection_with_room(self) -> AbstractConnection:
        primary = self._primary
        if primary is None or primary.is_closed:
            raise BrokerUnavailableError("broker unavailable")
        for connection in (primary, *self._extra):
            if connection.is_closed:
                continue
            if self._counts.get(id(connection), 0) < self._capacity(connection):
                return connection
        return await self._open_connection()

    async def _open_connection(self) -> AbstractConnection:
        settings = self._settings
        name = f"stompgate {settings.node_id} consume-{next(self._names)}"
        primary = self._primary
        if primary is None or primary.is_closed:
            raise BrokerUnavailableError("broker unavailable")
        try:
            async with asyncio.timeout(settings.connect_timeout):
                # The node the consume connection is on (of a cluster's several URLs).
                connection = await aiormq.connect(
                    primary.url, client_properties={"connection_name": name}
                )
        except Exception as exc:
            raise BrokerUnavailableError(f"broker unavailable ({exc})") from exc
        log.info("opened consume connection %r (channel_max reached on the others)", name)
        self._extra.append(connection)
        self._counts[id(connection)] = 0
        return connection

    def _watch(self, pooled: ClientChannel) -> None:
        def on_cancel(frame: spec.Basic.Cancel) -> None:
            sub = pooled.subs.pop(frame.consumer_tag or "", None)
            if sub is not None:
                sub.broker_cancelled()

        def on_closed(_: asyncio.Future[object]) -> None:
            self._closed(pooled)

        pooled.channel.on_consumer_cancel_callbacks.add(on_cancel)
        pooled.channel.closing.add_done_callback(on_closed)

    def _closed(self, pooled: ClientChannel) -> None:
        if self._by_owner.get(pooled.owner) is pooled:
            del self._by_owner[pooled.owner]
        connection = pooled.connection
        key = id(connection)
        if key in self._counts:
            self._counts[key] -= 1
            if connection is not self._primary and not self._counts[key]:
                self._spawn(self._retire(connection))
        primary = self._primary
        if pooled.subs and primary is not None and not primary.is_closed:
            log.warning(
                "client channel %d (session %s) closed by the broker; restoring %d consumers",
                pooled.serial,
                pooled.owner,
                len(pooled.subs),
            )
            if self._on_channel_lost is not None:
                self._on_channel_lost(pooled)

    async def _retire(self, connection: AbstractConnection) -> None:
        """Close an extra connection whose last client channel closed (unless one was
        opened on it meanwhile)."""
        async with self._lock:
            if self._counts.get(id(connection), 0) or connection not in self._extra:
                return
            self._extra.remove(connection)
            del self._counts[id(connection)]
        await _close_connection(connection)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _close_connection(connection: AbstractConnection) -> None:
    if not connection.is_closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), timeout=5)
