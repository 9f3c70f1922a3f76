"""What the relay gives back for a SUBSCRIBE (:class:`RelaySubscription`), plus the one
place a broker delivery becomes a MESSAGE. What it delivers to is a
:class:`gateway.delivery.DeliverySink` (re-exported here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiormq.abc import DeliveredMessage
from pamqp import commands as spec

from gateway.delivery import DeliverySink
from gateway.stomp import PreparedMessage

from .headers import headers_from_delivery

__all__ = ["DeliverySink", "RelaySubscription", "prepare_delivery", "prepare_message"]

#: Called once when a subscription closes (the relay drops it from its client's record).
OnClosed = Callable[["RelaySubscription"], None]


def prepare_message(message: DeliveredMessage, destination: str) -> PreparedMessage:
    """The one PreparedMessage for an aiormq delivery (own consumers)."""
    delivery = message.delivery
    redelivered = bool(isinstance(delivery, spec.Basic.Deliver) and delivery.redelivered)
    return prepare_delivery(message.header.properties, redelivered, message.body, destination)


def prepare_delivery(
    properties: spec.Basic.Properties, redelivered: bool, body: bytes, destination: str
) -> PreparedMessage:
    """The one PreparedMessage for a broker delivery (shared by every local subscriber)."""
    return PreparedMessage(destination, headers_from_delivery(properties, redelivered), body)


class RelaySubscription:
    """One SUBSCRIBE as held by the relay. Returned by :meth:`Relay.subscribe`."""

    __slots__ = ("_closed", "_on_closed", "ack_mode", "destination", "id", "sink")

    def __init__(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack_mode: str,
        *,
        on_closed: OnClosed | None = None,
    ) -> None:
        self.sink = sink
        self.id = subscription_id
        self.destination = destination
        self.ack_mode = ack_mode
        self._closed = False
        self._on_closed = on_closed

    @property
    def closed(self) -> bool:
        return self._closed

    def mark_closed(self) -> bool:
        """Mark closed and call ``on_closed``, without telling the broker anything (what
        :meth:`cancel` does first); False if it already was closed."""
        if self._closed:
            return False
        self._closed = True
        if self._on_closed is not None:
            self._on_closed(self)
        return True

    @property
    def queue(self) -> str | None:
        """The broker queue this subscription consumes (None: the node's fan-out queue)."""
        return None

    def owns(self, ack_id: str) -> bool:
        """Is ``ack_id`` an unacknowledged message of this subscription?"""
        return False

    async def ack(self, ack_id: str) -> None:
        """ACK: ``client`` mode acks this message and every earlier one of this subscription
        (cumulative), ``client-individual`` just this one. Unknown ids are ignored."""

    async def nack(self, ack_id: str, requeue: bool = True) -> None:
        """NACK, with the same scope rules as :meth:`ack`; ``requeue`` False drops (or
        dead-letters) the message(s)."""

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        """UNSUBSCRIBE. ``headers`` are the UNSUBSCRIBE frame's: with ``durable:true`` (or
        ``persistent:true``) a durable subscription's queue is deleted, like RabbitMQ's
        plugin does; otherwise it is kept and collects messages."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.id!r} {self.destination!r} ack={self.ack_mode} "
            f"session={self.sink.session_id!r}>"
        )
