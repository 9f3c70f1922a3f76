"""The adapter between one client's transport and its sans-I/O STOMP session.

The transport (WebSocket or TCP) calls :meth:`Connection.feed` with the bytes it reads, from
the one task that reads the socket, so a client's frames are handled strictly in order. Each
event the session emits becomes a call on a collaborator given to the constructor (the
narrow protocols of :mod:`gateway.ports`): the access policy (CONNECT, authorization, rate
limits), the router (SEND and SUBSCRIBE: chat layer or relay), the host node (timers, output
batching, lifecycle events). A client's mistake, any :class:`~gateway.errors.ClientError`,
gets exactly one ERROR frame, then the connection closes: its short ``message``, its
``detail`` as the ``text/plain`` body, and its reason in the ``stompgate-reason`` header
(``protocol`` for what the STOMP session refuses itself).

Frames inside a transaction are carried out at COMMIT, in order; each one's own receipt is
sent when it is done (a SEND's once the broker confirmed it, as RabbitMQ's plugin does),
then the COMMIT's. ABORT discards them unreceipted: its own receipt says they are gone.

A SEND without a receipt is written to the broker and the next frame is handled at once; its
confirm comes back through :meth:`Connection._on_confirm` and a refusal still ends the
session with an ERROR that says so. The :class:`~gateway.confirm_window.ConfirmWindow` bounds
how many are in flight and makes a RECEIPT wait for every earlier SEND.

Broker deliveries arrive on another path, :meth:`Connection.deliver`, called by the relay
in-process: rendered into the session's outbound buffer, they are written once per broker
read (or loop turn) for all connections at once, several frames per socket write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence

from gateway import stomp_headers
from gateway.access import Identity, UserLease
from gateway.auth.authority import Authority
from gateway.confirm_window import ConfirmWindow
from gateway.errors import ClientError, ErrorMessage
from gateway.metrics import COMMANDS, Metrics
from gateway.ports import (
    AccessPort,
    ConnectionHost,
    ConnectionLimits,
    Outbound,
    RouterPort,
    SendMode,
    Subscription,
)
from gateway.stomp import (
    MessageHead,
    PreparedMessage,
    ServerSession,
    SessionState,
    events,
    message_head,
)

__all__ = ["CLOSE_GRACE_SECONDS", "Connection"]

log = logging.getLogger("stompgate.connection")

#: A closing connection whose peer does not take the last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0
#: Encoded MESSAGE heads kept per session (one per subscription id seen; a client that
#: keeps inventing subscription ids only makes the cache start over).
MAX_CACHED_HEADS = 64


class Connection:
    """A client's STOMP session on this node; the relay's delivery sink for it."""

    __slots__ = (
        "_access",
        "_authorize",
        "_closing",
        "_heads",
        "_host",
        "_lease",
        "_limits",
        "_meter",
        "_metrics",
        "_next_message_id",
        "_router",
        "_subscriptions",
        "_window",
        "active",
        "created",
        "deadline",
        "dirty",
        "handshake_token",
        "identity",
        "last_read",
        "last_write",
        "out",
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
        self.out = out
        self._host = host
        self._access = access
        self._router = router
        self._metrics = metrics
        self._limits = limits
        self.transport_name = transport_name
        self.peer = peer
        self.handshake_token = handshake_token
        self.session = ServerSession(limits.session)
        self.session_id = host.new_session_id()
        self.identity: Identity | None = None
        self.deadline: float | None = None  # epoch seconds when the token expires
        self.rate = access.rate_limiter(transport_name)
        self._lease: UserLease | None = None
        self._authorize = _refuse_before_connect  # bound to the identity by CONNECT
        # Made by the first SUBSCRIBE: most sessions never need it, and an empty dict per
        # session adds up.
        self._subscriptions: dict[str, Subscription] | None = None
        self._next_message_id = 0
        self._heads: dict[str, MessageHead] | None = None  # subscription id -> message_head()
        self._closing = False
        self.dirty = False  # queued output the host will flush at the end of this loop turn
        self.active = False  # read something since the host last looked (lifecycle)
        self._meter = limits.input_budget.meter(limits.bytes_burst)  # rates, node budget
        self._window: ConfirmWindow | None = None  # made by the first SEND without a receipt
        now = time.monotonic()
        self.created = now
        self.last_read = now
        self.last_write = now
        self.timer_slot: int | None = None  # the host's timer wheel slot, None: no timer runs

    @property
    def user(self) -> str | None:
        return None if self.identity is None else self.identity.user

    @property
    def version(self) -> str | None:
        return self.session.version

    @property
    def closing(self) -> bool:
        return self._closing

    def subscribed_to(self, destination: str) -> bool:
        """Whether the client has a subscription to ``destination`` (bound, or on its way)."""
        return self.session.subscribes_to(destination)

    # -- deliveries (the relay's DeliverySink) ----------------------------------------------

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        if self._closing:
            return
        session = self.session
        if ack_id is None:
            # The hot path of every fan-out: the head up to the message-id's number is
            # encoded once per subscription (message ids are "<session id>-<n>").
            version = session.version
            if version is None:
                return  # nothing is delivered before CONNECTED
            number = self._next_message_id = self._next_message_id + 1
            heads = self._heads
            head = None if heads is None else heads.get(subscription_id)
            if head is None:
                head = message_head(version, subscription_id, self.session_id + "-")
                if heads is None or len(heads) >= MAX_CACHED_HEADS:
                    heads = self._heads = {}
                heads[subscription_id] = head
            session.send_raw(message.render_numbered(version, head, number))
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
                if self._closing:
                    return
                # A protocol violation (e.g. "frame too large") ends the session with its own
                # ERROR; a rate limit must not hide why. A COMMIT pays for its held frames.
                if not isinstance(event, events.ProtocolViolation):
                    commit = isinstance(event, events.TransactionCommitted)
                    held = session.frames_held if commit else None
                    breach = meter.charge_event(self.rate, now, frames_held=held)
                    if breach is not None:
                        self._refuse(breach.error())
                        return
                handled = True
                await self._handle(event)
                self.flush()
        if not self._closing:
            breach, started = meter.end_read(
                self.rate,
                now,
                frames_held=session.frames_held,
                buffered=session.buffered_input,
                transaction_bytes=session.transaction_bytes,
                progressed=handled,
            )
            if breach is not None:
                self._refuse(breach.error())
                return
            if started:
                self._host.frame_started(self)
        self.flush()

    @property
    def frame_started(self) -> float | None:
        """When the unfinished frame this client is sending began (None: none)."""
        return self._meter.frame_started

    async def _handle(self, event: events.Event) -> None:
        self._metrics.frames_in.inc(COMMANDS[type(event)])
        try:
            window = self._window
            if window is not None and window.in_flight and _settles_first(event):
                settled = await window.settle()
                if not settled:
                    return  # an earlier SEND failed: its ERROR is out
            if isinstance(event, events.SendRequested):
                extra = await self._send(event, pipelined=event.receipt is None)
                self._receipt(event.receipt, extra)
            elif isinstance(event, events.SubscribeRequested):
                await self._subscribe(event)
            elif isinstance(event, events.UnsubscribeRequested):
                subs = self._subscriptions
                sub = None if subs is None else subs.pop(event.subscription_id, None)
                if sub is not None:
                    await sub.cancel(dict(reversed(event.headers)))  # first occurrence wins
                    await self._router.unsubscribed(self, sub.destination)
                self._receipt(event.receipt)
            elif isinstance(event, events.AckRequested | events.NackRequested):
                await self._ack(event)
                self._receipt(event.receipt)
            elif isinstance(event, events.TransactionCommitted):
                for frame in event.frames:
                    if isinstance(frame, events.SendRequested):
                        self._receipt(frame.receipt, await self._send(frame))
                    else:
                        await self._ack(frame)
                        self._receipt(frame.receipt)
                self._receipt(event.receipt)
            elif isinstance(event, events.TransactionAborted):
                pass  # the session discarded the buffered frames and sent any receipt
            elif isinstance(event, events.ConnectRequested):
                await self._connect(event)
            elif isinstance(event, events.DisconnectRequested):
                self._receipt(event.receipt)
                self.close("disconnect")
            elif isinstance(event, events.ProtocolViolation):
                self._metrics.errors.labels("protocol").inc()
                log.info(
                    "protocol error: %s",
                    event.error.message,
                    extra={"session": self.session_id, "peer": self.peer},
                )
                self.close("protocol")
        except ClientError as exc:
            self._refuse(exc, _receipt_of(event))

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

    async def _send(
        self, event: events.SendRequested, *, pipelined: bool = False
    ) -> Sequence[tuple[str, str]] | None:
        """Send; the headers its RECEIPT carries besides ``receipt-id`` (chat posts: the id)."""
        identity = self._identity()
        destination = event.destination
        headers = await self._access.authorize_send(identity, destination, event.headers)
        router = self._router
        mode = router.mode(destination)
        if mode is SendMode.CHAT:
            return await router.send(self, destination, headers, event.body)
        authorize = self._authorize
        window = self._window
        size = self._limits.max_unconfirmed
        if pipelined and size and mode is SendMode.WINDOW:
            if window is None:
                window = self._window = ConfirmWindow()
            elif window.in_flight >= size:
                settled = await window.settle(size - 1)
                if not settled:
                    return None  # closing: an earlier SEND failed and its ERROR is out
            window.in_flight += 1
            try:
                await router.publish(
                    self,
                    destination,
                    headers,
                    event.body,
                    on_confirm=self._on_confirm,
                    authorize=authorize,
                )
            except BaseException:
                window.done()  # nothing was written: no confirm will come
                raise
            return None
        # A SEND that waits for its confirm; /amq/queue/ ones take a channel of their own,
        # so earlier SENDs settle first (a receipt or a COMMIT settled them already).
        if window is not None and not await window.settle():
            return None
        started = time.perf_counter()
        extra = await router.send(self, destination, headers, event.body, authorize=authorize)
        self._metrics.confirm_latency.observe(time.perf_counter() - started)
        return extra

    def _on_confirm(self, error: ClientError | None, seconds: float) -> None:
        """The broker's answer to a SEND written without waiting."""
        self._metrics.confirm_latency.observe(seconds)
        if error is not None:
            self._refuse(error)
        if self._window is not None:
            self._window.done()

    async def _subscribe(self, event: events.SubscribeRequested) -> None:
        identity = self._identity()
        await self._access.authorize_subscribe(identity, event.destination)
        headers = dict(reversed(event.headers))  # first occurrence wins
        sub, start = await self._router.subscribe(
            self,
            event.subscription_id,
            event.destination,
            event.ack,
            headers,
            authorize=self._authorize,
        )
        if self._subscriptions is None:
            self._subscriptions = {}
        self._subscriptions[event.subscription_id] = sub
        self._receipt(event.receipt)
        if start is not None:
            start()  # what was held until the RECEIPT: a replay, messages already queued

    async def _ack(self, event: events.AckRequested | events.NackRequested) -> None:
        # Acking something this session no longer holds (already acked, or its subscription
        # is gone) is harmless: the broker redelivers what is unacked.
        subs = self._subscriptions or {}
        sub = None if event.subscription_id is None else subs.get(event.subscription_id)
        if sub is None:
            sub = next((s for s in subs.values() if s.owns(event.ack_id)), None)
        if sub is None:
            return
        if isinstance(event, events.AckRequested):
            await sub.ack(event.ack_id)
        else:
            await sub.nack(event.ack_id, requeue=event.requeue)

    def _identity(self) -> Identity:
        if self.identity is None:  # the session never emits these before CONNECTED
            raise RuntimeError("frame before CONNECT was accepted")
        return self.identity

    # -- output ------------------------------------------------------------------------------

    def _receipt(self, receipt: str | None, headers: Sequence[tuple[str, str]] | None = ()) -> None:
        if receipt is not None:
            self.session.receipt(receipt, headers or ())
            self._metrics.frames_out.inc("RECEIPT")

    def flush(self) -> None:
        """Write whatever the session has queued, in one write; police slow consumers."""
        session = self.session
        out = self.out
        data = session.data_to_send()
        if data:
            out.write(data)
            self.last_write = time.monotonic()
        if self._closing:
            return
        if session.failed:
            self.close()
            return
        # The backlog before this write counts: a message larger than the limit still goes
        # out whole to a client that keeps up (a 16 MiB one on TCP, say).
        limit = self._limits.max_outbound_buffer
        queued = out.buffered()
        if queued - len(data) > limit:
            self._metrics.slow_consumer_drops.inc()
            self.fail(
                ErrorMessage.SLOW_CONSUMER,
                detail=f"slow consumer: {queued} bytes queued > max_outbound_buffer {limit}",
                reason="slow_consumer",
            )

    def heartbeat(self) -> None:
        self.session.send_heartbeat()
        self.flush()

    def _refuse(self, error: ClientError, receipt: str | None = None) -> None:
        self.fail(error.message, detail=error.detail, receipt=receipt, reason=error.reason)

    def fail(
        self, message: str, *, detail: str = "", receipt: str | None = None, reason: str = "error"
    ) -> None:
        """Send one ERROR frame that says what went wrong, then close: ``message`` is a short
        :class:`~gateway.errors.ErrorMessage`, ``detail`` the body, ``reason`` the metrics
        label and the ``stompgate-reason`` header."""
        if self._closing:
            return
        self._metrics.errors.labels(reason).inc()
        self._metrics.frames_out.inc("ERROR")
        log.info(
            "closing with ERROR: %s: %s",
            message,
            detail.split("\n", 1)[0],
            extra={"session": self.session_id, "peer": self.peer, "reason": reason},
        )
        if self.session.state is not SessionState.CLOSED:
            headers = ((stomp_headers.REASON, reason),)
            self.session.error(message, detail, receipt_id=receipt, headers=headers)
        self.close(reason)

    def close(self, reason: str = "closed") -> None:
        """Flush and close the transport; the host forgets the connection (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self._meter.release()
        if self._window is not None:
            self._window.close()  # a wait for confirms ends with the connection
        data = self.session.data_to_send()
        if data:
            self.out.write(data)
        self.out.close()
        # A peer that stops reading must not hold the socket open forever while we flush.
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self.out.abort)
        self._host.forget(self, reason)

    async def release(self) -> None:
        """Give back what the relay and the limits hold for this client (socket gone)."""
        self._subscriptions = None
        if self._lease is not None:
            await self._access.release_user(self._lease)
            self._lease = None
        await self._router.release(self)


async def _refuse_before_connect(authority: Authority) -> None:
    raise RuntimeError("frame before CONNECT was accepted")  # sessions emit none


def _settles_first(event: events.Event) -> bool:
    """Whether ``event`` must wait until every earlier SEND is confirmed: anything with a
    receipt (a RECEIPT vouches for all that came before), DISCONNECT (a refused SEND can
    still be reported), and COMMIT (its SENDs may take another channel)."""
    return getattr(event, "receipt", None) is not None or isinstance(
        event, events.DisconnectRequested | events.TransactionCommitted
    )


def _receipt_of(event: events.Event) -> str | None:
    receipt = getattr(event, "receipt", None)
    return receipt if isinstance(receipt, str) else None
