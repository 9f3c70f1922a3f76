"""Edge fan-out: one exclusive queue per node, consumed once, delivered to every local match.

The node declares ``stompgate.node.<node_id>.<random>`` (exclusive, auto-delete) on its
wire (:mod:`gateway.relay.wire`, the connection that also publishes, so a confirm and the
delivery of the same message often arrive in one read), consumes it without acks, and
binds it

* to ``amq.topic`` with the union of the topic keys/patterns its sessions subscribe to
  (``/topic/...`` with ``ack:auto``, not durable), and
* to the user exchange (direct) with ``<quoted user>/<name>`` for every ``/user/queue/<name>``
  subscription of a local user.

Bindings are reference-counted (:class:`~gateway.relay.matcher.TopicTrie`): bound on the
first local subscriber, unbound after the last. Topic messages that carry a room sequence
number go through :class:`~gateway.relay.ordering.KeyOrderer` first, so local subscribers
get a room's messages in room order. Each broker delivery becomes ONE
:class:`~gateway.stomp.PreparedMessage`, handed to every matching local subscription, so a
room of 1,000 members spread over 4 nodes costs the broker 4 deliveries.

On reconnect the relay calls :meth:`NodeFanout.open` again: a new queue is declared and every
pattern that still has subscribers is bound again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping

from .destinations import TOPIC_PREFIX, escape_name
from .errors import BrokerUnavailableError, SubscribeError, describe_amqp_error
from .matcher import TopicTrie, split_words, topic_matches
from .ordering import KeyOrderer, sequence_of
from .settings import RelaySettings
from .subscription import DeliverySink, OnClosed, RelaySubscription, prepare_delivery
from .wire import AmqpWire, Delivery, WireChannel, WireError

__all__ = ["FanoutSubscription", "NodeFanout"]

log = logging.getLogger("stompgate.relay")


class FanoutSubscription(RelaySubscription):
    """An ``ack:auto`` topic or ``/user/queue/`` subscription served by the node queue."""

    __slots__ = ("_fanout", "exchange", "key", "shown_destination")

    def __init__(
        self,
        fanout: NodeFanout,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        *,
        exchange: str,
        key: str,
        shown_destination: str | None = None,
        on_closed: OnClosed | None = None,
    ) -> None:
        super().__init__(sink, subscription_id, destination, "auto", on_closed=on_closed)
        self._fanout = fanout
        self.exchange = exchange
        self.key = key
        self.shown_destination = shown_destination

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        if self.mark_closed():
            await self._fanout.remove(self)


def _is_wild(pattern: str) -> bool:
    words = split_words(pattern)
    return "*" in words or "#" in words


class _KeyLock:
    """Serializes bind/unbind of one (exchange, key); dropped when nobody uses it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class NodeFanout:
    """The node's fan-out queue, its reference-counted bindings and local matching."""

    def __init__(self, settings: RelaySettings) -> None:
        self._settings = settings
        self._user_exchange = settings.user_exchange
        self._topic_exchange = settings.topic_exchange
        self._topics: TopicTrie[FanoutSubscription] = TopicTrie()
        self._users: dict[str, dict[FanoutSubscription, None]] = {}
        self._user_destinations: dict[str, str] = {}
        self._wire: AmqpWire | None = None
        self._channel: WireChannel | None = None  # consumes the node queue
        self._binder: WireChannel | None = None  # binds and unbinds (a refusal closes it)
        self._queue: str | None = None
        self._bound: set[tuple[str, str]] = set()
        self._bound_wild: set[str] = set()  # the bound topic patterns with a wildcard
        self._locks: dict[tuple[str, str], _KeyLock] = {}
        self.deliveries = 0  # broker deliveries taken from the node queue
        self._orderer: KeyOrderer[Delivery] | None = None
        if settings.order_hold > 0:
            self._orderer = KeyOrderer(self._dispatch_topic, hold=settings.order_hold)

    @property
    def orderer(self) -> KeyOrderer[Delivery] | None:
        """Puts room messages back in room order (`gateway.relay.ordering`); None if off."""
        return self._orderer

    @property
    def queue(self) -> str | None:
        """The current node queue's name (None while disconnected)."""
        return self._queue

    # -- connection lifecycle --------------------------------------------------------------

    async def open(self, wire: AmqpWire, channel: WireChannel) -> None:
        """Declare a fresh node queue, bind everything still referenced, start consuming on
        ``channel`` (the publisher's topic channel: a confirm and the delivery of the same
        message then come from one broker channel writer). It must be critical: without
        its consumer the node would miss messages silently."""
        assert channel.critical
        binder = await wire.channel()
        name = f"{self._settings.deployment}.node.{self._settings.node_id}.{secrets.token_hex(6)}"
        await channel.queue_declare(name, exclusive=True, auto_delete=True, durable=False)
        wanted = [(self._topic_exchange, key) for key in self._topics.patterns()]
        wanted += [(self._user_exchange, key) for key in self._users]
        for exchange, key in wanted:
            await binder.queue_bind(name, exchange, key)
        await channel.basic_consume(name, self._on_message)
        self._wire, self._channel, self._binder, self._queue = wire, channel, binder, name
        self._bound = set(wanted)
        self._bound_wild = {key for exchange, key in wanted if self._wild_topic(exchange, key)}
        log.info("node fan-out queue %s with %d bindings", name, len(wanted))

    def reset(self) -> None:
        """The connection is gone, and the exclusive queue with it."""
        self._wire = self._channel = self._binder = None
        self._queue = None
        self._bound.clear()
        self._bound_wild.clear()
        if self._orderer is not None:
            self._orderer.reset()

    # -- subscriptions ---------------------------------------------------------------------

    def _count(self, exchange: str, key: str) -> int:
        if exchange == self._topic_exchange:
            return self._topics.count(key)
        return len(self._users.get(key, ()))

    async def add(self, sub: FanoutSubscription) -> None:
        """Register ``sub`` locally and make sure its binding exists on the broker."""
        if sub.exchange == self._topic_exchange:
            self._topics.add(sub.key, sub)
        else:
            self._users.setdefault(sub.key, {})[sub] = None
            if sub.shown_destination is not None:
                self._user_destinations[sub.key] = sub.shown_destination
        try:
            await self._reconcile(sub.exchange, sub.key, strict=True)
        except BaseException:
            await self._drop(sub)
            raise

    async def remove(self, sub: FanoutSubscription) -> None:
        await self._drop(sub)

    async def _drop(self, sub: FanoutSubscription) -> None:
        if sub.exchange == self._topic_exchange:
            self._topics.remove(sub.key, sub)
        else:
            subs = self._users.get(sub.key)
            if subs is not None:
                subs.pop(sub, None)
                if not subs:
                    del self._users[sub.key]
                    self._user_destinations.pop(sub.key, None)
        try:
            await self._reconcile(sub.exchange, sub.key, strict=False)
        except Exception as exc:  # a stale binding only costs a few extra deliveries
            log.debug("unbind %s %r failed: %s", sub.exchange, sub.key, exc)

    async def _reconcile(self, exchange: str, key: str, *, strict: bool) -> None:
        """Bring the broker binding (exchange, key) in line with the local count."""
        ident = (exchange, key)
        entry = self._locks.get(ident)
        if entry is None:
            entry = self._locks[ident] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                want = self._count(exchange, key) > 0
                have = ident in self._bound
                if want == have:
                    return
                try:
                    binder = await self._binder_channel()
                except WireError:
                    if strict:
                        raise BrokerUnavailableError("broker unavailable") from None
                    return
                queue = self._queue
                if queue is None:
                    if strict:
                        raise BrokerUnavailableError("broker unavailable")
                    return
                try:
                    if want:
                        self._restart_order(exchange, key)
                        await binder.queue_bind(queue, exchange, key)
                        self._bound.add(ident)
                        if self._wild_topic(exchange, key):
                            self._bound_wild.add(key)
                    else:
                        self._bound.discard(ident)
                        self._bound_wild.discard(key)
                        self._restart_order(exchange, key)
                        await binder.queue_unbind(queue, exchange, key)
                except Exception as exc:
                    if strict:
                        raise SubscribeError(
                            f"broker refused the binding: {describe_amqp_error(exc)}"
                        ) from exc
                    raise
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[ident]

    def _wild_topic(self, exchange: str, key: str) -> bool:
        return exchange == self._topic_exchange and _is_wild(key)

    def _restart_order(self, exchange: str, pattern: str) -> None:
        """The room order forgets the keys ``pattern`` covers that no other binding of the
        node covers: the node does not hear them from here on (an unbind), or did not hear
        them until now (a bind). Either way the posts published meanwhile never reach it, so
        the next one must not wait for them nor count them as skipped (`ordering`). Called
        before the broker is asked, so a message the new binding routes comes after it."""
        orderer = self._orderer
        if exchange != self._topic_exchange or orderer is None or not len(orderer):
            return
        # A key is covered by its own binding or by a pattern with a wildcard.
        others = [p for p in self._bound_wild if p != pattern]

        def unheard(key: str) -> bool:
            if key != pattern and (self._topic_exchange, key) in self._bound:
                return False
            return not any(topic_matches(p, key) for p in others)

        if _is_wild(pattern):
            orderer.forget(lambda key: topic_matches(pattern, key) and unheard(key))
        elif orderer.follows(pattern) and unheard(pattern):
            orderer.forget(lambda key: key == pattern)

    async def _binder_channel(self) -> WireChannel:
        """The channel for binds; reopened if the broker closed it (a refused bind)."""
        binder, wire = self._binder, self._wire
        if wire is None or wire.is_closed:
            raise WireError("broker unavailable")
        if binder is None or binder.is_closed:
            binder = self._binder = await wire.channel()
        return binder

    # -- deliveries (the hot path) ---------------------------------------------------------

    def _on_message(self, message: Delivery) -> None:
        """Called by the wire inside ``data_received``: renders and queues, never awaits."""
        self.deliveries += 1
        exchange = message.exchange
        key = message.routing_key
        if exchange == self._topic_exchange and self._orderer is not None:
            sequence = sequence_of(message.properties.headers)
            if sequence is not None:
                self._orderer.offer(key, *sequence, message)
                return
        self._dispatch(exchange, key, message)

    def _dispatch_topic(self, key: str, message: Delivery) -> None:
        self._dispatch(self._topic_exchange, key, message)

    def _dispatch(self, exchange: str, key: str, message: Delivery) -> None:
        subs: tuple[FanoutSubscription, ...] | list[FanoutSubscription]
        if exchange == self._topic_exchange:
            subs = self._topics.match(key)
            if not subs:
                return
            destination = TOPIC_PREFIX + escape_name(key)
        elif exchange == self._user_exchange:
            found = self._users.get(key)
            if not found:
                return
            subs = list(found)
            destination = self._user_destinations.get(key) or subs[0].destination
        else:
            return
        prepared = prepare_delivery(
            message.properties, message.redelivered, message.body, destination
        )
        for sub in subs:
            try:
                sub.sink.deliver(sub.id, prepared, None)
            except Exception:
                log.exception(
                    "sink failed to take a message", extra={"session": sub.sink.session_id}
                )
