"""Prometheus metrics of one gateway node, in a registry of its own (tests run several nodes).

What is counted per frame or per message (frames in and out by command, deliveries, the
publish-confirm latency) is kept in plain ints and floats, with no lock and no label lookup
per increment, and read at scrape time; ``/metrics`` shows them exactly as prometheus_client's
``Counter`` and ``Histogram`` would (a labelled series appears with its first increment, with
its ``_created`` time). Deliveries are one int, shown both as ``stompgate_deliveries_total``
and as the MESSAGE series of ``stompgate_frames_out_total``. The event loop is the only
writer and the only reader.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

from gateway.stomp import events

#: The STOMP command behind each session event, for the frames_in metric.
COMMANDS: dict[type, str] = {
    events.ConnectRequested: "CONNECT",
    events.SendRequested: "SEND",
    events.SubscribeRequested: "SUBSCRIBE",
    events.UnsubscribeRequested: "UNSUBSCRIBE",
    events.AckRequested: "ACK",
    events.NackRequested: "NACK",
    events.TransactionCommitted: "COMMIT",
    events.TransactionAborted: "ABORT",
    events.DisconnectRequested: "DISCONNECT",
    events.ProtocolViolation: "invalid",
}


def _use_created() -> bool:
    """Whether prometheus_client exports ``_created`` series (it can be turned off)."""
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class LabelledCount(Collector):
    """A counter with one label, as plain ints: ``inc(value)`` adds one to that series.

    ``folded`` adds counts kept elsewhere (read at scrape time) to their series: a hot path
    counts in one int of its own and pays no label lookup (deliveries: the MESSAGE series
    of the frames sent). Such a series appears, and its ``_created`` time is taken, at the
    first scrape that sees it non-zero."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        *,
        folded: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.counts: dict[str, int] = {}
        self._created: dict[str, float] = {}
        self._folded = folded

    def inc(self, value: str) -> None:
        counts = self.counts
        if value in counts:
            counts[value] += 1
        else:
            counts[value] = 1
            self._created[value] = time.time()

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=[self.label])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        counts = dict(self.counts)
        if self._folded is not None:
            for value, extra in self._folded().items():
                if extra:
                    counts[value] = counts.get(value, 0) + extra
                    self._created.setdefault(value, time.time())
        created = self._created if _use_created() else {}
        for value, count in counts.items():
            family.add_metric([value], float(count), created=created.get(value))
        yield family


class LatencyHistogram(Collector):
    """A histogram without labels, as plain ints per bucket and a float sum."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError("buckets not in sorted order")
        if bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        # "0.0005", ..., "+Inf", as prometheus_client writes them (an untyped helper of its own)
        self._le: tuple[str, ...] = tuple(
            floatToGoString(b)  # type: ignore[no-untyped-call]
            for b in bounds
        )
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self._created = time.time()

    def observe(self, amount: float) -> None:
        self.sum += amount
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1  # the first bound >= amount

    def describe(self) -> Iterator[Metric]:
        yield Metric(self.name, self.documentation, "histogram")

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "histogram")
        total = 0.0
        for le, count in zip(self._le, list(self.counts), strict=True):
            total += count
            metric.add_sample(f"{self.name}_bucket", {"le": le}, total)
        metric.add_sample(f"{self.name}_count", {}, total)
        if self.bounds[0] >= 0:
            metric.add_sample(f"{self.name}_sum", {}, self.sum)
        if _use_created():
            metric.add_sample(f"{self.name}_created", {}, self._created)
        yield metric


class _HotPath(Collector):
    """Per-delivery counts kept as plain ints (no lock per message), read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        delivered = CounterMetricFamily(
            "stompgate_deliveries", "MESSAGE frames delivered to sessions"
        )
        delivered.add_metric([], self.metrics.delivered)
        yield delivered


class RoomOrderSource(Protocol):
    @property
    def room_order(self) -> tuple[int, int, int]:
        """(held, skipped, dropped) since start."""
        ...


class RoomOrderCollector(Collector):
    """The relay's room order counts (`gateway.relay.ordering`), read at scrape time. The
    gateway registers one in its node's registry once the relay exists."""

    def __init__(self, source: RoomOrderSource) -> None:
        self.source = source

    def collect(self) -> Iterator[CounterMetricFamily]:
        held, skipped, dropped = self.source.room_order
        for name, doc, value in (
            ("held", "room messages that waited for an overtaken earlier one", held),
            ("skipped", "room sequence numbers given up on after --order-hold-ms", skipped),
            ("dropped", "copies of room messages dropped (already handed on)", dropped),
        ):
            family = CounterMetricFamily(f"stompgate_room_order_{name}", doc)
            family.add_metric([], value)
            yield family


@dataclass(slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    sessions: Gauge = field(init=False)
    connections_total: Counter = field(init=False)
    frames_in: LabelledCount = field(init=False)
    frames_out: LabelledCount = field(init=False)
    delivered: int = 0
    errors: Counter = field(init=False)
    slow_consumer_drops: Counter = field(init=False)
    confirm_latency: LatencyHistogram = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.sessions = Gauge(
            "stompgate_sessions", "Open STOMP sessions", ["transport"], registry=r
        )
        self.connections_total = Counter(
            "stompgate_connections", "Accepted connections", ["transport"], registry=r
        )
        self.frames_in = LabelledCount(
            "stompgate_frames_in", "Frames received from clients", "command"
        )
        r.register(self.frames_in)
        self.frames_out = LabelledCount(
            "stompgate_frames_out",
            "Frames sent to clients",
            "command",
            folded=self._frames_counted_elsewhere,
        )
        r.register(self.frames_out)
        r.register(_HotPath(self))
        self.errors = Counter(
            "stompgate_errors", "ERROR frames sent to clients, by reason", ["reason"], registry=r
        )
        self.slow_consumer_drops = Counter(
            "stompgate_slow_consumer_drops",
            "Sessions closed because their outbound buffer overflowed",
            registry=r,
        )
        self.confirm_latency = LatencyHistogram(
            "stompgate_publish_confirm_seconds",
            "SEND to broker publisher-confirm latency",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        r.register(self.confirm_latency)

    def _frames_counted_elsewhere(self) -> dict[str, int]:
        """Deliveries are counted in ``delivered`` (one int on the fan-out's hot path) and
        shown as the MESSAGE series of ``stompgate_frames_out_total`` too."""
        return {"MESSAGE": self.delivered}

    def render(self) -> bytes:
        return generate_latest(self.registry)
