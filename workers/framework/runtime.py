"""The part every consumer runtime shares: channel, topology, consume/cancel, in-flight count,
and turning a raw AMQP message into a `Delivery` (or a skip, or poison).

Theory of operation. Each consumer owns one channel (publisher confirms on, QoS = its
prefetch), so its acks and cumulative acks never touch another consumer's deliveries. The
broker pushes at most `prefetch` unacked messages; aiormq runs the callback as a task per
message. `single.py` handles messages one by one under a concurrency semaphore; `batch.py`
buffers them and hands lists to the handler, acking each batch with one cumulative ack.
Draining = cancel the consumer (no new deliveries), settle what was received, close.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from workers.framework import failures
from workers.framework import headers as h
from workers.framework.delivery import Delivery, body_key
from workers.framework.metrics import WorkerMetrics
from workers.framework.spec import ConsumerSpec
from workers.framework.topology import declare_topology

log = logging.getLogger("stompgate.workers")


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


@dataclass(frozen=True, slots=True)
class Poison:
    error: BaseException


Prepared = Delivery[Any] | Skip | Poison


class ConsumerRuntime(ABC):
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        worker: str,
        prefetch: int,
        metrics: WorkerMetrics,
    ) -> None:
        self.spec = spec
        self.worker = worker
        self.prefetch = prefetch
        self.metrics = metrics
        self.labels = {"worker": worker, "queue": spec.queue}
        self._in_flight = metrics.in_flight.labels(**self.labels)
        self.channel: AbstractChannel | None = None
        self.queue: AbstractQueue | None = None
        self.draining = False
        self.closed = False
        self._consumer_tag: str | None = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        self.channel = channel
        self.queue = await declare_topology(connection, channel, self.spec)
        self._consumer_tag = await self.queue.consume(self._on_message)
        log.info(
            "consuming %s (patterns %s on %r, prefetch %d)",
            self.spec.queue,
            ",".join(self.spec.patterns),
            self.spec.exchange,
            self.prefetch,
        )

    @property
    def consuming(self) -> bool:
        return (
            self._consumer_tag is not None
            and not self.draining
            and self.channel is not None
            and not self.channel.is_closed
        )

    async def stop_consuming(self) -> None:
        """Step 1 of a drain: the broker sends this consumer nothing more."""
        self.draining = True
        tag, self._consumer_tag = self._consumer_tag, None
        if tag is not None and self.queue is not None:
            try:
                await self.queue.cancel(tag)
            except Exception as exc:  # channel already gone: nothing more will arrive anyway
                log.warning("cancelling consumer on %s failed: %s", self.spec.queue, exc)
        self._on_draining()

    async def wait_idle(self) -> None:
        """Step 2: every received delivery settled (handled and acked, or given back)."""
        await self._idle.wait()

    def closed_with_connection(self) -> None:
        """Step 3 (or an abort), after the connection closed: stop whatever still runs.

        The connection goes first, so no ack or publish can race a channel's close; the
        broker returns every unacked delivery to its queue.
        """
        self.draining = True
        self.closed = True
        self._on_close()
        self.channel = None

    @property
    def pending(self) -> int:
        return self._pending

    # -- for subclasses ---------------------------------------------------------------------

    @abstractmethod
    async def _on_message(self, message: AbstractIncomingMessage) -> None: ...

    def _on_draining(self) -> None:  # noqa: B027 - optional hook
        """Called once consuming stopped."""

    def _on_close(self) -> None:  # noqa: B027 - optional hook
        """Called when the channel is about to close."""

    def _received(self, count: int = 1) -> None:
        self._pending += count
        self._idle.clear()
        self._in_flight.inc(count)

    def _settled(self, count: int = 1) -> None:
        self._pending -= count
        self._in_flight.dec(count)
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    def prepare(self, message: AbstractIncomingMessage, *, extra_failures: int = 0) -> Prepared:
        """Filter, validate and wrap one message."""
        spec = self.spec
        if not spec.accepts(message.headers):
            return Skip("filtered")
        body = message.body
        try:
            payload: Any = spec.validator(body) if spec.validator is not None else body
        except Exception as exc:
            return Poison(exc)
        exchange, routing_key = failures.original_route(message)
        if spec.key is not None:
            key = spec.key(payload)
        elif message.message_id:
            key = message.message_id
        else:
            key = body_key(body)
        return Delivery(
            payload=payload,
            body=body,
            key=key,
            routing_key=routing_key,
            exchange=exchange,
            headers=h.application_headers(message.headers),
            attempt=h.attempts_so_far(message.headers) + extra_failures + 1,
            redelivered=bool(message.redelivered),
            message_id=message.message_id,
            content_type=message.content_type,
            delivery_tag=message.delivery_tag or 0,
        )

    async def dead_letter(
        self,
        message: AbstractIncomingMessage,
        *,
        failures_count: int,
        error: BaseException | str,
        reason: str,
    ) -> None:
        assert self.channel is not None
        await failures.send_to_dead_letter(
            self.channel,
            message,
            dead_letter_queue=self.spec.dead_letter_queue,
            failures=failures_count,
            error=error,
            reason=reason,
            worker=self.worker,
        )
        self.metrics.dead_lettered.labels(**self.labels, reason=reason).inc()
        log.warning(
            "dead-lettered a message from %s (%s after %d failure(s)): %s",
            self.spec.queue,
            reason,
            failures_count,
            error if isinstance(error, str) else h.describe_error(error),
        )
