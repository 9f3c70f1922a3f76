"""Batches: the handler gets a list of up to `max_size` deliveries, collected for at most
`max_wait` seconds after the first one arrived.

One batch is handled at a time per consumer (the next one fills meanwhile), because a batch
is acked with ONE cumulative ack (`multiple=True`) of its highest delivery tag, which settles
every earlier delivery on that channel too. Nothing in a batch is acked on its own: filtered
and invalid messages (the latter copied to the DLQ first) are covered by the batch's ack.

When the handler raises, the whole batch is kept (unacked) and handed again after the backoff
delay, as often as `max_attempts` allows (None: until it succeeds or the worker stops, e.g. a
store outage: nothing is acked, the broker stops sending at the prefetch limit, and work
resumes when the store is back). Past `max_attempts`, every message of the batch is copied to
the DLQ and the batch is acked. A handler raising `DeadLetter(only=[...])` did the rest of its
batch: only the deliveries it names go to the DLQ, and the batch is acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from workers.framework import failures
from workers.framework import headers as h
from workers.framework.delivery import Delivery
from workers.framework.metrics import WorkerMetrics
from workers.framework.runtime import ConsumerRuntime, Poison, Skip, log
from workers.framework.spec import BatchSpec, ConsumerSpec


class BatchRuntime(ConsumerRuntime):
    def __init__(
        self,
        spec: ConsumerSpec,
        batch: BatchSpec,
        *,
        worker: str,
        prefetch: int,
        metrics: WorkerMetrics,
    ) -> None:
        super().__init__(spec, worker=worker, prefetch=prefetch, metrics=metrics)
        self.batch = batch
        self._buffer: list[AbstractIncomingMessage] = []
        self._first_at = 0.0
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self.closed:
            return  # a late delivery: unacked, it goes back to the queue
        self._received()
        buffer = self._buffer
        buffer.append(message)
        if len(buffer) == 1:
            self._first_at = asyncio.get_running_loop().time()
            self._nonempty.set()
        if len(buffer) >= self.batch.max_size:
            self._full.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"batch:{self.spec.queue}")

    def _on_draining(self) -> None:
        self._full.set()  # flush what is buffered now, no waiting for more

    def _on_close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
        count = len(self._buffer)
        self._buffer.clear()
        if count:
            self._settled(count)  # returned to the queue by the channel close

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._nonempty.wait()
            if len(self._buffer) < self.batch.max_size and not self.draining:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(self._first_at + self.batch.max_wait):
                        await self._full.wait()
            size = self.batch.max_size
            batch, self._buffer[:size] = self._buffer[:size], []
            if not self._buffer:
                self._nonempty.clear()
            else:
                self._first_at = loop.time()
            if len(self._buffer) < size and not self.draining:
                self._full.clear()
            try:
                if not await self._process(batch):
                    # Not settled: give the batch back now, or the next batch's cumulative
                    # ack would settle it unhandled.
                    await self._settle(batch, ack=False)
            except Exception:  # a bug
                log.exception("processing a batch from %s failed", self.spec.queue)
                await self._settle(batch, ack=False)
            finally:
                self._settled(len(batch))

    async def _process(self, messages: list[AbstractIncomingMessage]) -> bool:
        """Handle and ack one batch; False if it could not be settled (caller gives it back)."""
        spec, metrics, labels = self.spec, self.metrics, self.labels
        metrics.batch_size.labels(**labels).observe(len(messages))
        work: list[tuple[AbstractIncomingMessage, Delivery[Any]]] = []
        for message in messages:
            prepared = self.prepare(message)
            if isinstance(prepared, Skip):
                metrics.skipped.labels(**labels, reason=prepared.reason).inc()
            elif isinstance(prepared, Poison):
                failed = h.attempts_so_far(message.headers)
                if not await self._try(
                    self.dead_letter(
                        message, failures_count=failed, error=prepared.error, reason="invalid"
                    )
                ):
                    return False
            else:
                work.append((message, prepared))
        if work and spec.idempotency is not None:
            seen = await self._seen([d.key for _, d in work])
            if seen:
                metrics.skipped.labels(**labels, reason="duplicate").inc(
                    sum(1 for _, d in work if d.key in seen)
                )
                work = [(m, d) for m, d in work if d.key not in seen]
        if work and not await self._handle(work):
            return False
        if not await self._settle(messages, ack=True):
            return True  # the channel is gone: the broker redelivers, nothing to give back
        if work:
            metrics.handled.labels(**labels).inc(len(work))
            if spec.idempotency is not None:
                await self._try(spec.idempotency.mark([d.key for _, d in work]))
        return True

    async def _handle(self, work: list[tuple[AbstractIncomingMessage, Delivery[Any]]]) -> bool:
        """Call the handler until it succeeds or max_attempts; False if the batch was lost."""
        spec, metrics, labels = self.spec, self.metrics, self.labels
        deliveries = [d for _, d in work]
        failed = 0
        while True:
            started = time.perf_counter()
            try:
                await spec.handler(deliveries)
            except Exception as exc:
                metrics.handler_seconds.labels(**labels).observe(time.perf_counter() - started)
                metrics.failed.labels(**labels).inc()
                failed += 1
                rejected = isinstance(exc, failures.DeadLetter)
                if isinstance(exc, failures.DeadLetter) and exc.only is not None:
                    return await self._dead_letter_some(work, deliveries, exc.only)
                if rejected or spec.retry.exhausted(failed):
                    for (message, _), delivery in zip(work, deliveries, strict=True):
                        moved = await self._try(
                            self.dead_letter(
                                message,
                                failures_count=delivery.attempt,
                                error=exc,
                                reason="rejected" if rejected else "exhausted",
                            )
                        )
                        if not moved:
                            return False
                    return True
                delay = spec.retry.delay(failed)
                metrics.retried.labels(**labels).inc(len(work))
                log.warning(
                    "batch handler failed on %s (%d message(s), failure %d), retry in %ss: %s",
                    spec.queue,
                    len(work),
                    failed,
                    delay,
                    h.describe_error(exc),
                )
                await asyncio.sleep(delay)
                deliveries = [dataclasses.replace(d, attempt=d.attempt + 1) for d in deliveries]
                continue
            metrics.handler_seconds.labels(**labels).observe(time.perf_counter() - started)
            return True

    async def _dead_letter_some(
        self,
        work: list[tuple[AbstractIncomingMessage, Delivery[Any]]],
        deliveries: list[Delivery[Any]],
        only: tuple[tuple[Any, str], ...],
    ) -> bool:
        """Dead-letter the deliveries a handler named (the rest of the batch is done);
        False if one could not be moved (the batch is then given back whole)."""
        errors = {id(delivery): text for delivery, text in only}
        for (message, _), delivery in zip(work, deliveries, strict=True):
            text = errors.get(id(delivery))
            if text is None:
                continue
            moved = await self._try(
                self.dead_letter(
                    message, failures_count=delivery.attempt, error=text, reason="rejected"
                )
            )
            if not moved:
                return False
        return True

    async def _settle(self, messages: list[AbstractIncomingMessage], *, ack: bool) -> bool:
        """One cumulative ack (or nack with requeue) per channel the messages came on: one,
        unless the connection was recovered meanwhile. False if nothing could be settled."""
        last: dict[int, AbstractIncomingMessage] = {}
        for message in messages:
            try:
                channel = message.channel
            except ChannelInvalidStateError:
                continue  # that channel is closed: its deliveries are redelivered anyway
            current = last.get(id(channel))
            if current is None or (message.delivery_tag or 0) > (current.delivery_tag or 0):
                last[id(channel)] = message
        ok = True
        for message in last.values():
            step = message.ack(multiple=True) if ack else message.nack(multiple=True, requeue=True)
            ok = await self._try(step) and ok
        return ok and len(last) > 0

    async def _seen(self, keys: list[str]) -> set[str]:
        assert self.spec.idempotency is not None
        try:
            return await self.spec.idempotency.seen(keys)
        except Exception as exc:
            log.warning("idempotency lookup failed, handling all: %s", h.describe_error(exc))
            return set()

    @staticmethod
    async def _try(step: Any) -> bool:
        try:
            await step
        except Exception as exc:
            log.warning("batch step failed: %s", h.describe_error(exc))
            return False
        return True
