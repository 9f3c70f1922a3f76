"""Prometheus metrics of one gateway node, in a registry of its own (tests run several nodes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass(slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    sessions: Gauge = field(init=False)
    connections_total: Counter = field(init=False)
    frames_in: Counter = field(init=False)
    frames_out: Counter = field(init=False)
    deliveries: Counter = field(init=False)
    errors: Counter = field(init=False)
    slow_consumer_drops: Counter = field(init=False)
    confirm_latency: Histogram = field(init=False)

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
        self.deliveries = Counter(
            "stompgate_deliveries", "MESSAGE frames delivered to sessions", registry=r
        )
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
