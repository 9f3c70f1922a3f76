"""What a :class:`~gateway.connection.Connection` needs from around it, as narrow protocols.

The connection adapter depends on these and on nothing above it:

* :class:`Outbound` — the sending half of its transport (``gateway/transport/`` implements it);
* :class:`ConnectionHost` — the node that holds it (:class:`gateway.node.Node` implements it);
* :class:`AccessPort` — who may connect and do what (:class:`gateway.access.Access`);
* :class:`RouterPort` — where SENDs and SUBSCRIBEs go, the chat layer or the relay
  (:class:`gateway.router.Router`), and the :class:`Subscription` a SUBSCRIBE yields;
* :class:`ConnectionLimits` — the limits all connections of a node share.

The protocols are structural (``typing.Protocol``): an implementation need not import this
module (the router takes :class:`SendMode` from it), and tests hand a connection small fakes.
Like the core, this module imports only the core (auth's types, the delivery sink, the
error root, the STOMP session's config), so every layer may implement or use it.
:class:`ConnectionHost` is generic in the connection's type, so this module needs no import
of the connection (nor the node of it).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from gateway.auth.authority import Authority, Authorize
from gateway.auth.counter import UserLease
from gateway.auth.identity import Identity
from gateway.auth.input_budget import NodeInputBudget
from gateway.auth.limits import Breach
from gateway.delivery import DeliverySink
from gateway.errors import ClientError
from gateway.stomp import SessionConfig

__all__ = [
    "AccessPort",
    "ConfirmCallback",
    "ConnectionHost",
    "ConnectionLimits",
    "DeliverySink",
    "Outbound",
    "RateLimiter",
    "RouterPort",
    "SendMode",
    "Subscription",
]

C_contra = TypeVar("C_contra", contravariant=True)

ConfirmCallback = Callable[[ClientError | None, float], None]
"""The broker's answer to a SEND written without waiting: (error or None, seconds taken)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits every connection of a node shares."""

    session: SessionConfig
    max_unconfirmed: int = 128  # SENDs without a receipt in flight (0: each one waits)
    max_outbound_buffer: int = 4 * 1024 * 1024  # bytes queued before "slow consumer"
    bytes_burst: int = 0  # a rate charge never exceeds this (0: no cap)
    #: The node's budget of bytes held in unfinished frames and open transactions.
    input_budget: NodeInputBudget = field(default_factory=lambda: NodeInputBudget(0))


class Outbound(Protocol):
    """The sending half of a client transport. ``write`` never blocks and never awaits."""

    def write(self, data: bytes) -> None: ...

    def buffered(self) -> int:
        """Bytes accepted by ``write`` but not yet handed to the kernel."""
        ...

    def close(self) -> None:
        """Close after what was written is flushed; idempotent."""
        ...

    def abort(self) -> None:
        """Close now, dropping anything still queued; idempotent."""
        ...


class ConnectionHost(Protocol[C_contra]):
    """The node, as one of its connections sees it."""

    def new_session_id(self) -> str: ...

    def mark_dirty(self, conn: C_contra) -> None:
        """``conn`` queued output: flush it once at the end of this loop turn (or broker read)."""
        ...

    def mark_active(self, conn: C_contra) -> None:
        """``conn`` read something from its client (frames and heart-beats alike); called at
        most once until the host clears ``conn.active``."""
        ...

    def authenticated(self, conn: C_contra) -> None:
        """CONNECT was accepted: start its timers (heart-beats, idle, token), announce it."""
        ...

    def frame_started(self, conn: C_contra) -> None:
        """``conn`` holds the start of a frame it has not finished (``conn.frame_started``):
        file the frame's deadline."""
        ...

    def forget(self, conn: C_contra, reason: str) -> None:
        """``conn`` is closing (``reason`` as in ``stompgate_errors_total``, or ``disconnect``,
        ``protocol``, ``peer_closed``...): stop its timers, announce it, release it."""
        ...


class RateLimiter(Protocol):
    """One session's frame and byte budget."""

    def breach(self, frame_bytes: int, now: float) -> Breach | None:
        """Charge one frame of ``frame_bytes``; the limit it breaks, or None."""
        ...

    def charge(self, frames: int, size: int, now: float) -> Breach | None:
        """Charge ``frames`` frames and ``size`` bytes; the limit they break, or None."""
        ...


class AccessPort(Protocol):
    """Authentication, limits and authorization, as a connection uses them."""

    def rate_limiter(self, transport: str, roles: frozenset[str] | None = None) -> RateLimiter:
        """The rates of a session on listener ``transport`` (``ws``, ``tcp``); with
        ``roles``, once its identity is known (a service role may have its own)."""
        ...

    async def authenticate(
        self,
        login: str | None,
        passcode: str | None,
        headers: Iterable[tuple[str, str]],
        handshake_token: str | None,
        now: float,
    ) -> Identity: ...

    def deadline(self, identity: Identity) -> float | None: ...

    async def acquire_user(self, user: str) -> UserLease: ...

    async def release_user(self, lease: UserLease) -> None: ...

    def authorize_send(
        self, identity: Identity, destination: str, headers: Iterable[tuple[str, str]]
    ) -> Awaitable[tuple[tuple[str, str], ...]]: ...

    async def authorize_subscribe(self, identity: Identity, destination: str) -> None: ...

    async def authorize(self, identity: Identity, authority: Authority) -> None:
        """What the relay's plan for a frame needs besides its destination."""
        ...


class Subscription(Protocol):
    """One SUBSCRIBE as the relay holds it."""

    @property
    def destination(self) -> str:
        """The SUBSCRIBE's destination."""
        ...

    def owns(self, ack_id: str) -> bool: ...

    async def ack(self, ack_id: str) -> None: ...

    async def nack(self, ack_id: str, requeue: bool = True) -> None: ...

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None: ...


class SendMode(enum.Enum):
    """How a connection sends a SEND to a destination (see :meth:`RouterPort.mode`)."""

    CHAT = "chat"
    """The chat layer takes it whole (validate, stamp, publish, confirm): awaited."""
    WINDOW = "window"
    """The relay; without a receipt it may go without waiting for its confirm
    (:meth:`RouterPort.publish`)."""
    ALONE = "alone"
    """The relay, on a channel of its own (``/amq/queue/``: mandatory): never pipelined;
    earlier unconfirmed SENDs settle first."""


class RouterPort(Protocol):
    """Where a client's SENDs and SUBSCRIBEs go: the chat layer or the relay."""

    def mode(self, destination: str) -> SendMode: ...

    def send(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        authorize: Authorize | None = None,
    ) -> Awaitable[Sequence[tuple[str, str]] | None]:
        """Send and wait for the outcome: the chat layer's, or the broker's confirm
        (ClientError when refused). ``authorize``: the client's, for what the relay's plan
        needs besides the destination. It may come back with headers for the SEND's RECEIPT
        (after ``receipt-id``): the chat layer's message id, for one."""
        ...

    def publish(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        on_confirm: ConfirmCallback,
        authorize: Authorize | None = None,
    ) -> Awaitable[None]:
        """For :attr:`SendMode.WINDOW` destinations: return once written (ClientError if it
        cannot be), the broker's confirm follows through ``on_confirm``, exactly once."""
        ...

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
        *,
        authorize: Authorize,
    ) -> tuple[Subscription, Callable[[], None] | None]:
        """Subscribe once the binding exists (ClientError when refused; ``authorize`` is the
        client's, for what the plan needs besides the destination). The second item, when
        set, starts the deliveries held meanwhile (a catch-up's replay, then the live
        messages; what a queue held already): call it right after the RECEIPT."""
        ...

    async def unsubscribed(self, sink: DeliverySink, destination: str) -> None:
        """The client UNSUBSCRIBEd from ``destination`` (its subscription is cancelled)."""
        ...

    async def release(self, sink: DeliverySink) -> None:
        """The client is gone: drop its subscriptions."""
        ...
