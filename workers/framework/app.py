"""`WorkerApp`: declare consumers with a decorator, then `run()` (or `start()` / `drain()`).

    app = WorkerApp("translate")

    @app.consumer("room.*", queue="translate", schema="chat.message.v1", max_attempts=5)
    async def translate(msg: Delivery[Any]) -> None: ...

Lifecycle: `start()` serves /healthz and /metrics (when a port is set), runs the startup hooks,
connects (a robust connection: it reconnects and restores its consumers; given several URLs,
the nodes of a cluster, it moves to the next when its node is lost), opens the channel
`publish()` uses, declares each consumer's queues and starts consuming. `drain()` stops
consuming, lets in-flight work finish and ack (up to `drain_timeout` s; whatever is still
unacked then goes back to the queue), closes the connection, runs the shutdown hooks. `run()`
does start, waits for SIGTERM/SIGINT, drains. `abort()` drops everything unacked, like a
crash would. Handlers publish what their work produced with `publish()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aio_pika
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from prometheus_client import CollectorRegistry

from chatstate.deployment import DEFAULT_TOPIC_EXCHANGE, Namespace, claim_namespace
from workers.framework.batch import BatchRuntime
from workers.framework.connection import connect_cluster
from workers.framework.health import HealthServer
from workers.framework.idempotency import IdempotencyGuard
from workers.framework.metrics import WorkerMetrics
from workers.framework.runtime import ConsumerRuntime
from workers.framework.single import SingleRuntime
from workers.framework.spec import BatchSpec, ConsumerSpec, Handler, RetryPolicy, Validator
from workers.framework.validation import schema_validator
from workers.settings import WorkerSettings, split_amqp_urls

log = logging.getLogger("stompgate.workers")

H = TypeVar("H", bound=Callable[..., Awaitable[None]])
Hook = Callable[[], Awaitable[None]]

DEFAULT_PREFETCH = 100
DEFAULT_CONCURRENCY = 10
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_RECONNECT_INTERVAL = 1.0


class WorkerApp:
    """A worker process: named consumers on one AMQP connection, health and metrics."""

    def __init__(
        self,
        name: str,
        *,
        amqp_url: str | None = None,
        prefetch: int | None = None,
        concurrency: int | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        drain_timeout: float | None = None,
        quorum_group_size: int | None = None,
        reconnect_interval: float | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.amqp_url = amqp_url
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.drain_timeout = drain_timeout
        self.quorum_group_size = quorum_group_size
        self.reconnect_interval = reconnect_interval
        self.metrics = WorkerMetrics(registry)
        self.consumers: list[ConsumerSpec] = []
        self.runtimes: list[ConsumerRuntime] = []
        self.connection: AbstractRobustConnection | None = None
        self._publishing: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self.topic_exchange = DEFAULT_TOPIC_EXCHANGE
        self._namespace: tuple[Namespace, aioredis.Redis] | None = None
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._health: HealthServer | None = None
        self._state = "new"
        self._stop_requested = asyncio.Event()

    # -- declaring ----------------------------------------------------------------------------

    def consumer(
        self,
        patterns: str | Sequence[str],
        *,
        queue: str | None = None,
        exchange: str | None = None,
        schema: str | None = None,
        validator: Validator | None = None,
        max_attempts: int | None = 5,
        backoff: Sequence[float] = (1.0, 5.0, 30.0),
        batch: BatchSpec | None = None,
        prefetch: int | None = None,
        concurrency: int | None = None,
        only_headers: Mapping[str, str] | None = None,
        idempotency: IdempotencyGuard | None = None,
        key: Callable[[Any], str] | None = None,
    ) -> Callable[[H], H]:
        """Register `handler` for messages routed to `queue` by `patterns` on `exchange`
        (None: the deployment's topic exchange, `STOMPGATE_TOPIC_EXCHANGE`, so `amq.topic`
        unless configured; "": none, the queue gets what is sent to it by name).

        The handler takes a `Delivery` (or, with `batch=BatchSpec(...)`, a list of them) and
        returns None; raising means "failed". See the package README for the semantics.
        """
        if schema is not None and validator is not None:
            raise ValueError("give schema= or validator=, not both")
        pattern_list = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        if exchange != "" and not pattern_list:
            raise ValueError("a consumer bound to an exchange needs at least one pattern")
        retry = RetryPolicy(max_attempts=max_attempts, backoff=tuple(float(d) for d in backoff))

        def register(handler: H) -> H:
            name = queue or f"{self.name}.{handler.__name__}"
            if any(c.queue == name for c in self.consumers):
                raise ValueError(f"queue {name!r} already has a consumer in {self.name!r}")
            self.consumers.append(
                ConsumerSpec(
                    handler=handler,
                    queue=name,
                    patterns=pattern_list,
                    exchange=exchange,
                    validator=validator,
                    retry=retry,
                    batch=batch,
                    prefetch=prefetch,
                    concurrency=concurrency,
                    schema=schema,
                    only_headers=dict(only_headers or {}),
                    idempotency=idempotency,
                    key=key,
                )
            )
            return handler

        return register

    def add_consumer(self, handler: Handler, patterns: str | Sequence[str], **options: Any) -> None:
        """Non-decorator form of `consumer`."""
        self.consumer(patterns, **options)(handler)

    def on_startup(self, hook: Hook) -> Hook:
        """Run `hook` before consuming starts (e.g. open a store)."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run `hook` after consuming stopped and the connection closed (reverse order)."""
        self._shutdown.append(hook)
        return hook

    def check_namespace(self, namespace: Namespace, redis: aioredis.Redis) -> None:
        """At start, before consuming: refuse to run (`NamespaceClashError`) unless the topic
        exchange and deployment name of `namespace` belong to its Snowflake lease namespace
        (`chatstate.deployment`). For workers that stamp or store message ids."""
        self._namespace = (namespace, redis)

    def configure(self, settings: WorkerSettings) -> None:
        """Fill in whatever the code left unset from settings (values in code win)."""
        self.amqp_url = self.amqp_url or settings.broker_url
        self.topic_exchange = settings.topic_exchange
        if self.prefetch is None:
            self.prefetch = settings.prefetch
        if self.concurrency is None:
            self.concurrency = settings.concurrency
        if self.metrics_port is None:
            self.metrics_port = settings.metrics_port
        if self.metrics_host is None:
            self.metrics_host = settings.metrics_host
        if self.drain_timeout is None:
            self.drain_timeout = settings.drain_timeout
        if self.quorum_group_size is None:
            self.quorum_group_size = settings.quorum_group_size
        if self.reconnect_interval is None:
            self.reconnect_interval = settings.reconnect_interval

    # -- running ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """new, starting, running, draining, stopped."""
        return self._state

    @property
    def healthy(self) -> bool:
        conn = self.connection
        return (
            self._state == "running"
            and conn is not None
            and not conn.is_closed
            and all(rt.consuming for rt in self.runtimes)
        )

    @property
    def bound_metrics_port(self) -> int | None:
        return self._health.port if self._health is not None else None

    async def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"worker {self.name!r} already {self._state}")
        if not self.consumers:
            raise RuntimeError(f"worker {self.name!r} has no consumers")
        if self.amqp_url is None:
            raise RuntimeError(f"worker {self.name!r} has no amqp_url (set STOMPGATE_AMQP_URL)")
        self._state = "starting"
        runtimes = [self._runtime(spec) for spec in self.consumers]  # fails fast on bad specs
        if self.metrics_port is not None:
            self._health = HealthServer(
                self._probe,
                self.metrics.registry,
                host=self.metrics_host or "127.0.0.1",
                port=self.metrics_port,
            )
            await self._health.start()
        for hook in self._startup:
            await hook()
        self.connection = await connect_cluster(
            split_amqp_urls(self.amqp_url),
            reconnect_interval=self.reconnect_interval or DEFAULT_RECONNECT_INTERVAL,
        )
        self._publishing = await self.connection.channel(publisher_confirms=True)
        await self._prepare_broker(self.connection)
        for runtime in runtimes:
            await runtime.start(self.connection)
            self.runtimes.append(runtime)
        self._state = "running"
        log.info("worker %s running %d consumer(s)", self.name, len(self.runtimes))

    async def drain(self, grace: float | None = None) -> None:
        """Graceful stop: no new deliveries, finish and ack in-flight work, close."""
        if self._state in ("draining", "stopped"):
            return
        self._state = "draining"
        limit = grace if grace is not None else (self.drain_timeout or DEFAULT_DRAIN_TIMEOUT)
        for runtime in self.runtimes:
            await runtime.stop_consuming()
        try:
            async with asyncio.timeout(limit):
                await asyncio.gather(*(rt.wait_idle() for rt in self.runtimes))
        except TimeoutError:
            left = sum(rt.pending for rt in self.runtimes)
            log.warning(
                "drain timed out after %ss; %d deliveries go back to the queue", limit, left
            )
        await self._close()
        log.info("worker %s drained", self.name)

    async def abort(self) -> None:
        """Stop now without settling anything: unacked deliveries return to their queues."""
        if self._state == "stopped":
            return
        self._state = "draining"
        await self._close()

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        exchange: str | None = None,
        headers: Mapping[str, Any] | None = None,
        content_type: str | None = "application/json",
        persistent: bool = True,
    ) -> None:
        """Publish from a handler (e.g. an event the work produced) on the app's own channel;
        returns once the broker confirmed it, raises if it refused or the connection is down
        (so a handler that raises is retried, and publishes again: make what you publish
        safe to receive twice). Not mandatory: a message no queue takes is dropped."""
        channel = self._publishing
        if channel is None:
            raise RuntimeError(f"worker {self.name!r} is not running: nothing to publish on")
        if exchange is None:
            exchange = self.topic_exchange
        if not exchange:
            target = channel.default_exchange
        elif (target_or_none := self._exchanges.get(exchange)) is not None:
            target = target_or_none
        else:
            target = self._exchanges[exchange] = await channel.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(
            body,
            headers=dict(headers or {}),
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            if persistent
            else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        await target.publish(message, routing_key=routing_key, mandatory=False)

    def request_stop(self) -> None:
        """Ask `run()` to drain and return (what SIGTERM and SIGINT do)."""
        self._stop_requested.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop_requested.wait()
            log.info("worker %s stopping: draining", self.name)
            await self.drain()
        except asyncio.CancelledError:
            await self.abort()
            raise
        except BaseException:
            await self.abort()
            raise
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    # -- internals ----------------------------------------------------------------------------

    def _runtime(self, spec: ConsumerSpec) -> ConsumerRuntime:
        if spec.schema is not None:
            spec = dataclasses.replace(spec, validator=schema_validator(spec.schema))
        if spec.exchange is None:
            spec = dataclasses.replace(spec, exchange=self.topic_exchange)
        if spec.quorum_group_size is None and self.quorum_group_size is not None:
            spec = dataclasses.replace(spec, quorum_group_size=self.quorum_group_size)
        prefetch = spec.prefetch or self.prefetch or DEFAULT_PREFETCH
        if spec.batch is not None:
            if spec.prefetch is None:
                # Room for the next batch to fill while one is handled.
                prefetch = max(prefetch, 2 * spec.batch.max_size)
            return BatchRuntime(
                spec, spec.batch, worker=self.name, prefetch=prefetch, metrics=self.metrics
            )
        concurrency = spec.concurrency or self.concurrency or DEFAULT_CONCURRENCY
        return SingleRuntime(
            spec,
            worker=self.name,
            prefetch=prefetch,
            concurrency=concurrency,
            metrics=self.metrics,
        )

    async def _prepare_broker(self, connection: AbstractRobustConnection) -> None:
        """The namespace check (if asked for) and the deployment's own topic exchange."""
        if self._namespace is not None:
            namespace, redis = self._namespace
            assert self.amqp_url is not None  # checked by start()
            await claim_namespace(split_amqp_urls(self.amqp_url), redis, namespace)
        channel = await connection.channel()
        try:
            if not self.topic_exchange.startswith("amq."):
                await channel.declare_exchange(
                    self.topic_exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _close(self) -> None:
        connection, self.connection = self.connection, None
        self._publishing = None
        self._exchanges.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        for runtime in self.runtimes:
            runtime.closed_with_connection()
        for hook in reversed(self._shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook of worker %s failed", self.name)
        health, self._health = self._health, None
        if health is not None:
            await health.stop()
        self._state = "stopped"

    def _probe(self) -> tuple[bool, dict[str, Any]]:
        return self.healthy, {
            "worker": self.name,
            "state": self._state,
            "consumers": [
                {"queue": rt.spec.queue, "consuming": rt.consuming, "pending": rt.pending}
                for rt in self.runtimes
            ],
        }
