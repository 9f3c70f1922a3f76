"""The adapter between one client's transport and its sans-I/O STOMP session.

Socket bytes in, session events out, each event to a collaborator. The transport (WebSocket
or TCP) calls :meth:`Connection.feed` with what it reads, from the one task that reads the
socket, so a client's frames are handled strictly in order. Each event goes to its handler
(``_HANDLERS``), which calls on what the constructor was given (the protocols of
:mod:`gateway.ports`): the access policy (CONNECT, rate limits), the host node (timers,
output batching, lifecycle events), and through them the connection's
:class:`~gateway.sender.Sender` (SENDs, the window of unconfirmed ones) and
:class:`~gateway.subscriptions.Subscriptions` (SUBSCRIBE, UNSUBSCRIBE, ACK, NACK). A
client's mistake, any :class:`~gateway.errors.ClientError`, gets exactly one ERROR frame,
then the connection closes: its short ``message``, its ``detail`` as the ``text/plain``
body, its reason in ``stompgate-reason`` (``protocol`` for what the session refuses itself).
Every write to the transport (flushes, RECEIPTs, that ERROR, the close) is the connection's
:class:`~gateway.outbound.Output`; what input costs is its meter's
(:mod:`gateway.auth.input_budget`).

A relay SEND does not hold up the frames after it: its RECEIPT is queued by the sender's
window once it and every earlier SEND are confirmed (inside the relay's read, so the host
flushes it). Any other frame with a receipt, DISCONNECT and COMMIT first wait until no SEND
is in flight, and a client's mistake waits for them too while a RECEIPT is pending, so the
RECEIPTs before its ERROR are out. A COMMIT carries out its frames in order, each receipted
when done (a SEND's once the broker confirmed it, as RabbitMQ's plugin does), then the
COMMIT's; ABORT discards them.

Broker deliveries arrive on another path, :meth:`Connection.deliver`, called by the relay
in-process: rendered into the session's outbound buffer, they are written once per broker
read (or loop turn) for all connections at once, several frames per socket write.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway.access import Identity, UserLease
from gateway.auth.authority import Authority
from gateway.delivery import MessageHeads
from gateway.errors import ClientError
from gateway.metrics import COMMANDS, Metrics
from gateway.outbound import Output
from gateway.ports import AccessPort, ConnectionHost, ConnectionLimits, Outbound, RouterPort
from gateway.sender import Sender
from gateway.stomp import PreparedMessage, ServerSession, events
from gateway.subscriptions import Subscriptions

__all__ = ["Connection"]

log = logging.getLogger("stompgate.connection")


class Connection:
    """A client's STOMP session on this node; the relay's delivery sink for it."""

    __slots__ = (
        "_access",
        "_authorize",
        "_heads",
        "_host",
        "_lease",
        "_limits",
        "_meter",
        "_metrics",
        "_output",
        "_router",
        "_sender",
        "_subscriptions",
        "active",
        "created",
        "deadline",
        "dirty",
        "handshake_token",
        "identity",
        "last_read",
        "peer",
        "rate",
        "session",
        "session_id",
        "timer_slot",
        "transport_name",
    )

    def __init__(
        self,
        out: Outbound,
        host: ConnectionHost[Connection],
        *,
        access: AccessPort,
        router: RouterPort,
        metrics: Metrics,
        limits: ConnectionLimits,
        transport_name: str,
        peer: str,
        handshake_token: str | None = None,
    ) -> None:
        self._host = host
        self._access = access
        self._router = router
        self._metrics = metrics
        self._limits = limits
        self.transport_name = transport_name
        self.peer = peer
        self.handshake_token = handshake_token
        self.session = session = ServerSession(limits.session)
        self.session_id = host.new_session_id()
        self._output = output = Output(
            out,
            session,
            metrics,
            max_outbound_buffer=limits.max_outbound_buffer,
            on_close=self._closed,
            log_extra={"session": self.session_id, "peer": peer},
        )
        self.identity: Identity | None = None
        self.deadline: float | None = None  # epoch seconds when the token expires
        self.rate = access.rate_limiter(transport_name)
        self._lease: UserLease | None = None
        self._authorize = _refuse_before_connect  # bound to the identity by CONNECT
        self._subscriptions = Subscriptions(self, access=access, router=router)
        self._sender = Sender(
            self,
            access=access,
            router=router,
            metrics=metrics,
            max_unconfirmed=limits.max_unconfirmed,
            refuse=output.refuse,
            receipt=self._receipt,
        )
        self._heads: MessageHeads | None = None  # made by the first delivery after CONNECTED
        self.dirty = False  # queued output the host will flush at the end of this loop turn
        self.active = False  # read something since the host last looked (lifecycle)
        self._meter = limits.input_budget.meter(limits.bytes_burst)  # rates, node budget
        now = time.monotonic()
        self.created = now
        self.last_read = now
        self.timer_slot: int | None = None  # the host's timer wheel slot, None: no timer runs

    @property
    def user(self) -> str | None:
        return None if self.identity is None else self.identity.user

    @property
    def version(self) -> str | None:
        return self.session.version

    @property
    def closing(self) -> bool:
        return self._output.closing

    @property
    def last_write(self) -> float:
        return self._output.last_write

    def subscribed_to(self, destination: str) -> bool:
        """Whether the client has a subscription to ``destination`` (bound, or on its way)."""
        return self.session.subscribes_to(destination)

    # -- deliveries (the relay's DeliverySink) ----------------------------------------------

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        if self._output.closing:
            return
        session = self.session
        if ack_id is None:  # the hot path of every fan-out: message ids "<session id>-<n>"
            heads = self._heads
            if heads is None:
                if session.version is None:
                    return  # nothing is delivered before CONNECTED
                heads = self._heads = MessageHeads(session.version, self.session_id + "-")
            number = heads.number = heads.number + 1
            session.send_raw(message.render_numbered(heads.version, heads[subscription_id], number))
        else:
            session.send_message(message, subscription_id, ack_id, ack_id)
        self._metrics.delivered += 1
        if not self.dirty:  # one write per loop turn, however many messages it brought
            self.dirty = True
            self._host.mark_dirty(self)

    # -- input -------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Handle bytes read from the client, in order; returns when all of it is handled."""
        if self.closing:
            return
        output = self._output
        now = self.last_read = time.monotonic()
        if not self.active:
            self.active = True
            self._host.mark_active(self)
        session = self.session
        session.receive_data(data)
        meter = self._meter
        meter.arrived(len(data))
        handled = False
        # The session hands out at most max_pending_frames events at a time, and frames that
        # came in with the CONNECT only after accept(): drain until it has nothing more.
        while batch := session.events_received():
            for event in batch:
                if output.closing:
                    return
                # A protocol violation (e.g. "frame too large") ends the session with its own
                # ERROR; a rate limit must not hide why. A COMMIT pays for its held frames.
                if not isinstance(event, events.ProtocolViolation):
                    commit = isinstance(event, events.TransactionCommitted)
                    held = session.frames_held if commit else None
                    if breach := meter.charge_event(self.rate, now, frames_held=held):
                        await self._refuse(breach.error())
                        return
                handled = True
                await self._handle(event)
                output.flush()
        if not output.closing:
            breach, started = meter.end_read(self.rate, now, session, progressed=handled)
            if breach is not None:
                await self._refuse(breach.error())
                return
            if started:
                self._host.frame_started(self)
        output.flush()

    @property
    def frame_started(self) -> float | None:
        """When the unfinished frame this client is sending began (None: none)."""
        return self._meter.frame_started

    async def _handle(self, event: events.Event) -> None:
        self._metrics.frames_in.inc(COMMANDS[type(event)])
        try:
            sender = self._sender
            if sender.refusing:
                return  # a refused SEND's ERROR waits for the RECEIPTs before it
            if sender.must_settle(event) and not await sender.settle():
                return  # an earlier SEND failed: its ERROR is out
            await _HANDLERS[type(event)](self, event)
        except ClientError as exc:
            await self._refuse(exc, _receipt_of(event))

    async def _refuse(self, error: ClientError, receipt: str | None = None) -> None:
        """The one ERROR for a client's mistake, after the RECEIPTs of the SENDs still in
        flight (none if one of them was refused: its ERROR is the one)."""
        if await self._sender.settle_receipts():
            self._output.refuse(error, receipt)

    async def _connect(self, event: events.ConnectRequested) -> None:
        access = self._access
        identity = await access.authenticate(
            event.login, event.passcode, event.headers, self.handshake_token, time.time()
        )
        self._lease = await access.acquire_user(identity.user)
        self.identity = identity
        self._authorize = functools.partial(access.authorize, identity)
        self.deadline = access.deadline(identity)
        self.rate = access.rate_limiter(self.transport_name, identity.roles)
        self.session.accept(session_id=self.session_id, user_name=identity.user)
        self._metrics.frames_out.inc("CONNECTED")
        self._host.authenticated(self)  # heart-beats, idle, token; announced

    async def _send(self, event: events.SendRequested) -> None:
        await self._sender.send(self._identity(), event, authorize=self._authorize)

    def _receipt(self, receipt: str, headers: Sequence[tuple[str, str]] | None) -> None:
        """Queue a SEND's RECEIPT; one released by a confirm inside the relay's read is
        written with that read's flush."""
        self._output.receipt(receipt, headers)
        if not self.dirty:
            self.dirty = True
            self._host.mark_dirty(self)

    async def _subscribe(self, event: events.SubscribeRequested) -> None:
        subscriptions = self._subscriptions
        start = await subscriptions.subscribe(self._identity(), event, authorize=self._authorize)
        self._output.receipt(event.receipt)
        if start is not None:
            start()  # what was held until the RECEIPT: a replay, messages already queued

    async def _unsubscribe(self, event: events.UnsubscribeRequested) -> None:
        await self._subscriptions.unsubscribe(event)
        self._output.receipt(event.receipt)

    async def _ack(self, event: events.AckRequested | events.NackRequested) -> None:
        await self._subscriptions.acknowledge(event)
        self._output.receipt(event.receipt)

    async def _commit(self, event: events.TransactionCommitted) -> None:
        """Carry out the transaction's frames in order, each receipted when done, then
        receipt the COMMIT."""
        for frame in event.frames:
            if isinstance(frame, events.SendRequested):
                await self._sender.send(
                    self._identity(), frame, authorize=self._authorize, pipelined=False
                )
            else:
                await self._ack(frame)
        self._output.receipt(event.receipt)

    async def _abort(self, event: events.TransactionAborted) -> None:
        pass  # the session discarded the buffered frames and sent any receipt

    async def _disconnect(self, event: events.DisconnectRequested) -> None:
        self._output.receipt(event.receipt)
        self.close("disconnect")

    async def _violation(self, event: events.ProtocolViolation) -> None:
        self._metrics.errors.labels("protocol").inc()
        log.info(
            "protocol error: %s",
            event.error.message,
            extra={"session": self.session_id, "peer": self.peer},
        )
        self.close("protocol")

    def _identity(self) -> Identity:
        if self.identity is None:  # the session never emits these before CONNECTED
            raise RuntimeError("frame before CONNECT was accepted")
        return self.identity

    # -- output ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write whatever the session has queued, in one write; police slow consumers."""
        self._output.flush()

    def heartbeat(self) -> None:
        self.session.send_heartbeat()
        self._output.flush()

    def fail(
        self, message: str, *, detail: str = "", receipt: str | None = None, reason: str = "error"
    ) -> None:
        """Send one ERROR frame, then close (:meth:`gateway.outbound.Output.fail`)."""
        self._output.fail(message, detail=detail, receipt=receipt, reason=reason)

    def close(self, reason: str = "closed") -> None:
        """Flush and close the transport; the host forgets the connection (idempotent)."""
        self._output.close(reason)

    def _closed(self, reason: str) -> None:
        self._meter.release()
        self._sender.close()  # a wait for confirms ends with the connection
        self._host.forget(self, reason)

    async def release(self) -> None:
        """Give back what the relay and the limits hold for this client (socket gone)."""
        self._subscriptions.clear()
        if self._lease is not None:
            await self._access.release_user(self._lease)
            self._lease = None
        await self._router.release(self)


async def _refuse_before_connect(authority: Authority) -> None:
    raise RuntimeError("frame before CONNECT was accepted")  # sessions emit none


def _receipt_of(event: events.Event) -> str | None:
    receipt = getattr(event, "receipt", None)
    return receipt if isinstance(receipt, str) else None


#: What each event the session emits becomes (every event type has one).
_HANDLERS: dict[type, Callable[[Connection, Any], Awaitable[None]]] = {
    events.ConnectRequested: Connection._connect,
    events.SendRequested: Connection._send,
    events.SubscribeRequested: Connection._subscribe,
    events.UnsubscribeRequested: Connection._unsubscribe,
    events.AckRequested: Connection._ack,
    events.NackRequested: Connection._ack,
    events.TransactionCommitted: Connection._commit,
    events.TransactionAborted: Connection._abort,
    events.DisconnectRequested: Connection._disconnect,
    events.ProtocolViolation: Connection._violation,
}
