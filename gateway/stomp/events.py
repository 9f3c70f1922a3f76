"""Events a :class:`~gateway.stomp.session.ServerSession` reports to its adapter.

Every event is a frozen, slotted dataclass. Requests that may carry a ``receipt``
header expose it as ``receipt``; the session never answers those receipts itself
(except for BEGIN and ABORT, which it handles completely): the adapter calls
``session.receipt(event.receipt)`` once the work is really done, e.g. after the broker
confirmed a publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from .errors import ProtocolError

__all__ = [
    "AckRequested",
    "ConnectRequested",
    "DisconnectRequested",
    "Event",
    "NackRequested",
    "ProtocolViolation",
    "SendRequested",
    "SubscribeRequested",
    "TransactionAborted",
    "TransactionCommitted",
    "TransactionFrame",
    "UnsubscribeRequested",
]

Headers: TypeAlias = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """CONNECT or STOMP received; answer with ``session.accept()`` or ``session.reject()``.

    ``version`` is the version negotiated from ``accept-version`` (``"1.0"`` when the
    header is absent). ``client_heartbeat`` is the client's ``heart-beat`` (cx, cy),
    ``(0, 0)`` when absent or for 1.0. ``headers`` holds every CONNECT header.
    ``passcode`` and ``headers`` are left out of ``repr()`` so they never reach logs.
    """

    version: str
    host: str | None
    login: str | None
    passcode: str | None = field(repr=False)
    client_heartbeat: tuple[int, int]
    headers: Headers = field(repr=False)


@dataclass(frozen=True, slots=True)
class SendRequested:
    """SEND: publish ``body`` to ``destination``. ``headers`` are all frame headers."""

    destination: str
    headers: Headers
    body: bytes
    receipt: str | None
    transaction: str | None


@dataclass(frozen=True, slots=True)
class SubscribeRequested:
    """SUBSCRIBE. ``ack`` is ``auto``, ``client`` or ``client-individual``.

    In STOMP 1.0 the ``id`` header is optional; ``subscription_id`` then defaults to the
    destination.
    """

    subscription_id: str
    destination: str
    ack: str
    headers: Headers
    receipt: str | None


@dataclass(frozen=True, slots=True)
class UnsubscribeRequested:
    """UNSUBSCRIBE of an active subscription (already forgotten by the session).

    ``headers`` holds every UNSUBSCRIBE header (``durable:true`` there cancels a durable
    subscription, as in RabbitMQ's plugin); it is not part of the event's equality.
    """

    subscription_id: str
    receipt: str | None
    headers: Headers = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class AckRequested:
    """ACK. ``ack_id`` is ``id`` (1.2) or ``message-id`` (1.0, 1.1)."""

    ack_id: str
    subscription_id: str | None
    receipt: str | None
    transaction: str | None


@dataclass(frozen=True, slots=True)
class NackRequested:
    """NACK. ``ack_id`` is ``id`` (1.2) or ``message-id`` (1.0, 1.1).

    ``requeue`` is RabbitMQ's extension header (``requeue:false`` dead-letters or drops the
    message instead of returning it to the queue); true when absent. ``false`` and
    ``False`` mean false, as RabbitMQ's plugin reads them.
    """

    ack_id: str
    subscription_id: str | None
    receipt: str | None
    transaction: str | None
    requeue: bool = True


TransactionFrame: TypeAlias = SendRequested | AckRequested | NackRequested


@dataclass(frozen=True, slots=True)
class TransactionCommitted:
    """COMMIT: carry out ``frames`` (in order) atomically, then receipt if asked."""

    transaction: str
    frames: tuple[TransactionFrame, ...]
    receipt: str | None


@dataclass(frozen=True, slots=True)
class TransactionAborted:
    """ABORT: the buffered frames were discarded. Informational (logs, metrics).

    The session has already answered ``receipt``, if any.
    """

    transaction: str
    receipt: str | None
    discarded: int = 0


@dataclass(frozen=True, slots=True)
class DisconnectRequested:
    """DISCONNECT: finish outstanding work, send ``receipt`` if any, flush and close."""

    receipt: str | None


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The client broke the protocol: the ERROR frame is queued and the session closed."""

    error: ProtocolError


Event: TypeAlias = (
    ConnectRequested
    | SendRequested
    | SubscribeRequested
    | UnsubscribeRequested
    | AckRequested
    | NackRequested
    | TransactionCommitted
    | TransactionAborted
    | DisconnectRequested
    | ProtocolViolation
)
