"""The relay: SEND → publish with confirm; SUBSCRIBE → node fan-out or an own consumer.

The orchestration: the :mod:`.planner` says what a request becomes, :mod:`.topology`
declares, checks and binds on the broker, and the :class:`Relay` runs the plans against
them, the node fan-out (:mod:`.fanout`), the consumer pool (:mod:`.consumers`) and the
publisher (:mod:`.publisher`), and keeps each client's subscriptions (a
:class:`ClientRecord` per :class:`DeliverySink`). See the package docstring
(:mod:`gateway.relay`) for the design, the destination mapping and the broker-loss policy.

Between planning and running, a plan's :class:`~gateway.auth.authority.Authority` (what it
needs besides its destination) goes to the ``authorize`` callable the caller passes for its
client, once; nothing reaches the broker before it returns. A durable subscription is recorded
(and counted against its user's cap) in the :class:`~gateway.relay.durable.DurableRegistry`,
when the relay has one, before its queue is declared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from aiormq.abc import AbstractConnection

from gateway.auth.authority import NO_AUTHORITY, Authorize
from gateway.errors import ErrorMessage

from .broker_rules import check_consume, check_publish, check_queue_arguments
from .channels import ClientChannel, ConsumerPool
from .consumers import ConsumerSubscription
from .destinations import REPLY_QUEUE_PREFIX, TEMP_QUEUE_PREFIX, TOPIC_EXCHANGE
from .durable import DurableError, DurableRegistry, DurableSubscriptions
from .errors import (
    BrokerRefusedError,
    BrokerUnavailableError,
    PublishError,
    SubscribeError,
    describe_amqp_error,
)
from .fanout import FanoutSubscription, NodeFanout
from .headers import first_headers
from .link import BrokerLink
from .planner import (
    ConsumerPlan,
    FanoutPlan,
    QueueSpec,
    SubscribePlan,
    parse_publish,
    parse_subscribe,
    plan_publish,
    plan_subscribe,
    reply_temp_queue,
    temp_queue_plan,
    unsubscribe_deletes_queue,
    with_reply_to,
)
from .publisher import ConfirmPublisher, PublishCallback
from .settings import RelaySettings
from .subscription import DeliverySink, RelaySubscription
from .topology import Topology
from .wire import AmqpWire, ReadHooks

__all__ = ["ClientRecord", "DeliverySink", "PublishError", "Relay", "SubscribeError"]

log = logging.getLogger("stompgate.relay")


class ClientRecord:
    """What the relay holds for one client (one :class:`DeliverySink`): its subscriptions
    by id, and the temp queues its SENDs' ``reply-to`` made, by name (a task while the
    queue is being made)."""

    __slots__ = ("sink", "subs", "temps")

    def __init__(self, sink: DeliverySink) -> None:
        self.sink = sink
        self.subs: dict[str, RelaySubscription] = {}
        self.temps: dict[str, asyncio.Task[ConsumerSubscription]] = {}

    @property
    def empty(self) -> bool:
        return not self.subs and not self.temps


def _made(task: asyncio.Task[ConsumerSubscription]) -> ConsumerSubscription | None:
    """The temp queue subscription a task made, or None (not done, failed, cancelled)."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()
    return None


class Relay:
    """The AMQP side of one gateway node.

    ``start()`` makes the first connection attempt and returns: ``ready`` tells whether it
    worked; either way the relay keeps (re)connecting in the background until ``close()``.
    ``on_connection_lost(reason)`` runs once per broker loss; ``read_hooks`` (begin, end)
    run around each read of the wire (publish confirms and fan-out deliveries), so the
    gateway writes what one read delivered in one go. ``durables``: where durable
    subscriptions are recorded and counted (None: they are not; :attr:`durable_subscriptions`
    is then None too).
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        on_connection_lost: Callable[[str], None] | None = None,
        read_hooks: ReadHooks | None = None,
        durables: DurableRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._on_connection_lost = on_connection_lost
        self._link = BrokerLink(
            settings, on_up=self._on_up, on_down=self._on_down, read_hooks=read_hooks
        )
        self._topology = Topology(self._consume_connection)
        #: The durable subscriptions of users, with their queues (for the APIs that list and
        #: delete them); None without a registry.
        self.durable_subscriptions: DurableSubscriptions | None = None
        if durables is not None:
            self.durable_subscriptions = DurableSubscriptions(
                durables, messages=self._topology.queue_messages, delete=self._delete_queue
            )
        self._publisher = ConfirmPublisher(settings, on_not_found=self._topology.forget)
        self._pool = ConsumerPool(settings, on_channel_lost=self._channel_lost)
        self._fanout = NodeFanout(settings)
        self._clients: dict[str, ClientRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (one attempt awaited; retries continue in the background)."""
        await self._link.start()

    async def wait_ready(self, seconds: float | None = None) -> bool:
        """Wait until connected, at most ``seconds``; return :attr:`ready`."""
        return await self._link.wait_ready(seconds)

    async def close(self) -> None:
        """Wait for in-flight publish confirms (up to ``confirm_timeout``), then close."""
        self._closing = True
        await self._publisher.drain(self.settings.confirm_timeout)
        await self._pool.close()
        await self._link.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def ready(self) -> bool:
        """True while connected to the broker with the node queue in place."""
        return self._link.ready and not self._closing

    @property
    def broker_url(self) -> str | None:
        """The AMQP URL (password hidden) of the broker node the relay is connected to, one
        of ``settings.amqp_urls``; None while disconnected."""
        return self._link.shown_url

    @property
    def node_queue(self) -> str | None:
        """Name of the node's current fan-out queue (None while disconnected)."""
        return self._fanout.queue

    @property
    def fanout_deliveries(self) -> int:
        """Broker deliveries taken from the node's fan-out queue since start."""
        return self._fanout.deliveries

    def seed_order(self, key: str, next_seq: int, top_id: int) -> None:
        """Start the room order of topic ``key`` at ``next_seq`` if not followed yet."""
        if self._fanout.orderer is not None:
            self._fanout.orderer.seed(key, next_seq, top_id)

    @property
    def room_order(self) -> tuple[int, int, int]:
        """(held, skipped, dropped) counts of the room order (`ordering`) since start."""
        orderer = self._fanout.orderer
        if orderer is None:
            return (0, 0, 0)
        return (orderer.held_total, orderer.skipped_total, orderer.dropped_total)

    def _consume_connection(self) -> AbstractConnection:
        return self._link.consume_connection

    async def _delete_queue(self, name: str) -> None:
        try:
            await self._topology.delete_queue(name, strict=True)
        except Exception as exc:
            raise DurableError(
                ErrorMessage.DURABLE_UNAVAILABLE,
                f"the broker did not delete queue '{name}' ({describe_amqp_error(exc)}); "
                "retry shortly",
                reason="durable_unavailable",
            ) from exc

    async def _on_up(self, wire: AmqpWire, consume: AbstractConnection) -> None:
        await self._publisher.open(wire)
        topic = self.settings.topic_exchange
        self._topology.reset((TOPIC_EXCHANGE,))
        if topic != TOPIC_EXCHANGE:
            await self._topology.declare_exchange(topic, "topic")
        await self._topology.declare_exchange(self.settings.user_exchange, "direct")
        self._pool.open(consume)
        await self._fanout.open(wire, self._publisher.topic_channel)
        for sub in self._consumer_subscriptions():
            await self._restore(sub)

    def _on_down(self, reason: str) -> None:
        self._publisher.reset(reason)
        self._fanout.reset()
        self._pool.reset()
        for sub in self._consumer_subscriptions():
            sub.lost()
        self._topology.reset()
        if self._on_connection_lost is not None and not self._closing:
            try:
                self._on_connection_lost(reason)
            except Exception:
                log.exception("on_connection_lost callback failed")

    def _consumer_subscriptions(self) -> list[ConsumerSubscription]:
        found: list[ConsumerSubscription] = []
        for record in self._clients.values():
            found.extend(s for s in record.subs.values() if isinstance(s, ConsumerSubscription))
            for task in record.temps.values():
                made = _made(task)
                if made is not None:
                    found.append(made)
        return found

    async def _restore(self, sub: ConsumerSubscription) -> None:
        """Re-create ``sub``'s consumer (after a reconnect or a lost channel)."""
        if sub.closed or sub.established or sub.establishing:
            return
        try:
            await sub.establish()
        except Exception as exc:
            if not self._link.connected:
                return  # lost the broker again: the next reconnect restores it
            log.warning(
                "could not restore %s: %s; dropping the subscription",
                sub.destination,
                exc,
                extra={"session": sub.sink.session_id},
            )
            await sub.cancel()

    def _channel_lost(self, pooled: ClientChannel) -> None:
        subs = [s for s in pooled.subs.values() if isinstance(s, ConsumerSubscription)]
        for sub in subs:
            sub.lost()
        generation = self._link.generation

        async def restore() -> None:
            for sub in subs:
                if self._link.generation != generation or not self._link.ready:
                    return  # a reconnect is under way and restores everything
                await self._restore(sub)

        self._spawn(restore())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- SEND ------------------------------------------------------------------------------

    async def publish(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        on_confirm: PublishCallback | None = None,
        authorize: Authorize | None = None,
    ) -> None:
        """Publish a SEND and return once the broker confirmed it.

        Raises DestinationError (bad destination), BrokerRuleError (what the broker would
        refuse beyond this client, see :mod:`.broker_rules`) or PublishError (anything else:
        bad header values, missing /amq/queue/ or exchange, nack, no confirm in time, broker
        lost), or what ``authorize`` raises: it gets the plan's authority, if the plan needs
        any, before anything runs (None: a trusted caller in this process, such as the chat
        layer).

        With ``on_confirm``, return as soon as the message is written: errors up to then
        are raised as above; the confirm's outcome goes to ``on_confirm(error, seconds)``,
        exactly once (error None: confirmed). A topic SEND then never suspends. The SENDs
        of one sink keep their order, awaited or not (they share a channel), except that
        ``mandatory`` ones (``/amq/queue/``) take a channel of their own.
        """
        dest = parse_publish(destination)
        if not self.ready:
            raise PublishError(self._link.unavailable_text())
        first = first_headers(headers)
        reply_to = first.get("reply-to")
        temp = reply_temp_queue(reply_to)
        topology = self._topology
        plan = plan_publish(
            self.settings,
            dest,
            first,
            user=sink.user,
            reply_to=reply_to,
            declared=topology.declared_queues,
        )
        check_publish(plan.properties, len(body), max_message_size=self.settings.max_message_size)
        if authorize is not None and plan.authority is not NO_AUTHORITY:
            await authorize(plan.authority)
        if temp is not None:
            reply_to = REPLY_QUEUE_PREFIX + await self._temp_queue(sink, temp)
            plan = with_reply_to(plan, first, reply_to)
        if plan.declare is not None or plan.check_exchange is not None:
            try:
                if plan.declare is not None:
                    check_queue_arguments(plan.declare.arguments)
                    await topology.declare_queue(plan.declare, remember=True)
                if plan.check_exchange is not None:
                    await topology.check_exchange(plan.check_exchange)
            except BrokerRefusedError as exc:
                raise PublishError(
                    exc.text, message=exc.message(ErrorMessage.SEND_NOT_CONFIRMED)
                ) from exc
            except BrokerUnavailableError as exc:
                raise PublishError(str(exc)) from exc
        lane = id(sink) >> 4
        if on_confirm is not None and not plan.mandatory:
            await self._publisher.publish_nowait(
                plan.exchange, plan.routing_key, body, plan.properties, on_confirm, lane=lane
            )
            return
        started = asyncio.get_running_loop().time()
        try:
            await self._publisher.publish(
                plan.exchange,
                plan.routing_key,
                body,
                plan.properties,
                mandatory=plan.mandatory,
                unroutable=plan.unroutable,
                lane=lane,
            )
        except PublishError as exc:
            if on_confirm is None:
                raise
            on_confirm(exc, asyncio.get_running_loop().time() - started)
            return
        if on_confirm is not None:
            on_confirm(None, asyncio.get_running_loop().time() - started)

    async def _temp_queue(self, sink: DeliverySink, name: str) -> str:
        """The broker queue behind ``/temp-queue/<name>`` for this client (made once)."""
        record = self._record(sink)
        task = record.temps.get(name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self._make_temp_queue(sink, name))
            record.temps[name] = task
        try:
            sub = await asyncio.shield(task)
        except (SubscribeError, BrokerUnavailableError) as exc:
            raise PublishError(f"could not create reply queue: {exc}") from exc
        if sub.queue is None:  # pragma: no cover - established subscriptions have a queue
            raise PublishError("could not create reply queue")
        return sub.queue

    async def _make_temp_queue(self, sink: DeliverySink, name: str) -> ConsumerSubscription:
        sub = self._consumer(sink, temp_queue_plan(self.settings, name))
        await sub.establish()
        return sub

    # -- SUBSCRIBE -------------------------------------------------------------------------

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
        *,
        authorize: Authorize | None = None,
    ) -> RelaySubscription:
        """Subscribe; return once the binding or consumer exists on the broker:
        :meth:`plan`, then ``authorize`` the plan's authority if it needs any (None: a
        trusted caller), then :meth:`open`.

        Raises DestinationError (bad destination), BrokerRuleError (see
        :mod:`.broker_rules`), SubscribeError (anything else), or what ``authorize`` raises.
        """
        plan = self.plan(sink, subscription_id, destination, ack, headers)
        if authorize is not None and plan.authority:
            await authorize(plan.authority)
        return await self.open(sink, plan)

    def plan(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
    ) -> SubscribePlan:
        """What a SUBSCRIBE by ``sink``'s client becomes (nothing runs yet). Raises
        DestinationError or SubscribeError (broker unavailable, the id in use, bad headers)."""
        dest = parse_subscribe(subscription_id, destination, ack)
        if not self.ready:
            raise SubscribeError(self._link.unavailable_text())
        record = self._clients.get(sink.session_id)
        if record is not None and subscription_id in record.subs:
            raise SubscribeError(
                f"A subscription identified by '{subscription_id}' already exists.",
                message=ErrorMessage.DUPLICATED_SUBSCRIPTION,
            )
        return plan_subscribe(
            self.settings,
            subscription_id=subscription_id,
            destination=destination,
            dest=dest,
            ack=ack,
            headers=headers,
            user=sink.user,
        )

    async def open(self, sink: DeliverySink, plan: SubscribePlan) -> RelaySubscription:
        """Run an (authorized) subscribe plan for ``sink``; return once the binding or consumer
        exists on the broker. Raises SubscribeError (or DurableError: a durable subscription
        over its user's cap)."""
        subscription_id = plan.subscription_id
        if isinstance(plan, ConsumerPlan):
            check_consume(stream=_declares_stream(plan.queue), prefetch=plan.prefetch)
            check_queue_arguments(plan.queue.arguments)
        claimed: str | None = None  # the queue of a durable subscription recorded just now
        durables = self.durable_subscriptions
        if isinstance(plan, ConsumerPlan) and plan.durable and durables is not None:
            record = durables.record(plan.queue.name, subscription_id, plan.destination)
            if await durables.claim(sink.user, record):
                claimed = record.queue
        sub: FanoutSubscription | ConsumerSubscription
        if isinstance(plan, FanoutPlan):
            sub = FanoutSubscription(
                self._fanout,
                sink,
                plan.subscription_id,
                plan.destination,
                exchange=plan.exchange,
                key=plan.key,
                shown_destination=plan.shown_destination,
                on_closed=self._forget,
            )
        else:
            sub = self._consumer(sink, plan)
        self._record(sink).subs[subscription_id] = sub
        try:
            if isinstance(sub, FanoutSubscription):
                await self._fanout.add(sub)
            else:
                await sub.establish()
        except BaseException as exc:
            if isinstance(sub, ConsumerSubscription):
                await sub.cancel()
            else:
                sub.mark_closed()  # the fan-out has dropped it already
            if claimed is not None and durables is not None:
                with contextlib.suppress(Exception):  # the subscription's error is what counts
                    await durables.registry.forget(sink.user, claimed)
            if isinstance(exc, BrokerUnavailableError):
                raise SubscribeError(str(exc)) from exc
            raise
        return sub

    def _consumer(self, sink: DeliverySink, plan: ConsumerPlan) -> ConsumerSubscription:
        """The subscription of a consumer plan (its queue is made by :meth:`establish
        <ConsumerSubscription.establish>`, again after each reconnect)."""

        async def prepare(via: AbstractConnection) -> str:
            try:
                return await self._prepare(plan, via)
            except BrokerRefusedError as exc:
                raise SubscribeError(
                    exc.text, message=exc.message(ErrorMessage.SUBSCRIBE_FAILED)
                ) from exc

        return ConsumerSubscription(
            self._pool,
            sink,
            plan.subscription_id,
            plan.destination,
            plan.ack,
            prefetch=plan.prefetch,
            prepare=prepare,
            finalize=self._finalize,
            durable=plan.durable,
            destination_override=plan.shown_destination,
            arguments=plan.consumer_arguments,
            stream=_declares_stream(plan.queue),
            on_closed=self._forget,
            topic_exchange=self.settings.topic_exchange,
        )

    async def _prepare(self, plan: ConsumerPlan, via: AbstractConnection) -> str:
        """Check, declare and bind what a consumer plan reads, on connection ``via`` (the
        one the client's channel is on); return the queue's name."""
        topology = self._topology
        if plan.check_exchange is not None:
            await topology.check_exchange(plan.check_exchange, via=via)
        queue = await topology.declare_queue(plan.queue, via=via)
        if plan.binding is not None:
            try:
                await topology.bind(queue, plan.binding, via=via)
            except BaseException:
                if not plan.durable:
                    await topology.delete_queue(queue, via=via)
                raise
        return queue

    async def _finalize(self, sub: ConsumerSubscription, headers: Mapping[str, str] | None) -> None:
        if (
            unsubscribe_deletes_queue(sub.durable, headers)
            and sub.queue is not None
            and self._link.ready
        ):
            await self._topology.delete_queue(sub.queue)
            if self.durable_subscriptions is not None:
                await self.durable_subscriptions.registry.forget(sub.sink.user, sub.queue)

    # -- the registry ----------------------------------------------------------------------

    def _record(self, sink: DeliverySink) -> ClientRecord:
        record = self._clients.get(sink.session_id)
        if record is None:
            record = self._clients[sink.session_id] = ClientRecord(sink)
        return record

    def _forget(self, sub: RelaySubscription) -> None:
        """``sub`` is closed: drop it from its client's record."""
        record = self._clients.get(sub.sink.session_id)
        if record is None:
            return
        if record.subs.get(sub.id) is sub:
            del record.subs[sub.id]
        elif sub.id.startswith(TEMP_QUEUE_PREFIX):
            name = sub.id[len(TEMP_QUEUE_PREFIX) :]
            task = record.temps.get(name)
            if task is not None and _made(task) is sub:
                del record.temps[name]
        if record.empty:
            del self._clients[sub.sink.session_id]

    async def detach(self, sink: DeliverySink) -> None:
        """The client is gone: cancel its subscriptions and temp queues and close its
        channel. Unacked messages of its client-ack subscriptions go back to their queues
        (requeued; on a stream they are simply left); durable subscription queues are
        kept."""
        record = self._clients.pop(sink.session_id, None)
        if record is None:
            return
        subs: list[RelaySubscription] = list(record.subs.values())
        for task in record.temps.values():
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task
            made = _made(task)
            if made is not None:
                subs.append(made)
        record.subs.clear()
        record.temps.clear()
        results = await asyncio.gather(*(sub.cancel() for sub in subs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("error while detaching: %s", result, extra={"session": sink.session_id})
        await self._pool.close_owner(sink.session_id)


def _declares_stream(queue: QueueSpec) -> bool:
    """Does the plan declare the queue as a stream?"""
    return not queue.passive and queue.arguments.get("x-queue-type") == "stream"
