"""Publishing with publisher confirms over a small pool of channels of the node's wire.

The channels are shared by every client of the node, so a publish the broker could refuse
by closing its channel must not share a channel with publishes the broker takes. What is
known to be refused never gets here (:mod:`.broker_rules`, and the wire refuses properties
that would not fit in one frame); the rest is sorted by what can still fail:

* Publishes to ``amq.topic`` (rooms and every other ``/topic/``) all take the *topic
  channel*, which also consumes the node's fan-out queue: the broker then writes a publish's
  confirm and the delivery of the same message from one channel writer, often in one TCP
  segment, and the node reads them in one go (measured: a few per cent less CPU per message
  on both sides and a lower p99). ``amq.topic`` always exists, and routing keys and
  properties are checked before they get here, so the broker has no reason to close that
  channel; if it does anyway, the node reconnects (the channel is *critical*, see
  :mod:`.wire`).
* Publishes to the default exchange (``/queue/``, ``/reply-queue/``), which always exists
  and routes to a missing queue without an error, use ``publish_channels`` further channels
  in confirm mode: round-robin for awaited publishes, by *lane* (one per session) for
  pipelined ones so that they keep their order.
* Publishes to any other exchange (``/exchange/<name>``, the user exchange) take a channel of
  that exchange alone: the exchange may be deleted after it was checked, or be internal, and
  the broker then closes the channel (404, 403), which fails only publishes to that exchange,
  all refused alike. Such a channel is reopened on next use; at most
  ``MAX_EXCHANGE_CHANNELS`` idle ones are kept.
* ``mandatory`` publishes (only ``/amq/queue/``) go through one channel of their own, one at
  a time, because a ``basic.return`` does not say which publish it returns.

A session's SENDs keep their order per kind of destination (they share a channel).

A publish returns only when the broker confirmed it; a nack, a return, a closed channel, a
lost connection or no confirm within ``confirm_timeout`` raise
:class:`~gateway.relay.errors.PublishError`, whose ``__cause__`` is the wire's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pamqp import commands as spec

from .broker_rules import headers_too_large
from .destinations import TOPIC_EXCHANGE
from .errors import PublishError
from .settings import RelaySettings
from .wire import (
    AmqpWire,
    ChannelClosedError,
    ConfirmTimeoutError,
    ContentHeaderTooLargeError,
    NackedError,
    ReturnedError,
    WireChannel,
    WireError,
)

__all__ = ["TOPIC_EXCHANGE", "ConfirmPublisher", "PublishCallback"]

NOT_FOUND = 404  # AMQP reply code: no such exchange or queue
#: Idle per-exchange channels kept open at most (busy ones are never closed).
MAX_EXCHANGE_CHANNELS = 64

log = logging.getLogger("stompgate.relay")

#: ``on_confirm(error, seconds)``: None once confirmed, else why not; and how long it took.
PublishCallback = Callable[[PublishError | None, float], None]


class ConfirmPublisher:
    """Confirm channels (topic, lanes, mandatory); each publish awaited or reported back."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        on_not_found: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_not_found(exchange, routing key)`` runs when the broker says NOT_FOUND to a
        publish (a queue, for exchange ``""``)."""
        self._settings = settings
        self._wire: AmqpWire | None = None
        self._channels: list[WireChannel | None] = []
        self._topic: WireChannel | None = None
        self._locks: list[asyncio.Lock] = []
        self._mandatory: WireChannel | None = None
        self._mandatory_lock = asyncio.Lock()
        self._exchanges: dict[str, WireChannel] = {}  # oldest first
        self._exchanges_lock = asyncio.Lock()
        self._next = 0
        self._pending = 0  # publishes awaiting their confirm
        self._idle = asyncio.Event()
        self._idle.set()
        self.unavailable_text = "broker unavailable"
        self._on_not_found = on_not_found

    async def open(self, wire: AmqpWire) -> None:
        """Open the confirm channels on a fresh connection."""
        channels: list[WireChannel | None] = []
        for _ in range(self._settings.publish_channels):
            channels.append(await wire.channel(confirms=True))
        topic = await wire.channel(confirms=True, critical=True)
        self._topic = topic
        self._wire = wire
        self._channels = channels
        self._locks = [asyncio.Lock() for _ in channels]
        self._mandatory = None
        self._exchanges = {}

    def reset(self, reason: str) -> None:
        """The connection is gone: forget its channels (in-flight publishes fail by
        themselves: the wire fails their futures)."""
        self._wire = None
        self._topic = None
        self._channels = []
        self._locks = []
        self._mandatory = None
        self._exchanges = {}
        self.unavailable_text = f"broker unavailable ({reason})"

    @property
    def inflight(self) -> int:
        return self._pending

    async def drain(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for in-flight publishes to be confirmed."""
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), seconds)

    def _usable_wire(self) -> AmqpWire:
        wire = self._wire
        if wire is None or wire.is_closed or not self._channels:
            raise PublishError(self.unavailable_text)
        return wire

    async def _reopen(self, wire: AmqpWire) -> WireChannel:
        try:
            return await wire.channel(confirms=True)
        except WireError as exc:
            raise PublishError(f"broker unavailable ({exc})") from exc

    @property
    def topic_channel(self) -> WireChannel:
        """The channel of ``amq.topic`` publishes; the fan-out queue consumes on it too."""
        if self._topic is None:
            raise PublishError(self.unavailable_text)
        return self._topic

    async def _channel(self, exchange: str, lane: int | None = None) -> WireChannel:
        wire = self._usable_wire()
        if exchange == self._settings.topic_exchange:
            topic = self._topic
            if topic is None or topic.is_closed:
                raise PublishError(self.unavailable_text)
            return topic
        if exchange:
            return await self._exchange_channel(wire, exchange)
        if lane is None:
            index = self._next % len(self._channels)
            self._next = index + 1
        else:
            index = lane % len(self._channels)
        channel = self._channels[index]
        if channel is not None and not channel.is_closed:
            return channel
        async with self._locks[index]:
            channel = self._channels[index]
            if channel is None or channel.is_closed:
                channel = await self._reopen(wire)
                if self._wire is wire:
                    self._channels[index] = channel
            return channel

    async def _exchange_channel(self, wire: AmqpWire, exchange: str) -> WireChannel:
        """The channel of publishes to ``exchange`` (not ``amq.topic``, not the default)."""
        channel = self._exchanges.get(exchange)
        if channel is not None and not channel.is_closed:
            return channel
        async with self._exchanges_lock:
            channel = self._exchanges.get(exchange)
            if channel is not None and not channel.is_closed:
                return channel
            await self._trim_exchange_channels()
            channel = await self._reopen(wire)
            if self._wire is wire:
                self._exchanges.pop(exchange, None)
                self._exchanges[exchange] = channel
            return channel

    async def _trim_exchange_channels(self) -> None:
        """Forget closed exchange channels; close the oldest idle ones past the cap."""
        exchanges = self._exchanges
        for name in [n for n, c in exchanges.items() if c.is_closed]:
            del exchanges[name]
        excess = len(exchanges) - MAX_EXCHANGE_CHANNELS + 1
        for name in [n for n, c in exchanges.items() if not c.inflight][: max(excess, 0)]:
            await exchanges.pop(name).close()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        mandatory: bool = False,
        unroutable: str = "message could not be routed",
        lane: int | None = None,
    ) -> None:
        """Publish and wait for the confirm; raise PublishError otherwise.

        ``unroutable`` is the error text when a ``mandatory`` publish comes back. ``lane``:
        as for :meth:`publish_nowait` (None: round-robin).
        """
        self._pending += 1
        self._idle.clear()
        try:
            if mandatory:
                async with self._mandatory_lock:
                    wire = self._usable_wire()
                    channel = self._mandatory
                    if channel is None or channel.is_closed:
                        channel = self._mandatory = await self._reopen(wire)
                    await self._confirm(channel, exchange, routing_key, body, properties, True)
            else:
                channel = await self._channel(exchange, lane)
                await self._confirm(channel, exchange, routing_key, body, properties, False)
        except ReturnedError as exc:
            raise PublishError(unroutable) from exc
        finally:
            self._pending -= 1
            if not self._pending:
                self._idle.set()

    async def _confirm(
        self,
        channel: WireChannel,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        mandatory: bool,
    ) -> None:
        try:
            await channel.publish(
                exchange,
                routing_key,
                body,
                properties,
                mandatory=mandatory,
                timeout=self._settings.confirm_timeout,
            )
        except ReturnedError:
            raise
        except ContentHeaderTooLargeError as exc:
            raise headers_too_large(exc.size, exc.limit) from exc
        except (WireError, ValueError) as exc:
            raise self._error(exc, exchange, routing_key) from exc

    async def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        on_confirm: PublishCallback,
        *,
        lane: int,
    ) -> None:
        """Publish without waiting: returns once the message is written (raising
        PublishError if it cannot be, BrokerRuleError if its properties would not fit in
        one frame); ``on_confirm(error, seconds)`` runs exactly once
        later, from the connection's read, with None or the PublishError (whose
        ``__cause__`` is the wire's error) and the time the broker took.

        Publishes with the same ``lane`` take the same channel, so they reach the broker,
        and its queues, in the order they were made (a session passes its own lane)."""
        channel = await self._channel(exchange, lane)

        def done(error: WireError | None, seconds: float) -> None:
            self._pending -= 1
            if not self._pending:
                self._idle.set()
            failure = None if error is None else self._error(error, exchange, routing_key)
            on_confirm(failure, seconds)

        try:
            channel.publish_nowait(
                exchange,
                routing_key,
                body,
                properties,
                timeout=self._settings.confirm_timeout,
                on_confirm=done,
            )
        except ContentHeaderTooLargeError as exc:
            raise headers_too_large(exc.size, exc.limit) from exc
        except (WireError, ValueError) as exc:
            raise self._error(exc, exchange, routing_key) from exc
        self._pending += 1
        self._idle.clear()

    def _error(self, exc: BaseException, exchange: str, routing_key: str) -> PublishError:
        """The client's text for a publish that failed (``__cause__`` set to ``exc``)."""
        if (
            isinstance(exc, ChannelClosedError)
            and exc.code == NOT_FOUND
            and self._on_not_found is not None
        ):
            self._on_not_found(exchange, routing_key)
        maybe_done = False
        if isinstance(exc, ConfirmTimeoutError):
            text = f"broker did not confirm within {self._settings.confirm_timeout:g} s"
            maybe_done = True
        elif isinstance(exc, NackedError):
            text = "broker refused the message (nack): a queue may be full or unavailable"
        elif isinstance(exc, ChannelClosedError):
            text = f"broker refused the message: {exc}"
        elif isinstance(exc, WireError):
            # The connection went while the publish was written or awaited its confirm:
            # the broker may have taken it.
            text = f"broker unavailable ({exc})"
            maybe_done = True
        else:  # ValueError: a name that does not fit AMQP (checked earlier, normally)
            text = str(exc)
        error = PublishError(text)
        error.maybe_done = maybe_done
        error.__cause__ = exc
        return error
