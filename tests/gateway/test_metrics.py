"""The plain-int hot-path metrics read exactly as prometheus_client's own classes would."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics import Metrics

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
OBSERVED = (0.0001, 0.0005, 0.0007, 0.003, 0.004, 0.02, 0.3, 1.0, 4.9, 7.5, 0.0021)


def test_frames_and_latency_read_as_prometheus_client_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both sides read the same clock, so the _created series match too.
    monkeypatch.setattr(time, "time", lambda: 1700000000.25)
    ours = Metrics()
    reference = CollectorRegistry()
    frames_in = Counter(
        "stompgate_frames_in", "Frames received from clients", ["command"], registry=reference
    )
    frames_out = Counter(
        "stompgate_frames_out", "Frames sent to clients", ["command"], registry=reference
    )
    latency = Histogram(
        "stompgate_publish_confirm_seconds",
        "SEND to broker publisher-confirm latency",
        buckets=BUCKETS,
        registry=reference,
    )
    for command in ("CONNECT", "SEND", "SEND", "SUBSCRIBE", "SEND", "DISCONNECT"):
        ours.frames_in.inc(command)
        frames_in.labels(command).inc()
    for command in ("CONNECTED", "RECEIPT", "RECEIPT"):
        ours.frames_out.inc(command)
        frames_out.labels(command).inc()
    for amount in OBSERVED:
        ours.confirm_latency.observe(amount)
        latency.observe(amount)

    text, expected = ours.render(), generate_latest(reference)
    for name in (b"stompgate_frames_in", b"stompgate_frames_out", b"stompgate_publish_confirm"):
        block = [line for line in text.splitlines() if name in line]
        wanted = [line for line in expected.splitlines() if name in line]
        assert block == wanted
        assert len(block) > 4


def test_a_series_appears_with_its_first_frame() -> None:
    ours = Metrics()
    assert b'command="SEND"' not in ours.render()
    ours.frames_in.inc("SEND")
    assert b'stompgate_frames_in_total{command="SEND"} 1.0' in ours.render()


def test_deliveries_are_the_message_series_of_frames_out() -> None:
    ours = Metrics()
    assert b'command="MESSAGE"' not in ours.render()
    ours.frames_out.inc("RECEIPT")
    ours.delivered += 3  # as the fan-out counts them: one int, no label lookup
    text = ours.render()
    assert b'stompgate_frames_out_total{command="MESSAGE"} 3.0' in text
    assert b'stompgate_frames_out_created{command="MESSAGE"}' in text
    assert b'stompgate_frames_out_total{command="RECEIPT"} 1.0' in text
    assert b"stompgate_deliveries_total 3.0" in text
    ours.delivered += 2
    assert b'stompgate_frames_out_total{command="MESSAGE"} 5.0' in ours.render()
    assert ours.frames_out.counts == {"RECEIPT": 1}  # nothing added on the hot path
