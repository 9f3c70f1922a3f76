"""Channels of :class:`gateway.relay.wire.AmqpWire`: RPCs, confirmed publishes, deliveries.

A channel holds what AMQP keeps per channel: one synchronous request at a time, the
publish sequence and the futures waiting for their confirms, the consumers, and a
``basic.deliver``/``basic.return`` whose header and body frames are still to come. The
connection cuts the bytes into frames and hands each channel its own, from
``data_received``, through the methods under "frames from the wire".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from pamqp import commands as spec

from .wire_codec import MethodFrame, encode_method, encode_publish, read_properties

__all__ = [
    "ChannelClosedError",
    "ConfirmCallback",
    "ConfirmTimeoutError",
    "ConnectionLostError",
    "Delivery",
    "NackedError",
    "ReturnedError",
    "WireChannel",
    "WireError",
]

log = logging.getLogger("stompgate.relay")

DELIVER = 60  # basic.deliver's method id, also the kind of a PendingContent
RETURN = 50  # basic.return's


class WireLink(Protocol):
    """What a channel needs of its connection."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def frame_max(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def forget_channel(self, channel: WireChannel) -> None: ...


# -- errors ---------------------------------------------------------------------------------


class WireError(Exception):
    """Something the broker or the connection did to a request; ``str()`` says what."""


class ConnectionLostError(WireError):
    """The connection is gone (closed by the broker, a socket error, missed heart-beats)."""


class ChannelClosedError(WireError):
    """The broker closed the channel; ``code`` is its reply code (404: not found, ...)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text or f"channel closed ({code})")
        self.code = code


class NackedError(WireError):
    """The broker refused a publish (``basic.nack``)."""


class ReturnedError(WireError):
    """A ``mandatory`` publish could not be routed (``basic.return``)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class ConfirmTimeoutError(WireError):
    """No confirm within the publish's timeout."""


# -- deliveries -----------------------------------------------------------------------------


class Delivery:
    """One ``basic.deliver`` with its properties and body."""

    __slots__ = ("body", "delivery_tag", "exchange", "properties", "redelivered", "routing_key")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        delivery_tag: int,
        redelivered: bool,
        properties: spec.Basic.Properties,
        body: bytes,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.properties = properties
        self.body = body


DeliveryCallback = Callable[[Delivery], None]
#: ``on_confirm(error, seconds)``: how a publish ended (None: confirmed) and how long it took.
ConfirmCallback = Callable[["WireError | None", float], None]
Waiter = asyncio.Future[None] | ConfirmCallback


class PendingContent:
    """A ``basic.deliver`` (``kind`` 60) or ``basic.return`` (50) waiting for its header and
    body frames; a return keeps its reply code in ``delivery_tag`` and text in ``exchange``."""

    __slots__ = (
        "chunks",
        "consumer_tag",
        "delivery_tag",
        "exchange",
        "kind",
        "properties",
        "received",
        "redelivered",
        "routing_key",
        "size",
    )

    def __init__(
        self,
        kind: int,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
    ) -> None:
        self.kind = kind
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties: spec.Basic.Properties | None = None
        self.size = -1
        self.received = 0
        self.chunks: list[bytes] = []


# -- channels -------------------------------------------------------------------------------


class WireChannel:
    """One AMQP channel of an :class:`AmqpWire`."""

    __slots__ = (
        "_consumers",
        "_content",
        "_order",
        "_pending",
        "_returned",
        "_rpc_lock",
        "_rpc_waiter",
        "_seq",
        "_wire",
        "close_reason",
        "confirming",
        "critical",
        "number",
    )

    def __init__(self, wire: WireLink, number: int, *, critical: bool = False) -> None:
        self._wire = wire
        self.number = number
        self._rpc_lock = asyncio.Lock()
        self._rpc_waiter: asyncio.Future[MethodFrame] | None = None
        self._consumers: dict[str, DeliveryCallback] = {}
        self._content: PendingContent | None = None
        self.confirming = False
        #: If the broker closes this channel, drop the whole connection (see AmqpWire).
        self.critical = critical
        self._seq = 0
        self._pending: dict[int, tuple[Waiter, float]] = {}  # seq -> (waiter, sent at)
        self._order: collections.deque[tuple[int, float]] = collections.deque()
        self._returned: ReturnedError | None = None
        self.close_reason: WireError | None = None

    @property
    def is_closed(self) -> bool:
        return self.close_reason is not None

    @property
    def inflight(self) -> int:
        """Publishes waiting for their confirm."""
        return len(self._pending)

    # -- requests ---------------------------------------------------------------------------

    async def rpc(self, method: MethodFrame) -> MethodFrame:
        """Send a synchronous method and return the broker's reply."""
        async with self._rpc_lock:
            if self.close_reason is not None:
                raise self.close_reason
            waiter = self._wire.loop.create_future()
            self._rpc_waiter = waiter
            try:
                self._wire.write(encode_method(self.number, method))
                reply: MethodFrame = await waiter
                return reply
            finally:
                self._rpc_waiter = None

    async def confirm_select(self) -> None:
        await self.rpc(spec.Confirm.Select())
        self.confirming = True

    async def queue_declare(
        self,
        queue: str,
        *,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
    ) -> str:
        ok = await self.rpc(
            spec.Queue.Declare(
                queue=queue, durable=durable, exclusive=exclusive, auto_delete=auto_delete
            )
        )
        assert isinstance(ok, spec.Queue.DeclareOk)
        return ok.queue or queue

    async def queue_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        await self.rpc(spec.Queue.Bind(queue=queue, exchange=exchange, routing_key=routing_key))

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        await self.rpc(spec.Queue.Unbind(queue=queue, exchange=exchange, routing_key=routing_key))

    async def basic_consume(self, queue: str, callback: DeliveryCallback) -> str:
        """Consume ``queue`` without acks; ``callback`` runs inside ``data_received``.

        The consumer tag is ours and the callback is in place before the request goes out:
        the broker may send deliveries right behind its ``consume-ok``, in the same read,
        before this coroutine runs again."""
        tag = f"stompgate.{self.number}.{len(self._consumers) + 1}"
        self._consumers[tag] = callback
        try:
            await self.rpc(spec.Basic.Consume(queue=queue, consumer_tag=tag, no_ack=True))
        except BaseException:
            self._consumers.pop(tag, None)
            raise
        return tag

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        mandatory: bool = False,
        timeout: float,
    ) -> asyncio.Future[None]:
        """Write a publish now; the future resolves on its confirm (or fails, see above).

        Raises ValueError for names that do not fit AMQP, and the channel's close reason if
        it is closed. ``mandatory`` publishes need a channel with nothing in flight.
        """
        future = self._wire.loop.create_future()
        self._write_publish(exchange, routing_key, body, properties, mandatory, timeout, future)
        return future

    def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        timeout: float,
        on_confirm: ConfirmCallback,
    ) -> None:
        """Write a publish now; ``on_confirm(error, seconds)`` runs once, inside
        ``data_received``, when the broker confirms it (error None) or it fails. No future,
        no loop turn: the cheapest way to learn the outcome. Raises like :meth:`publish`."""
        self._write_publish(exchange, routing_key, body, properties, False, timeout, on_confirm)

    def _write_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        mandatory: bool,
        timeout: float,
        waiter: Waiter,
    ) -> None:
        if self.close_reason is not None:
            raise self.close_reason
        if not self.confirming:
            raise RuntimeError("publish() on a channel without confirm.select")
        if mandatory and self._pending:
            raise RuntimeError("a mandatory publish needs a channel with nothing in flight")
        wire = self._wire
        data = encode_publish(
            self.number,
            exchange,
            routing_key,
            body,
            properties,
            mandatory=mandatory,
            frame_max=wire.frame_max,
        )
        now = wire.loop.time()
        self._seq += 1
        seq = self._seq
        self._pending[seq] = (waiter, now)
        self._order.append((seq, now + timeout))
        wire.write(data)

    async def close(self) -> None:
        """Close the channel (its pending publishes fail)."""
        if self.close_reason is not None:
            return
        with contextlib.suppress(WireError):
            await self.rpc(
                spec.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
            )
        self.mark_closed(ChannelClosedError(200, "channel closed by the gateway"))

    # -- frames from the wire ---------------------------------------------------------------

    def handle_reply(self, method: MethodFrame) -> None:
        """The broker's answer to this channel's synchronous request."""
        waiter = self._rpc_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(method)
        else:
            log.warning("unexpected AMQP method on channel %d: %s", self.number, method.name)

    def handle_confirm(self, tag: int, multiple: bool, ok: bool) -> None:
        """A ``basic.ack`` (``ok``) or ``basic.nack`` for publish ``tag`` (and every earlier
        one, if ``multiple``)."""
        pending = self._pending
        if multiple:
            order = self._order
            while order and order[0][0] <= tag:
                entry = pending.pop(order.popleft()[0], None)
                if entry is not None:
                    self._settle(entry, ok)
        else:
            entry = pending.pop(tag, None)
            if entry is not None:
                self._settle(entry, ok)
            order = self._order
            while order and order[0][0] not in pending:  # drop settled entries at the front
                order.popleft()

    def _settle(self, entry: tuple[Waiter, float], ok: bool) -> None:
        returned, self._returned = self._returned, None
        error: WireError | None
        if returned is not None:
            error = returned
        elif ok:
            error = None
        else:
            error = NackedError("broker refused the message (nack)")
        _resolve(entry, error, self._wire.loop.time())

    def sweep(self, now: float) -> None:
        """Fail publishes whose confirm is overdue (the connection calls it every second)."""
        order = self._order
        pending = self._pending
        while order and order[0][1] <= now:
            entry = pending.pop(order.popleft()[0], None)
            if entry is not None:
                _resolve(entry, ConfirmTimeoutError("no confirm in time"), now)

    def begin_content(self, content: PendingContent) -> None:
        """A ``basic.deliver`` or ``basic.return``: its header and body frames come next."""
        self._content = content

    def content_header(self, payload: bytes) -> None:
        """The content header frame of the pending delivery or return."""
        content = self._content
        if content is None:
            return
        content.size, content.properties = read_properties(payload)
        if content.size == 0:
            self._content = None
            self._content_done(content)

    def content_body(self, payload: bytes) -> None:
        """A body frame of the pending delivery or return."""
        content = self._content
        if content is None:
            return
        content.chunks.append(payload)
        content.received += len(payload)
        if content.received >= content.size:
            self._content = None
            self._content_done(content)

    def _content_done(self, content: PendingContent) -> None:
        body = b"".join(content.chunks) if len(content.chunks) != 1 else content.chunks[0]
        properties = content.properties
        if properties is None:  # pragma: no cover - the header frame always sets them
            properties = spec.Basic.Properties()
        if content.kind == DELIVER:
            callback = self._consumers.get(content.consumer_tag)
            if callback is not None:
                callback(
                    Delivery(
                        content.exchange,
                        content.routing_key,
                        content.delivery_tag,
                        content.redelivered,
                        properties,
                        body,
                    )
                )
        else:
            self._returned = ReturnedError(content.delivery_tag, content.exchange)

    def mark_closed(self, reason: WireError) -> None:
        """The channel is gone (the broker closed it, or the connection): everything waiting
        on it fails with ``reason``."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        waiter = self._rpc_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(reason)
        pending, self._pending = self._pending, {}
        self._order.clear()
        now = self._wire.loop.time()
        for entry in pending.values():
            _resolve(entry, reason, now)
        self._consumers.clear()
        self._wire.forget_channel(self)


def _resolve(entry: tuple[Waiter, float], error: WireError | None, now: float) -> None:
    """Tell a publish's waiter (a future or an ``on_confirm`` callback) how it ended."""
    waiter, sent = entry
    if isinstance(waiter, asyncio.Future):
        if waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
        return
    try:
        waiter(error, now - sent)
    except Exception:
        log.exception("on_confirm callback failed")
