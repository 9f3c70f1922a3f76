"""One message at a time per handler call, up to `concurrency` calls at once.

Per message: skip (ack) if filtered or already handled; dead-letter at once if invalid;
else call the handler. Success: ack. Failure: republish to the retry queue for this attempt's
delay (or to the DLQ once `max_attempts` failed), then ack. If the channel died meanwhile,
nothing is acked and the broker redelivers the message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from aio_pika.abc import AbstractIncomingMessage

from workers.framework import failures
from workers.framework import headers as h
from workers.framework.metrics import WorkerMetrics
from workers.framework.runtime import ConsumerRuntime, Poison, Skip, log
from workers.framework.spec import ConsumerSpec


class SingleRuntime(ConsumerRuntime):
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        worker: str,
        prefetch: int,
        concurrency: int,
        metrics: WorkerMetrics,
    ) -> None:
        super().__init__(spec, worker=worker, prefetch=prefetch, metrics=metrics)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[object]] = set()

    def _on_close(self) -> None:
        # Past the drain's grace period (or on abort): stop the handlers still running;
        # their messages are unacked and go back to the queue with the channel.
        for task in list(self._tasks):
            task.cancel()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self.closed:
            return  # a late delivery: unacked, it goes back to the queue
        self._received()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with self._slots:
                if self.draining:
                    # Received but not started when the drain began: give it back.
                    await _settle(message.nack(requeue=True), "nack")
                    return
                await self._handle(message)
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._settled()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        spec, metrics, labels = self.spec, self.metrics, self.labels
        prepared = self.prepare(message)
        if isinstance(prepared, Skip):
            metrics.skipped.labels(**labels, reason=prepared.reason).inc()
            await _settle(message.ack(), "ack")
            return
        if isinstance(prepared, Poison):
            failed = h.attempts_so_far(message.headers)
            moved = await _settle(
                self.dead_letter(
                    message, failures_count=failed, error=prepared.error, reason="invalid"
                ),
                "dead-letter",
            )
            if moved:
                await _settle(message.ack(), "ack")
            return
        delivery = prepared
        started = time.perf_counter()
        try:
            if spec.idempotency is not None and await spec.idempotency.seen([delivery.key]):
                metrics.skipped.labels(**labels, reason="duplicate").inc()
                await _settle(message.ack(), "ack")
                return
            await spec.handler(delivery)
        except Exception as exc:
            metrics.handler_seconds.labels(**labels).observe(time.perf_counter() - started)
            metrics.failed.labels(**labels).inc()
            await self._failed(message, delivery.attempt, exc)
            return
        metrics.handler_seconds.labels(**labels).observe(time.perf_counter() - started)
        if await _settle(message.ack(), "ack"):
            metrics.handled.labels(**labels).inc()
            if spec.idempotency is not None:
                await _settle(spec.idempotency.mark([delivery.key]), "idempotency mark")

    async def _failed(self, message: AbstractIncomingMessage, failed: int, exc: Exception) -> None:
        spec = self.spec
        rejected = isinstance(exc, failures.DeadLetter)
        if rejected or spec.retry.exhausted(failed):
            reason = "rejected" if rejected else "exhausted"
            moved = await _settle(
                self.dead_letter(message, failures_count=failed, error=exc, reason=reason),
                "dead-letter",
            )
        else:
            assert self.channel is not None
            delay = spec.retry.delay(failed)
            moved = await _settle(
                failures.send_to_retry(
                    self.channel,
                    message,
                    retry_queue=spec.retry_queue(delay),
                    failures=failed,
                    error=exc,
                ),
                "retry",
            )
            if moved:
                self.metrics.retried.labels(**self.labels).inc()
                log.info(
                    "handler failed on %s (attempt %d), retry in %ss: %s",
                    spec.queue,
                    failed,
                    delay,
                    h.describe_error(exc),
                )
        if moved:
            await _settle(message.ack(), "ack")
        else:
            await _settle(message.nack(requeue=True), "nack")


async def _settle(step: Awaitable[object], what: str) -> bool:
    """Run one broker-side step; False (logged) if it failed, e.g. on a closed channel."""
    try:
        await step
    except Exception as exc:
        log.warning("%s failed: %s", what, h.describe_error(exc))
        return False
    return True
