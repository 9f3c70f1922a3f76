"""Prometheus metrics of one worker process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LABELS = ("worker", "queue")
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.handled = Counter(
            "stompgate_worker_messages_handled",
            "Messages whose handler succeeded (acked).",
            _LABELS,
            registry=r,
        )
        self.failed = Counter(
            "stompgate_worker_handler_failures",
            "Handler calls that raised (one per message, or per batch call for batches).",
            _LABELS,
            registry=r,
        )
        self.retried = Counter(
            "stompgate_worker_messages_retried",
            "Messages sent to a retry queue, or held for an in-process batch retry.",
            _LABELS,
            registry=r,
        )
        self.dead_lettered = Counter(
            "stompgate_worker_messages_dead_lettered",
            "Messages sent to the dead-letter queue, by reason (invalid, exhausted).",
            (*_LABELS, "reason"),
            registry=r,
        )
        self.skipped = Counter(
            "stompgate_worker_messages_skipped",
            "Messages acked without handling, by reason (filtered, duplicate).",
            (*_LABELS, "reason"),
            registry=r,
        )
        self.batch_size = Histogram(
            "stompgate_worker_batch_size",
            "Deliveries per batch handed to a batch handler.",
            _LABELS,
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.handler_seconds = Histogram(
            "stompgate_worker_handler_seconds",
            "Handler latency (one call: a message or a batch).",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "stompgate_worker_in_flight",
            "Deliveries received and not yet settled.",
            _LABELS,
            registry=r,
        )
