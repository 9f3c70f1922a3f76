"""Prometheus metrics of one gateway node, in a registry of its own (tests run several nodes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

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
        held, skipped, dropped = self.metrics.room_order()
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
    frames_in: Counter = field(init=False)
    frames_out: Counter = field(init=False)
    delivered: int = 0
    errors: Counter = field(init=False)
    slow_consumer_drops: Counter = field(init=False)
    confirm_latency: Histogram = field(init=False)
    room_order: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)
    """(held, skipped, dropped) of the relay's room order; the node points it at its relay."""

    def __post_init__(self) -> None:
        r = self.registry
        self.sessions = Gauge(
            "stompgate_sessions", "Open STOMP sessions", ["transport"], registry=r
        )
        self.connections_total = Counter(
            "stompgate_connections", "Accepted connections", ["transport"], registry=r
        )
        self.frames_in = Counter(
            "stompgate_frames_in", "Frames received from clients", ["command"], registry=r
        )
        self.frames_out = Counter(
            "stompgate_frames_out", "Frames sent to clients", ["command"], registry=r
        )
        r.register(_HotPath(self))
        self.errors = Counter(
            "stompgate_errors", "ERROR frames sent to clients, by reason", ["reason"], registry=r
        )
        self.slow_consumer_drops = Counter(
            "stompgate_slow_consumer_drops",
            "Sessions closed because their outbound buffer overflowed",
            registry=r,
        )
        self.confirm_latency = Histogram(
            "stompgate_publish_confirm_seconds",
            "SEND to broker publisher-confirm latency",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
