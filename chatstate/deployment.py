"""A deployment's name, what it scopes, and the start-up check that keeps ids from colliding.

Theory of operation
-------------------
Snowflake ids are unique only within one *lease namespace*: the node-id leases under one
Redis server and key prefix (``{redis_prefix}snowflake:``). Two namespaces both lease node 0
and issue the same id in the same millisecond; if both publish into the same room topic (one
topic exchange on one vhost), one persist queue takes both and one post is lost. So ids that
reach one topic exchange, and everything one deployment name declares on a vhost, must come
from ONE lease namespace.

- The namespace has a token: a random string created once with ``SET NX`` at
  ``{redis_prefix}snowflake:namespace`` (next to the leases), read back by every process.
- The broker, which the two deployments share, keeps a registry: a durable *stream* queue
  per topic exchange (``stompgate.registry.exchange.<exchange>``, a name shared by every
  deployment) and one per deployment name (``<deployment>.registry``). The first record in a
  stream is the namespace that owns it. At start a process reads the first record (a stream
  read takes nothing away); when there is none it publishes its own (confirmed) and reads the
  first again. A first record with another token is a clash: `NamespaceClashError`, whose text
  names both sides and the fix; the entry point logs it and exits non-zero.
- Race-tolerant: two nodes of one deployment starting at once both publish the same token and
  both find it first; two different namespaces starting at once both publish, the stream
  orders them, both read the same first record, and the later one refuses. How long "none"
  is waited for only decides whether a redundant record is published, never who owns it.
- A namespace whose Redis lost its data (a restart without persistence) finds no token. If
  the first record of its deployment's registry names the same Redis URL (as configured,
  password left out) and prefix, that is this namespace: its token is adopted (a warning is
  logged) and the check passes. Otherwise a new token is made, and a registry that names
  another is a clash; the message names the fix (another name and exchange, or deleting the
  registry queues with ``rabbitmqctl delete_queue <name> -p <vhost>`` once it is certain no
  other deployment uses them). Two deployments of one name and prefix on one vhost whose
  Redis URLs read the same but are different servers (``redis://127.0.0.1`` on two hosts)
  are not told apart.

Names: with the default deployment name ``stompgate`` every queue and exchange keeps its
historical name (``stompgate.persist``, ``stompgate.user``...); another name replaces that
first word (``blue.persist``, ``blue.user``). The Redis prefix defaults to ``<deployment>:``
(so ``stompgate:`` by default); an explicit prefix wins, and the lease namespace follows the
prefix, not the name: the check above is what ties a name to one namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aio_pika
import aiormq
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

__all__ = [
    "DEFAULT_DEPLOYMENT",
    "DEFAULT_TOPIC_EXCHANGE",
    "Namespace",
    "NamespaceClashError",
    "check_deployment",
    "check_topic_exchange",
    "claim_namespace",
    "default_redis_prefix",
    "exchange_registry",
    "lease_key_prefix",
    "namespace_key",
    "registry_queue",
]

log = logging.getLogger("stompgate.deployment")

DEFAULT_DEPLOYMENT: Final = "stompgate"
DEFAULT_TOPIC_EXCHANGE: Final = "amq.topic"
REGISTRY_PREFIX: Final = "stompgate.registry.exchange."
"""The per-topic-exchange registries: one name for every deployment on the vhost."""
STREAM: Final = {"x-queue-type": "stream"}

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_EXCHANGE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def check_deployment(name: str, *, source: str = "deployment") -> str:
    """`name` if it is a deployment name (1-32 of a-z 0-9 -, not starting or ending with -)."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{source} must be 1-32 characters of a-z, 0-9 and '-' (not first or last),"
            f" got {name!r}"
        )
    return name


def check_topic_exchange(name: str, *, source: str = "topic exchange") -> str:
    """`name` if it can be the rooms' topic exchange: ``amq.topic`` or a name of letters,
    digits and ``._:-`` outside ``amq.`` (which only the broker may declare)."""
    if not _EXCHANGE.fullmatch(name):
        raise ValueError(f"{source} must be 1-200 characters of A-Z a-z 0-9 . _ : -, got {name!r}")
    if name.startswith("amq.") and name != DEFAULT_TOPIC_EXCHANGE:
        raise ValueError(f"{source}: of the broker's own exchanges only amq.topic, got {name!r}")
    return name


def default_redis_prefix(deployment: str) -> str:
    return f"{deployment}:"


def lease_key_prefix(redis_prefix: str) -> str:
    """The key prefix the node-id leases (`gateway.chat.node_lease.NodeLease`) are given."""
    return f"{redis_prefix}snowflake:"


def namespace_key(redis_prefix: str) -> str:
    """The Redis key of the lease namespace's token."""
    return f"{redis_prefix}snowflake:namespace"


def registry_queue(deployment: str) -> str:
    """The registry of a deployment name on its vhost."""
    return f"{deployment}.registry"


def exchange_registry(topic_exchange: str) -> str:
    """The registry of a topic exchange on its vhost."""
    return REGISTRY_PREFIX + topic_exchange


class NamespaceClashError(RuntimeError):
    """Another lease namespace already issues ids into this topic exchange or under this
    deployment name; the text names both sides and the fix."""


@dataclass(frozen=True, slots=True)
class Namespace:
    """Who this process is, as a registry record says it."""

    deployment: str
    topic_exchange: str
    redis_url: str
    redis_prefix: str
    who: str = ""

    def record(self, token: str) -> bytes:
        return json.dumps(
            {
                "token": token,
                "deployment": self.deployment,
                "topic_exchange": self.topic_exchange,
                "redis": _safe_url(self.redis_url),
                "redis_prefix": self.redis_prefix,
                "registered_by": self.who or f"{socket.gethostname()}-{os.getpid()}",
                "registered_at_ms": time.time_ns() // 1_000_000,
            },
            sort_keys=True,
        ).encode()


async def namespace_token(
    redis: aioredis.Redis, redis_prefix: str, *, adopt: str | None = None
) -> str:
    """The lease namespace's token, created on first use (SET NX, then read back): `adopt`
    if given (a token Redis lost), else a random one."""
    key = namespace_key(redis_prefix)
    value = await redis.get(key)
    if value is None:
        await redis.set(key, adopt or secrets.token_hex(16), nx=True)
        value = await redis.get(key)
    if value is None:  # deleted in between: try once more
        await redis.set(key, adopt or secrets.token_hex(16), nx=True)
        value = await redis.get(key)
    if value is None:
        raise RuntimeError(f"Redis key {key} cannot be kept: is Redis evicting keys?")
    return value.decode() if isinstance(value, bytes) else str(value)


async def claim_namespace(
    amqp_urls: Sequence[str],
    redis: aioredis.Redis,
    me: Namespace,
    *,
    empty_wait: float = 0.1,
    lost_wait: float = 2.0,
    read_back: float = 10.0,
    attempts: int = 20,
) -> str:
    """Check (and on first use record) that the topic exchange and the deployment name of
    `me` belong to its lease namespace; returns the token. Uses a connection of its own to
    the broker at the first of `amqp_urls` (the nodes of a cluster) that answers, closed
    before it returns. Raises `NamespaceClashError`.

    RabbitMQ can refuse a stream declared or read a moment after another client declared it
    (a channel or even a connection error while the stream starts): the check is then made
    again on a new connection, up to `attempts` times. A clash is never retried.

    Waits: `empty_wait` for a registry's first record before publishing one (too short only
    publishes a redundant record); `lost_wait` for the deployment's record when Redis has no
    token (too short would refuse a deployment whose Redis lost its data); `read_back` for
    the first record once one is surely there."""
    for attempt in range(1, attempts + 1):
        connection = await _connect_first(amqp_urls)
        try:
            return await _claim(connection, redis, me, empty_wait, lost_wait, read_back)
        except aiormq.exceptions.AMQPError as exc:
            if attempt == attempts:
                raise
            log.info("namespace check: the broker refused a registry step, again: %r", exc)
            await asyncio.sleep(min(0.05 * attempt, 0.5))
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
    raise AssertionError("unreachable")  # pragma: no cover


async def _connect_first(amqp_urls: Sequence[str]) -> AbstractConnection:
    """A connection to the first of `amqp_urls` that answers (the last one's error else)."""
    if not amqp_urls:
        raise ValueError("no AMQP URL to check the lease namespace on")
    for url in amqp_urls[:-1]:
        try:
            return await aio_pika.connect(url)
        except (OSError, aiormq.exceptions.AMQPError) as exc:
            log.info("namespace check: %s did not answer (%r), the next node", _safe_url(url), exc)
    return await aio_pika.connect(amqp_urls[-1])


async def _claim(
    connection: AbstractConnection,
    redis: aioredis.Redis,
    me: Namespace,
    empty_wait: float,
    lost_wait: float,
    read_back: float,
) -> str:
    streams = _Streams(connection)
    try:
        adopt = await _lost_token(streams, redis, me, lost_wait)
        token = await namespace_token(redis, me.redis_prefix, adopt=adopt)
        for queue, what in (
            (exchange_registry(me.topic_exchange), f"topic exchange {me.topic_exchange!r}"),
            (registry_queue(me.deployment), f"deployment name {me.deployment!r}"),
        ):
            owner = await _first_or_publish(
                streams, queue, me.record(token), empty_wait=empty_wait, read_back=read_back
            )
            if owner.get("token") != token:
                raise NamespaceClashError(_clash_text(me, what, queue, owner))
        return token
    finally:
        await streams.close()


async def _lost_token(
    streams: _Streams, redis: aioredis.Redis, me: Namespace, wait: float
) -> str | None:
    """When Redis has no token but the deployment's registry names this very namespace (the
    same Redis URL and prefix: Redis lost its data), that token, to adopt; else None."""
    if await redis.exists(namespace_key(me.redis_prefix)):
        return None
    name = registry_queue(me.deployment)
    first = await streams.first(name, wait=wait)
    owner = _parse(first) if first is not None else {}
    same = (
        owner.get("redis_prefix") == me.redis_prefix
        and owner.get("redis") == _safe_url(me.redis_url)
        and isinstance(owner.get("token"), str)
    )
    if not same:
        return None
    log.warning(
        "Redis has no lease-namespace token under %r; the registry %r names this deployment's"
        " Redis and prefix: adopting its token (Redis lost its data?)",
        me.redis_prefix,
        name,
    )
    return str(owner["token"])


def _clash_text(me: Namespace, what: str, queue: str, owner: Mapping[str, Any]) -> str:
    theirs = (
        f"deployment {owner.get('deployment')!r} (Redis {owner.get('redis')},"
        f" prefix {owner.get('redis_prefix')!r}, topic exchange {owner.get('topic_exchange')!r},"
        f" registered by {owner.get('registered_by')})"
    )
    mine = (
        f"deployment {me.deployment!r} (Redis {_safe_url(me.redis_url)},"
        f" prefix {me.redis_prefix!r}, topic exchange {me.topic_exchange!r})"
    )
    return (
        f"refusing to start: {what} already belongs to another Snowflake lease namespace:"
        f" {theirs}; this is {mine}. Ids from two namespaces can collide. Fix: give this"
        " deployment its own --deployment name and --topic-exchange, or the other's Redis and"
        f" --redis-prefix; if it is the same deployment whose Redis lost its data, delete the"
        f" registry queue {queue!r} on this vhost"
    )


async def _first_or_publish(
    streams: _Streams, name: str, record: bytes, *, empty_wait: float, read_back: float
) -> dict[str, Any]:
    first = await streams.first(name, wait=empty_wait)
    if first is None:
        await streams.publish(name, record)
        first = await streams.first(name, wait=read_back)
    if first is None:
        raise RuntimeError(f"registry {name!r}: the record just published cannot be read back")
    return _parse(first)


def _parse(record: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(record)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"token": None, "deployment": repr(record)}


class _Streams:
    """The registry streams on one connection: declare, publish (confirmed), read the first
    record."""

    def __init__(self, connection: AbstractConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None

    async def _open(self, name: str) -> AbstractChannel:
        channel = self._channel
        if channel is None or channel.is_closed:
            channel = self._channel = await self._connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=1)
        await channel.declare_queue(name, durable=True, arguments=dict(STREAM))
        return channel

    async def publish(self, name: str, record: bytes) -> None:
        channel = await self._open(name)
        await channel.default_exchange.publish(
            aio_pika.Message(record, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=name,
            mandatory=True,
        )

    async def first(self, name: str, *, wait: float) -> bytes | None:
        return await _first(await self._open(name), name, wait=wait)

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()


async def _first(channel: AbstractChannel, name: str, *, wait: float) -> bytes | None:
    """The first record of stream `name`, or None if none arrives within `wait` s."""
    queue = await channel.get_queue(name, ensure=False)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_message(message: AbstractIncomingMessage) -> None:
        if not got.done():
            got.set_result(message.body)
        with contextlib.suppress(Exception):
            await message.ack()

    tag = await queue.consume(on_message, arguments={"x-stream-offset": "first"})
    try:
        async with asyncio.timeout(wait):
            return await got
    except TimeoutError:
        return None
    finally:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)


def _safe_url(url: str) -> str:
    """`url` without its password."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
