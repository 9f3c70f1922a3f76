"""The relay: SEND → publish with confirm; SUBSCRIBE → node fan-out or an own consumer.

See the package docstring (:mod:`gateway.relay`) for the design, the destination mapping
and the broker-loss policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from pamqp.common import FieldValue

from .consumers import ConsumerChannel, ConsumerPool, ConsumerSubscription
from .destinations import (
    REPLY_QUEUE_PREFIX,
    TEMP_QUEUE_PREFIX,
    AmqQueue,
    Destination,
    DestinationError,
    Exchange,
    Queue,
    ReplyQueue,
    TempQueue,
    Topic,
    UserQueue,
    parse_destination,
)
from .errors import BrokerUnavailableError, PublishError, SubscribeError, describe_amqp_error
from .fanout import FanoutSubscription, NodeFanout
from .headers import HeaderError, first_headers, properties_from_send, queue_arguments
from .link import BrokerLink
from .publisher import TOPIC_EXCHANGE, ConfirmPublisher, PublishCallback
from .settings import RelaySettings
from .subscription import ACK_MODES, DeliverySink, RelaySubscription
from .wire import AmqpWire, ReadHooks

__all__ = [
    "DeliverySink",
    "PublishError",
    "Relay",
    "RelaySubscription",
    "SubscribeError",
    "durable_queue_name",
    "user_routing_key",
]

log = logging.getLogger("stompgate.relay")

MAX_KEY_BYTES = 255


def durable_queue_name(user: str | None, subscription_id: str, destination: str) -> str:
    """The queue of a durable subscription: deterministic in (user, subscription id,
    destination), so the same user re-subscribing with the same id to the same destination,
    on any node, finds its messages. The destination is part of it (as in RabbitMQ's plugin)
    because clients such as STOMP.js number their ids ``sub-0``, ``sub-1``... per
    connection: without it, ``sub-0`` for another room would reuse (and keep the bindings
    of) the old queue. Anonymous sessions (user None) share durable queues by id."""
    material = "\x00".join((user or "", subscription_id, destination))
    digest = hashlib.sha256(material.encode()).hexdigest()
    return f"stompgate.dsub.{digest[:40]}"


def user_routing_key(user: str, name: str) -> str:
    """Routing key on the user exchange for ``/user/<user>/queue/<name>``."""
    key = urllib.parse.quote(user, safe="") + "/" + name
    if len(key.encode()) > MAX_KEY_BYTES:
        raise DestinationError(
            f"user name and queue name are too long together (over {MAX_KEY_BYTES} bytes)"
        )
    return key


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _is_false(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "false"


def has_durable_header(headers: Mapping[str, str]) -> bool:
    """``durable:true`` or ``persistent:true``, as RabbitMQ's plugin reads it."""
    return _is_true(headers.get("durable")) or _is_true(headers.get("persistent"))


class _Session:
    __slots__ = ("sink", "subs", "temps")

    def __init__(self, sink: DeliverySink) -> None:
        self.sink = sink
        self.subs: dict[str, RelaySubscription] = {}
        self.temps: dict[str, asyncio.Task[ConsumerSubscription]] = {}


class Relay:
    """The AMQP side of one gateway node.

    ``start()`` makes the first connection attempt and returns: ``ready`` tells whether it
    worked; either way the relay keeps (re)connecting in the background until ``close()``.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        on_connection_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_connection_lost = on_connection_lost
        self._publisher = ConfirmPublisher(settings)
        self._publisher.on_not_found = self._forget_missing
        self._pool = ConsumerPool(settings)
        self._pool.on_channel_lost = self._channel_lost
        self._fanout = NodeFanout(settings)
        self._link = BrokerLink(settings, on_up=self._on_up, on_down=self._on_down)
        self._sessions: dict[str, _Session] = {}
        self._declared_queues: set[str] = set()
        self._known_exchanges: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        #: (begin, end), called around each read of the wire (publish confirms and fan-out
        #: deliveries): the gateway writes what one read delivered in one go.
        self.read_hooks: ReadHooks | None = None

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

    async def _on_up(self, wire: AmqpWire, consume: AbstractConnection) -> None:
        settings = self.settings
        wire.read_hooks = self.read_hooks
        await self._publisher.open(wire)
        channel = await consume.channel(publisher_confirms=False)
        try:
            await channel.exchange_declare(
                settings.user_exchange, exchange_type="direct", durable=True
            )
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        self._known_exchanges = {TOPIC_EXCHANGE, settings.user_exchange}
        self._declared_queues.clear()
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
        self._declared_queues.clear()
        self._known_exchanges.clear()
        if self._on_connection_lost is not None and not self._closing:
            try:
                self._on_connection_lost(reason)
            except Exception:
                log.exception("on_connection_lost callback failed")

    def _consumer_subscriptions(self) -> list[ConsumerSubscription]:
        found: list[ConsumerSubscription] = []
        for session in self._sessions.values():
            found.extend(s for s in session.subs.values() if isinstance(s, ConsumerSubscription))
            for task in session.temps.values():
                if task.done() and not task.cancelled() and task.exception() is None:
                    found.append(task.result())
        return found

    async def _restore(self, sub: ConsumerSubscription) -> None:
        """Re-create ``sub``'s consumer (after a reconnect or a lost channel)."""
        if sub.closed or sub.established:
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

    def _channel_lost(self, pooled: ConsumerChannel) -> None:
        subs = list(pooled.subs.values())
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

    # -- broker helpers --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _scratch(self) -> AsyncIterator[AbstractChannel]:
        """A throw-away channel for operations the broker may refuse (closing the channel)."""
        connection = self._link.consume_connection
        channel = await connection.channel(publisher_confirms=False)
        try:
            yield channel
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()

    async def _check_queue(self, name: str) -> str:
        """Passive declare: the queue exists and we may use it (else SubscribeError)."""
        try:
            async with self._scratch() as channel:
                await channel.queue_declare(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise SubscribeError(f"no such queue '{name}'") from exc
        except aiormq.exceptions.ChannelLockedResource as exc:
            raise SubscribeError(f"queue '{name}' is exclusive to another connection") from exc
        except aiormq.exceptions.ChannelClosed as exc:
            raise SubscribeError(
                f"broker refused queue '{name}': {describe_amqp_error(exc)}"
            ) from exc
        return name

    async def _check_exchange(self, name: str) -> None:
        if name in self._known_exchanges or name.startswith("amq."):
            return
        try:
            async with self._scratch() as channel:
                await channel.exchange_declare(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise SubscribeError(f"no such exchange '{name}'") from exc
        except aiormq.exceptions.ChannelClosed as exc:
            raise SubscribeError(
                f"broker refused exchange '{name}': {describe_amqp_error(exc)}"
            ) from exc
        self._known_exchanges.add(name)

    async def _declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        exclusive: bool = False,
        arguments: Mapping[str, FieldValue] | None = None,
        lenient: bool = False,
    ) -> str:
        """Declare a queue; ``lenient``: if it exists with other arguments, use it as it is."""
        try:
            async with self._scratch() as channel:
                ok = await channel.queue_declare(
                    name,
                    durable=durable,
                    auto_delete=auto_delete,
                    exclusive=exclusive,
                    arguments=dict(arguments) if arguments else None,
                )
                return ok.queue or name
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            if not lenient:
                raise SubscribeError(
                    f"broker refused queue '{name}': {describe_amqp_error(exc)}"
                ) from exc
            log.info("queue %r exists with other arguments; using it as it is", name)
            return await self._check_queue(name)
        except aiormq.exceptions.ChannelClosed as exc:
            raise SubscribeError(
                f"broker refused queue '{name}': {describe_amqp_error(exc)}"
            ) from exc

    async def _bind(self, queue: str, exchange: str, key: str) -> None:
        try:
            async with self._scratch() as channel:
                await channel.queue_bind(queue, exchange, routing_key=key)
        except aiormq.exceptions.ChannelClosed as exc:
            raise SubscribeError(
                f"broker refused to bind '{queue}' to '{exchange}': {describe_amqp_error(exc)}"
            ) from exc

    async def _delete_queue(self, name: str) -> None:
        try:
            async with self._scratch() as channel:
                await channel.queue_delete(name)
        except Exception as exc:
            log.warning("could not delete queue %r: %s", name, exc)

    # -- SEND ------------------------------------------------------------------------------

    async def publish(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        on_confirm: PublishCallback | None = None,
    ) -> None:
        """Publish a SEND and return once the broker confirmed it.

        Raises DestinationError (bad destination) or PublishError (anything else: bad header
        values, missing /amq/queue/ or exchange, nack, no confirm in time, broker lost).

        With ``on_confirm``, return as soon as the message is written: errors up to then
        are raised as above; the confirm's outcome goes to ``on_confirm(error, seconds)``,
        exactly once (error None: confirmed). A topic SEND then never suspends. The SENDs
        of one sink keep their order, awaited or not (they share a channel), except that
        ``mandatory`` ones (``/amq/queue/``) take a channel of their own.
        """
        dest = parse_destination(destination)
        if isinstance(dest, TempQueue):
            raise DestinationError(
                "/temp-queue/ destinations can only be used in a reply-to header"
            )
        if not self.ready:
            raise PublishError(self._link.unavailable_text())
        first = first_headers(headers)
        reply_to = first.get("reply-to")
        if reply_to is not None and reply_to.startswith(TEMP_QUEUE_PREFIX):
            temp = parse_destination(reply_to)
            assert isinstance(temp, TempQueue)
            reply_to = REPLY_QUEUE_PREFIX + await self._temp_queue(sink, temp.name)
        try:
            properties = properties_from_send(first, reply_to=reply_to)
            exchange, key, mandatory, unroutable = await self._route(sink, dest, first)
        except HeaderError as exc:
            raise PublishError(str(exc)) from exc
        except SubscribeError as exc:
            raise PublishError(str(exc)) from exc
        except BrokerUnavailableError as exc:
            raise PublishError(str(exc)) from exc
        lane = id(sink) >> 4
        if on_confirm is not None and not mandatory:
            await self._publisher.publish_nowait(
                exchange, key, body, properties, on_confirm, lane=lane
            )
            return
        started = asyncio.get_running_loop().time()
        try:
            await self._publisher.publish(
                exchange,
                key,
                body,
                properties,
                mandatory=mandatory,
                unroutable=unroutable,
                lane=lane,
            )
        except PublishError as exc:
            if on_confirm is None:
                raise
            on_confirm(exc, asyncio.get_running_loop().time() - started)
            return
        if on_confirm is not None:
            on_confirm(None, asyncio.get_running_loop().time() - started)

    def _forget_missing(self, exchange: str, key: str) -> None:
        """The broker said an exchange (or, for ``""``, a queue) we had checked is gone:
        check again next time (the publisher calls this for every NOT_FOUND)."""
        self._known_exchanges.discard(exchange)
        if exchange == "":
            self._declared_queues.discard(key)

    async def _route(
        self, sink: DeliverySink, dest: Destination, headers: Mapping[str, str]
    ) -> tuple[str, str, bool, str]:
        """(exchange, routing key, mandatory, text if unroutable) for a SEND."""
        match dest:
            case Topic(key):
                return TOPIC_EXCHANGE, key, False, ""
            case Queue(name):
                if name not in self._declared_queues:
                    arguments = queue_arguments(headers)
                    await self._declare_queue(name, arguments=arguments, lenient=not arguments)
                    self._declared_queues.add(name)
                return "", name, False, ""
            case AmqQueue(name):
                return "", name, True, f"no such queue '{name}'"
            case Exchange(name, key):
                await self._check_exchange(name)
                return name, key or "", False, ""
            case ReplyQueue(name):
                return "", name, False, ""
            case UserQueue(name, user):
                target = user if user is not None else sink.user
                if target is None:
                    raise DestinationError(
                        "/user/queue/ needs an authenticated user; "
                        "send to /user/<name>/queue/<queue> instead"
                    )
                return self.settings.user_exchange, user_routing_key(target, name), False, ""
        raise DestinationError(f"cannot send to {dest}")  # pragma: no cover - TempQueue

    async def _temp_queue(self, sink: DeliverySink, name: str) -> str:
        """The broker queue behind ``/temp-queue/<name>`` for this session (made once)."""
        session = self._session(sink)
        task = session.temps.get(name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self._make_temp_queue(sink, name))
            session.temps[name] = task
        try:
            sub = await asyncio.shield(task)
        except (SubscribeError, BrokerUnavailableError) as exc:
            raise PublishError(f"could not create reply queue: {exc}") from exc
        if sub.queue is None:  # pragma: no cover - established subscriptions have a queue
            raise PublishError("could not create reply queue")
        return sub.queue

    async def _make_temp_queue(self, sink: DeliverySink, name: str) -> ConsumerSubscription:
        subscription_id = TEMP_QUEUE_PREFIX + name

        async def prepare() -> str:
            return await self._declare_queue(
                "", durable=False, auto_delete=True, exclusive=True, arguments=None
            )

        sub = ConsumerSubscription(
            self._pool,
            sink,
            subscription_id,
            subscription_id,
            "auto",
            prefetch=self.settings.default_prefetch,
            prepare=prepare,
            finalize=self._finalize,
        )
        sub._forget = self._forget
        await sub.establish()
        return sub

    # -- SUBSCRIBE -------------------------------------------------------------------------

    def _session(self, sink: DeliverySink) -> _Session:
        session = self._sessions.get(sink.session_id)
        if session is None:
            session = self._sessions[sink.session_id] = _Session(sink)
        return session

    def _forget(self, sub: RelaySubscription) -> None:
        session = self._sessions.get(sub.sink.session_id)
        if session is None:
            return
        if session.subs.get(sub.id) is sub:
            del session.subs[sub.id]
        elif sub.id.startswith(TEMP_QUEUE_PREFIX):
            name = sub.id[len(TEMP_QUEUE_PREFIX) :]
            task = session.temps.get(name)
            if (
                task is not None
                and task.done()
                and not task.cancelled()
                and task.exception() is None
                and task.result() is sub
            ):
                del session.temps[name]
        if not session.subs and not session.temps:
            del self._sessions[sub.sink.session_id]

    async def _finalize(self, sub: ConsumerSubscription, headers: Mapping[str, str] | None) -> None:
        if (
            sub.durable
            and headers is not None
            and has_durable_header(headers)
            and sub.queue is not None
            and self._link.ready
        ):
            await self._delete_queue(sub.queue)

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
    ) -> RelaySubscription:
        """Subscribe; return once the binding or consumer exists on the broker.

        Raises DestinationError (bad destination) or SubscribeError (anything else).
        """
        if ack not in ACK_MODES:
            raise SubscribeError(f"ack must be auto, client or client-individual: got '{ack}'")
        dest = parse_destination(destination, for_subscribe=True)
        if isinstance(dest, TempQueue):
            raise DestinationError(
                "/temp-queue/ destinations can only be used in a reply-to header"
            )
        if subscription_id.startswith(TEMP_QUEUE_PREFIX):
            raise SubscribeError("subscription ids starting with /temp-queue/ are reserved")
        if not self.ready:
            raise SubscribeError(self._link.unavailable_text())
        session = self._session(sink)
        if subscription_id in session.subs:
            raise SubscribeError(f"subscription id '{subscription_id}' is already in use")
        try:
            sub = self._build(sink, subscription_id, destination, dest, ack, headers)
        except HeaderError as exc:
            if not session.subs and not session.temps:
                self._sessions.pop(sink.session_id, None)
            raise SubscribeError(str(exc)) from exc
        except BaseException:
            if not session.subs and not session.temps:
                self._sessions.pop(sink.session_id, None)
            raise
        sub._forget = self._forget
        session.subs[subscription_id] = sub
        try:
            if isinstance(sub, FanoutSubscription):
                await self._fanout.add(sub)
            else:
                assert isinstance(sub, ConsumerSubscription)
                await sub.establish()
        except BaseException as exc:
            if isinstance(sub, ConsumerSubscription):
                await sub.cancel()
            else:
                sub._mark_closed()
            if isinstance(exc, BrokerUnavailableError):
                raise SubscribeError(str(exc)) from exc
            raise
        return sub

    def _build(
        self,
        sink: DeliverySink,
        subscription_id: str,
        text: str,
        dest: Destination,
        ack: str,
        headers: Mapping[str, str],
    ) -> RelaySubscription:
        settings = self.settings
        if isinstance(dest, Exchange) and dest.name == TOPIC_EXCHANGE:
            dest = Topic(dest.key or "")
        durable = (
            isinstance(dest, Topic | Exchange)
            and has_durable_header(headers)
            and _is_false(headers.get("auto-delete"))
        )
        if isinstance(dest, UserQueue):
            if dest.user is not None:
                raise DestinationError(
                    "cannot subscribe to another user's queue: subscribe to "
                    f"/user/queue/{dest.name} to get your own"
                )
            if sink.user is None:
                raise SubscribeError("/user/ destinations need an authenticated user")
            key = user_routing_key(sink.user, dest.name)
            shown = str(UserQueue(dest.name))
            if ack == "auto":
                return FanoutSubscription(
                    self._fanout,
                    sink,
                    subscription_id,
                    text,
                    exchange=settings.user_exchange,
                    key=key,
                    shown_destination=shown,
                )
        elif isinstance(dest, Topic) and ack == "auto" and not durable:
            return FanoutSubscription(
                self._fanout, sink, subscription_id, text, exchange=TOPIC_EXCHANGE, key=dest.key
            )
        prefetch_text = headers.get("prefetch-count")
        prefetch = settings.default_prefetch
        if prefetch_text is not None:
            stripped = prefetch_text.strip()
            if not stripped.isascii() or not stripped.isdigit() or int(stripped) > 65535:
                raise SubscribeError(
                    f"prefetch-count must be an integer 0-65535: got '{prefetch_text[:40]}'"
                )
            prefetch = int(stripped)
        arguments = queue_arguments(headers)
        queue_name = headers.get("x-queue-name")
        if queue_name is not None:
            queue_name = queue_name.strip()
            if not queue_name or len(queue_name.encode()) > 255 or queue_name.startswith("amq."):
                raise SubscribeError(
                    "x-queue-name must be 1-255 bytes and must not start with 'amq.'"
                )
        prepare = self._preparer(
            sink, subscription_id, text, dest, durable, headers, arguments, queue_name
        )
        override = str(UserQueue(dest.name)) if isinstance(dest, UserQueue) else None
        return ConsumerSubscription(
            self._pool,
            sink,
            subscription_id,
            text,
            ack,
            prefetch=prefetch,
            prepare=prepare,
            finalize=self._finalize,
            durable=durable,
            destination_override=override,
        )

    def _preparer(
        self,
        sink: DeliverySink,
        subscription_id: str,
        text: str,
        dest: Destination,
        durable: bool,
        headers: Mapping[str, str],
        arguments: dict[str, FieldValue],
        queue_name: str | None,
    ) -> Callable[[], Awaitable[str]]:
        """The coroutine function that declares/binds what a consumer subscription reads."""
        settings = self.settings

        if isinstance(dest, Queue):
            name = dest.name
            queue_durable = not _is_false(headers.get("durable"))
            auto_delete = _is_true(headers.get("auto-delete"))

            async def prepare_queue() -> str:
                return await self._declare_queue(
                    name,
                    durable=queue_durable,
                    auto_delete=auto_delete,
                    arguments=arguments,
                    lenient=not arguments,
                )

            return prepare_queue

        if isinstance(dest, AmqQueue | ReplyQueue):
            existing = dest.name

            async def prepare_existing() -> str:
                return await self._check_queue(existing)

            return prepare_existing

        if isinstance(dest, Topic):
            exchange, key = TOPIC_EXCHANGE, dest.key
        elif isinstance(dest, Exchange):
            exchange, key = dest.name, dest.key or ""
        else:
            assert isinstance(dest, UserQueue)
            assert sink.user is not None
            exchange, key = settings.user_exchange, user_routing_key(sink.user, dest.name)

        if durable:
            name = queue_name or durable_queue_name(sink.user, subscription_id, text)
            durable_args = dict(arguments)
            durable_args.setdefault("x-queue-type", settings.durable_queue_type)
            explicit = bool(arguments)

            async def prepare_durable() -> str:
                await self._check_exchange(exchange)
                queue = await self._declare_queue(
                    name, durable=True, arguments=durable_args, lenient=not explicit
                )
                await self._bind(queue, exchange, key)
                return queue

            return prepare_durable

        async def prepare_private() -> str:
            await self._check_exchange(exchange)
            queue = queue_name or f"stompgate.sub.{settings.node_id}.{secrets.token_hex(8)}"
            queue = await self._declare_queue(
                queue, durable=False, auto_delete=True, exclusive=True, arguments=arguments
            )
            try:
                await self._bind(queue, exchange, key)
            except BaseException:
                await self._delete_queue(queue)
                raise
            return queue

        return prepare_private

    # -- session end -----------------------------------------------------------------------

    async def detach(self, sink: DeliverySink) -> None:
        """The session is gone: cancel its subscriptions and temp queues. Unacked messages
        of its client-ack subscriptions go back to their queues (requeued); durable
        subscription queues are kept."""
        session = self._sessions.pop(sink.session_id, None)
        if session is None:
            return
        subs: list[RelaySubscription] = list(session.subs.values())
        for task in session.temps.values():
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task
            if task.done() and not task.cancelled() and task.exception() is None:
                subs.append(task.result())
        session.subs.clear()
        session.temps.clear()
        results = await asyncio.gather(*(sub.cancel() for sub in subs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("error while detaching: %s", result, extra={"session": sink.session_id})
