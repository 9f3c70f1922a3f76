"""One client connection: feeds its sans-I/O STOMP session and acts on the events.

The transport (WebSocket or TCP) calls :meth:`Connection.feed` with the bytes it reads, from
the one task that reads the socket, so a client's frames are handled strictly in order.
A SEND without a receipt is written to the broker and the next frame is handled at once:
its confirm comes back through a callback (:meth:`Connection._on_confirm`), and a SEND the
broker does not confirm still ends the session with an ERROR that says so. At most
``max_unconfirmed`` such SENDs are in flight per session (the next one waits, which pushes
back on a client that publishes faster than the broker confirms). A frame with a receipt
(and DISCONNECT, and COMMIT) first waits until all earlier SENDs are confirmed, so a
RECEIPT always means that everything the client sent before it is with the broker.

Broker deliveries arrive on another path, :meth:`deliver`, called by the relay in-process;
they are rendered into the session's outbound buffer and written once per broker read (or
loop turn) for all connections at once (see :class:`gateway.node.Node`), several frames per
socket write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from gateway import stomp_headers
from gateway.access import Identity
from gateway.auth.limits import UserLease
from gateway.chat.layer import ReplayItem
from gateway.errors import ClientError
from gateway.metrics import COMMANDS
from gateway.relay import PublishError, RelaySubscription
from gateway.relay.destinations import AMQ_QUEUE_PREFIX
from gateway.stomp import PreparedMessage, ServerSession, SessionState, events, message_head
from gateway.transport.base import Outbound

if TYPE_CHECKING:
    from gateway.node import Node

log = logging.getLogger("stompgate.session")

#: A closing connection whose peer does not take the last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0
#: After a catch-up replay, live copies of replayed messages are dropped for this long.
CATCH_UP_DEDUP_SECONDS = 30.0
#: Encoded MESSAGE heads kept per session (one per subscription id seen; a client that
#: keeps inventing subscription ids only makes the cache start over).
MAX_CACHED_HEADS = 64


class CatchUp:
    """A catch-up subscription: live messages held during the replay, then de-duplicated:
    a live copy of a replayed message, or of one at or below the device's cursor (it has
    those; one can still be on its way to this node, say held by the room order)."""

    __slots__ = ("after", "held", "replayed", "until")

    def __init__(self, after: int) -> None:
        self.after = after
        self.held: list[tuple[PreparedMessage, str | None]] | None = []
        self.replayed: set[str] = set()
        self.until = 0.0


class Connection:
    """A client's STOMP session on this node; the relay's delivery sink for it."""

    __slots__ = (
        "_catch_up",
        "_closing",
        "_heads",
        "_lease",
        "_next_message_id",
        "_settled",
        "_settled_at",
        "_subscriptions",
        "_unconfirmed",
        "_unpaid",
        "created",
        "deadline",
        "dirty",
        "handshake_token",
        "identity",
        "last_read",
        "last_write",
        "node",
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
        node: Node,
        out: Outbound,
        *,
        transport_name: str,
        peer: str,
        handshake_token: str | None = None,
    ) -> None:
        self.node = node
        self.out = out
        self.transport_name = transport_name
        self.peer = peer
        self.handshake_token = handshake_token
        self.session = ServerSession(node.session_config)
        self.session_id = node.new_session_id()
        self.identity: Identity | None = None
        self.deadline: float | None = None  # epoch seconds when the token expires
        self.rate = node.access.rate_limiter()
        self._lease: UserLease | None = None
        # Created by the first SUBSCRIBE (catch-up: the first one that asks for a replay);
        # most sessions never need them, and an empty dict per session adds up.
        self._subscriptions: dict[str, RelaySubscription] | None = None
        self._catch_up: dict[str, CatchUp] | None = None
        self._next_message_id = 0
        self._heads: dict[str, bytes] | None = None  # subscription id -> message_head()
        self._closing = False
        self.dirty = False  # queued output the node will flush at the end of this loop turn
        self._unpaid = 0  # bytes read but not yet charged to the rate limiter
        self._unconfirmed = 0  # SENDs written to the broker, not confirmed yet
        self._settled: asyncio.Future[None] | None = None  # waits for _unconfirmed to drop
        self._settled_at = 0  # ... to this many
        now = time.monotonic()
        self.created = now
        self.last_read = now
        self.last_write = now
        self.timer_slot: int | None = None  # the node's timer wheel slot, None: no timer runs

    # -- DeliverySink -----------------------------------------------------------------------

    @property
    def user(self) -> str | None:
        return None if self.identity is None else self.identity.user

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        if self._closing:
            return
        if self._catch_up and self._held_or_duplicate(subscription_id, message, ack_id):
            return
        self._emit(subscription_id, message, ack_id)

    def _emit(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
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
        self.node.metrics.delivered += 1
        if not self.dirty:  # one write per loop turn, however many messages it brought
            self.dirty = True
            self.node.mark_dirty(self)

    def _held_or_duplicate(
        self, subscription_id: str, message: PreparedMessage, ack_id: str | None
    ) -> bool:
        catch_up = self._catch_up
        state = None if catch_up is None else catch_up.get(subscription_id)
        if catch_up is None or state is None:
            return False
        if state.held is not None:
            state.held.append((message, ack_id))
            return True
        if time.monotonic() > state.until:
            del catch_up[subscription_id]
            return False
        message_id = next((v for k, v in message.headers if k == stomp_headers.MESSAGE_ID), None)
        if message_id is None:
            return False
        if message_id in state.replayed:
            state.replayed.discard(message_id)
            return True
        return message_id.isdigit() and len(message_id) <= 19 and int(message_id) <= state.after

    # -- input -------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Handle bytes read from the client, in order; returns when all of it is handled."""
        if self.closing:
            return
        now = self.last_read = time.monotonic()
        session = self.session
        session.receive_data(data)
        # Bytes are charged with the next frame to complete, so a frame that arrives in many
        # reads pays for all of them (a charge never exceeds the burst: a frame up to the
        # maximum size must always be able to pass).
        self._unpaid += len(data)
        # The session hands out at most max_pending_frames events at a time, and frames that
        # came in with the CONNECT only after accept(): drain until it has nothing more.
        while batch := session.events_received():
            for event in batch:
                if self._closing:
                    return
                # A protocol violation (e.g. "frame too large") ends the session with its own
                # ERROR; a rate limit must not hide why.
                if not isinstance(event, events.ProtocolViolation):
                    burst = self.node.access.limits.bytes_burst
                    cost = min(self._unpaid, burst) if burst else self._unpaid
                    breach = self.rate.breach(cost, now)
                    if breach is not None:
                        self.fail(breach.message, reason=breach.kind)
                        return
                    self._unpaid = 0
                await self._handle(event)
                self.flush()
        self.flush()

    async def _handle(self, event: events.Event) -> None:
        node = self.node
        node.metrics.frames_in.inc(COMMANDS[type(event)])
        try:
            if self._unconfirmed and _settles_first(event):
                await self._confirmed(0)
                if self._closing:
                    return  # an earlier SEND failed: its ERROR is out
            if isinstance(event, events.SendRequested):
                await self._send(event, pipelined=event.receipt is None)
                if event.receipt is not None:
                    self._receipt(event.receipt)
            elif isinstance(event, events.SubscribeRequested):
                await self._subscribe(event)
            elif isinstance(event, events.UnsubscribeRequested):
                subs = self._subscriptions
                sub = None if subs is None else subs.pop(event.subscription_id, None)
                if sub is not None:
                    await sub.cancel()
                self._receipt(event.receipt)
            elif isinstance(event, events.AckRequested | events.NackRequested):
                await self._ack(event)
                self._receipt(event.receipt)
            elif isinstance(event, events.TransactionCommitted):
                for frame in event.frames:
                    if isinstance(frame, events.SendRequested):
                        await self._send(frame)
                    else:
                        await self._ack(frame)
                self._receipt(event.receipt)
            elif isinstance(event, events.TransactionAborted):
                pass  # the session discarded the buffered frames and sent any receipt
            elif isinstance(event, events.ConnectRequested):
                await self._connect(event)
            elif isinstance(event, events.DisconnectRequested):
                self._receipt(event.receipt)
                self.close()
            elif isinstance(event, events.ProtocolViolation):
                node.metrics.errors.labels("protocol").inc()
                log.info(
                    "protocol error: %s",
                    event.error.message,
                    extra={"session": self.session_id, "peer": self.peer},
                )
                self.close()
        except ClientError as exc:
            self.fail(exc.message, detail=exc.detail, receipt=_receipt_of(event), reason=exc.reason)

    async def _connect(self, event: events.ConnectRequested) -> None:
        access = self.node.access
        identity = await access.authenticate(
            event.login, event.passcode, event.headers, self.handshake_token, time.time()
        )
        self._lease = await access.counter.acquire_user(identity.user)
        self.identity = identity
        self.deadline = access.deadline(identity)
        self.session.accept(session_id=self.session_id, user_name=identity.user)
        self.node.schedule(self, time.monotonic(), time.time())  # heart-beats, idle, token
        self.node.metrics.frames_out.inc("CONNECTED")
        log.info(
            "connected",
            extra={
                "session": self.session_id,
                "user": identity.user,
                "peer": self.peer,
                "version": self.session.version,
                "transport": self.transport_name,
            },
        )

    async def _send(self, event: events.SendRequested, *, pipelined: bool = False) -> None:
        identity = self._identity()
        node = self.node
        headers = await node.access.authorize_send(identity, event.destination, event.headers)
        if node.chat is not None and node.chat.handles(event.destination):
            await node.chat.handle_send(identity.user, event.destination, headers, event.body)
            return
        window = node.settings.max_unconfirmed
        if pipelined and event.destination.startswith(AMQ_QUEUE_PREFIX):
            # Unroutable /amq/queue/ SENDs come back on a channel of their own, so they
            # cannot keep their place among this session's pipelined ones: settle first.
            pipelined = False
            if self._unconfirmed:
                await self._confirmed(0)
                if self._closing:
                    return
        if pipelined and window:
            if self._unconfirmed >= window:
                await self._confirmed(window - 1)
                if self._closing:
                    return
            self._unconfirmed += 1
            try:
                await node.relay.publish(
                    self, event.destination, headers, event.body, on_confirm=self._on_confirm
                )
            except BaseException:
                self._unconfirmed -= 1  # nothing was written: no confirm will come
                raise
            return
        started = time.perf_counter()
        await node.relay.publish(self, event.destination, headers, event.body)
        node.metrics.confirm_latency.observe(time.perf_counter() - started)

    def _on_confirm(self, error: PublishError | None, seconds: float) -> None:
        """The broker's answer to a SEND sent without waiting (see the module docstring)."""
        self._unconfirmed -= 1
        self.node.metrics.confirm_latency.observe(seconds)
        if error is not None:
            self.fail(error.message, detail=error.detail, reason=error.reason)
        waiter = self._settled
        if waiter is not None and self._unconfirmed <= self._settled_at:
            self._settled = None
            if not waiter.done():
                waiter.set_result(None)

    async def _confirmed(self, at_most: int) -> None:
        """Wait until at most ``at_most`` SENDs of this session await their confirm (or the
        session is closing)."""
        while self._unconfirmed > at_most and not self._closing:
            waiter = self._settled = asyncio.get_running_loop().create_future()
            self._settled_at = at_most
            await waiter

    async def _subscribe(self, event: events.SubscribeRequested) -> None:
        identity = self._identity()
        node = self.node
        await node.access.authorize_subscribe(identity, event.destination)
        headers = dict(reversed(event.headers))  # first occurrence wins
        # A bad catch-up header is refused before anything is bound.
        replay = None if node.chat is None else node.chat.replay_request(event)
        if replay is not None:
            # Hold live deliveries from the moment the binding exists until the replay is out.
            if self._catch_up is None:
                self._catch_up = {}
            self._catch_up[event.subscription_id] = CatchUp(replay.after_id)
        try:
            sub = await node.relay.subscribe(
                self, event.subscription_id, event.destination, event.ack, headers
            )
            items: list[ReplayItem] | None = None
            if replay is not None and node.chat is not None:
                # The replay is read after the binding exists (so nothing falls in between)
                # and before the RECEIPT: a catch-up that cannot be served (the store is
                # behind) is unbound again and refused, never receipted.
                try:
                    items = await node.chat.replay(replay)
                except BaseException:
                    await _cancel_quietly(sub)
                    raise
            if self._subscriptions is None:
                self._subscriptions = {}
            self._subscriptions[event.subscription_id] = sub
            self._receipt(event.receipt)
            if items is not None:
                self._finish_catch_up(event.subscription_id, items)
        finally:
            catch_up = self._catch_up
            state = None if catch_up is None else catch_up.get(event.subscription_id)
            if catch_up is not None and state is not None and state.held is not None:
                del catch_up[event.subscription_id]  # failed before the replay

    def _finish_catch_up(self, subscription_id: str, items: list[ReplayItem]) -> None:
        """Send the replay, then the live messages held meanwhile, skipping duplicates."""
        assert self._catch_up is not None
        state = self._catch_up[subscription_id]
        held, state.held = state.held or [], None
        # Replayed items bypass deliver(): it would take them for live messages and, with the
        # window not open yet, drop the catch-up state, letting duplicates of held ones through.
        state.until = time.monotonic() + CATCH_UP_DEDUP_SECONDS
        if self._closing:
            return
        for item in items:
            state.replayed.add(str(item.message_id))
            self._emit(
                subscription_id, PreparedMessage(item.destination, item.headers, item.body), None
            )
        for message, ack_id in held:
            self.deliver(subscription_id, message, ack_id)

    async def _ack(self, event: events.AckRequested | events.NackRequested) -> None:
        sub = self._subscription_for_ack(event)
        if sub is None:
            # Acking something this session no longer holds (already acked, or its
            # subscription is gone) is harmless: the broker redelivers what is unacked.
            return
        if isinstance(event, events.AckRequested):
            await sub.ack(event.ack_id)
        else:
            await sub.nack(event.ack_id, requeue=event.requeue)

    def _subscription_for_ack(
        self, event: events.AckRequested | events.NackRequested
    ) -> RelaySubscription | None:
        subs = self._subscriptions
        if subs is None:
            return None
        if event.subscription_id is not None:
            found = subs.get(event.subscription_id)
            if found is not None:
                return found
        for sub in subs.values():
            if sub.owns(event.ack_id):
                return sub
        return None

    def _identity(self) -> Identity:
        if self.identity is None:  # the session never emits these before CONNECTED
            raise RuntimeError("frame before CONNECT was accepted")
        return self.identity

    # -- output ------------------------------------------------------------------------------

    def _receipt(self, receipt: str | None) -> None:
        if receipt is not None:
            self.session.receipt(receipt)
            self.node.metrics.frames_out.inc("RECEIPT")

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
        if session.closed:
            self.close()
            return
        limit = self.node.settings.max_outbound_buffer
        queued = out.buffered()
        if queued > limit:
            self.node.metrics.slow_consumer_drops.inc()
            self.fail(
                f"slow consumer: {queued} bytes queued > max_outbound_buffer {limit}",
                reason="slow_consumer",
            )

    def heartbeat(self) -> None:
        self.session.send_heartbeat()
        self.flush()

    def fail(
        self,
        message: str,
        *,
        detail: str = "",
        receipt: str | None = None,
        reason: str = "error",
    ) -> None:
        """Send one ERROR frame that says what went wrong, then close."""
        if self._closing:
            return
        self.node.metrics.errors.labels(reason).inc()
        self.node.metrics.frames_out.inc("ERROR")
        log.info(
            "closing with ERROR: %s",
            message,
            extra={"session": self.session_id, "peer": self.peer, "reason": reason},
        )
        if self.session.state is not SessionState.CLOSED:
            self.session.error(message, detail, receipt_id=receipt)
        data = self.session.data_to_send()
        if data:
            self.out.write(data)
        self.close()

    def close(self) -> None:
        """Flush and close the transport; the node forgets the session (idempotent)."""
        if self._closing:
            return
        self._closing = True
        waiter, self._settled = self._settled, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # a wait for confirms ends with the session
        data = self.session.data_to_send()
        if data:
            self.out.write(data)
        self.out.close()
        # A peer that stops reading must not hold the socket open forever while we flush.
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self.out.abort)
        self.node.forget(self)

    @property
    def closing(self) -> bool:
        return self._closing

    async def release(self) -> None:
        """Give back what the relay and the limits hold for this session (socket gone)."""
        self._subscriptions = None
        if self._lease is not None:
            await self.node.access.counter.release_user(self._lease)
            self._lease = None
        await self.node.relay.detach(self)


async def _cancel_quietly(sub: RelaySubscription) -> None:
    """Undo a binding whose SUBSCRIBE fails after all (the original error is what counts)."""
    try:
        await sub.cancel()
    except Exception:
        log.warning("could not cancel a failed subscription", exc_info=True)


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
