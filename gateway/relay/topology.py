"""Queues, exchanges and bindings on the broker: declare, check, bind, delete.

The broker answers a refused declare, passive check or bind by closing the channel it came
on. So each of these runs on a channel of its own on the consuming connection (aiormq),
opened for it and closed after: a refusal ends that one request and reaches nobody else.
``via`` names another consume connection to use: the one a client's channel is on, since
an exclusive queue can only be used from the connection that declared it. At most
``SCRATCH_CHANNELS`` such channels are open at once per connection, so a burst of requests
never takes a connection past its ``channel_max`` (a connection error).
A refusal is raised as one neutral error, :class:`~gateway.relay.errors.BrokerRefusedError`
(``text`` ready for the client, ``code`` the AMQP reply code), which the relay turns into a
SubscribeError or a PublishError; no connection at all is a
:class:`~gateway.relay.errors.BrokerUnavailableError`. Anything else (the connection
failing under the request) is raised as aiormq raises it.

The topology also remembers, for the current connection, the exchanges it found (each is
checked once) and the queues SENDs declared (:attr:`Topology.declared_queues`); the relay
resets both on every (re)connect and drops a name the broker says is gone
(:meth:`Topology.forget`).

A ``lenient`` queue (:class:`~gateway.relay.planner.QueueSpec`) that exists already with other
properties (``PRECONDITION_FAILED``) or is not exclusive as asked (``RESOURCE_LOCKED``) is used
as it is when this connection may use it (a passive check): so a named queue a native AMQP
client or RabbitMQ's STOMP plugin made is reused, not refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Set

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection

from .channels import SCRATCH_CHANNELS
from .errors import BrokerRefusedError, BrokerUnavailableError, describe_amqp_error
from .planner import Binding, QueueSpec

__all__ = ["Topology"]

log = logging.getLogger("stompgate.relay")

_CODES: dict[type[aiormq.exceptions.ChannelClosed], int] = {
    aiormq.exceptions.ChannelAccessRefused: 403,
    aiormq.exceptions.ChannelNotFoundEntity: 404,
    aiormq.exceptions.ChannelLockedResource: 405,
    aiormq.exceptions.ChannelPreconditionFailed: 406,
}


def _code(exc: aiormq.exceptions.ChannelClosed) -> int:
    """The AMQP reply code of a channel the broker closed (0 if unknown)."""
    code = _CODES.get(type(exc))
    if code is not None:
        return code
    return next((a for a in exc.args if isinstance(a, int)), 0)


def _refused(text: str, exc: aiormq.exceptions.ChannelClosed) -> BrokerRefusedError:
    return BrokerRefusedError(f"{text}: {describe_amqp_error(exc)}", _code(exc))


class Topology:
    """Broker I/O for the relay's plans. ``connection()`` returns the consuming connection
    or raises BrokerUnavailableError."""

    def __init__(self, connection: Callable[[], AbstractConnection]) -> None:
        self._connection = connection
        self._known_exchanges: set[str] = set()
        self._declared_queues: set[str] = set()
        self._budgets: weakref.WeakKeyDictionary[AbstractConnection, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def reset(self, known_exchanges: Iterable[str] = ()) -> None:
        """A new connection (or none): forget what was found; ``known_exchanges`` exist."""
        self._known_exchanges = set(known_exchanges)
        self._declared_queues.clear()

    @property
    def declared_queues(self) -> Set[str]:
        """Queues SENDs declared on this connection (``declare_queue(..., remember=True)``)."""
        return self._declared_queues

    def forget(self, exchange: str, key: str) -> None:
        """The broker said NOT_FOUND to a publish to ``exchange`` (``""``: to queue ``key``):
        check it again next time."""
        self._known_exchanges.discard(exchange)
        if exchange == "":
            self._declared_queues.discard(key)

    @contextlib.asynccontextmanager
    async def _scratch(self, via: AbstractConnection | None) -> AsyncIterator[AbstractChannel]:
        """A throw-away channel for operations the broker may refuse (closing the channel)."""
        connection = via if via is not None else self._connection()
        if connection.is_closed:
            raise BrokerUnavailableError("broker unavailable (connection closed)")
        budget = self._budgets.get(connection)
        if budget is None:
            budget = self._budgets[connection] = asyncio.Semaphore(SCRATCH_CHANNELS)
        async with budget:
            channel = await connection.channel(publisher_confirms=False)
            try:
                yield channel
            finally:
                if not channel.is_closed:
                    with contextlib.suppress(Exception):
                        await channel.close()

    async def declare_exchange(self, name: str, kind: str) -> None:
        """Declare a durable exchange (at start-up: errors are raised as aiormq raises them)
        and note it as known."""
        async with self._scratch(None) as channel:
            await channel.exchange_declare(name, exchange_type=kind, durable=True)
        self._known_exchanges.add(name)

    async def check_exchange(self, name: str, *, via: AbstractConnection | None = None) -> None:
        """The exchange exists (passive declare, once per connection)."""
        if name in self._known_exchanges:
            return
        await self._passive("exchange", name, via)
        self._known_exchanges.add(name)

    async def check_queue(self, name: str, *, via: AbstractConnection | None = None) -> str:
        """The queue exists and this connection may use it (passive declare)."""
        await self._passive("queue", name, via)
        return name

    async def _passive(self, kind: str, name: str, via: AbstractConnection | None) -> None:
        """Passive declare of the exchange or queue ``name`` (``kind``)."""
        try:
            async with self._scratch(via) as channel:
                if kind == "queue":
                    await channel.queue_declare(name, passive=True)
                else:
                    await channel.exchange_declare(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise BrokerRefusedError(describe_amqp_error(exc), 404) from exc
        except aiormq.exceptions.ChannelLockedResource as exc:  # an exclusive queue
            text = f"{kind} '{name}' is exclusive to another connection"
            raise BrokerRefusedError(text, 405) from exc
        except aiormq.exceptions.ChannelClosed as exc:
            raise _refused(f"broker refused {kind} '{name}'", exc) from exc

    async def declare_queue(
        self,
        spec: QueueSpec,
        *,
        remember: bool = False,
        via: AbstractConnection | None = None,
    ) -> str:
        """Declare (or, ``passive``, check) the queue of ``spec``; return its name.
        ``remember``: add it to :attr:`declared_queues`."""
        if spec.passive:
            return await self.check_queue(spec.name, via=via)
        name = f"{spec.name}.{secrets.token_hex(8)}" if spec.unique else spec.name
        try:
            async with self._scratch(via) as channel:
                ok = await channel.queue_declare(
                    name,
                    durable=spec.durable,
                    auto_delete=spec.auto_delete,
                    exclusive=spec.exclusive,
                    arguments=dict(spec.arguments) if spec.arguments else None,
                )
                name = ok.queue or name
        except (
            aiormq.exceptions.ChannelPreconditionFailed,
            aiormq.exceptions.ChannelLockedResource,
        ) as exc:
            if not spec.lenient:
                raise _refused(f"broker refused queue '{name}'", exc) from exc
            log.info("queue %r exists with other properties; using it as it is", name)
            name = await self.check_queue(name, via=via)
        except aiormq.exceptions.ChannelClosed as exc:
            raise _refused(f"broker refused queue '{name}'", exc) from exc
        if remember:
            self._declared_queues.add(name)
        return name

    async def bind(
        self, queue: str, binding: Binding, *, via: AbstractConnection | None = None
    ) -> None:
        try:
            async with self._scratch(via) as channel:
                await channel.queue_bind(queue, binding.exchange, routing_key=binding.key)
        except aiormq.exceptions.ChannelClosed as exc:
            raise _refused(
                f"broker refused to bind '{queue}' to '{binding.exchange}'", exc
            ) from exc

    async def queue_messages(self, name: str) -> int | None:
        """The number of messages ready in queue ``name`` (None: there is no such queue)."""
        try:
            async with self._scratch(None) as channel:
                ok = await channel.queue_declare(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None
        except aiormq.exceptions.ChannelClosed as exc:
            raise _refused(f"broker refused queue '{name}'", exc) from exc
        return ok.message_count

    async def delete_queue(
        self, name: str, *, via: AbstractConnection | None = None, strict: bool = False
    ) -> None:
        """Delete a queue; a failure is logged, never raised, unless ``strict``."""
        try:
            async with self._scratch(via) as channel:
                await channel.queue_delete(name)
        except Exception as exc:
            if strict:
                raise
            log.warning("could not delete queue %r: %s", name, exc)
