"""Interop: a stomp.py client on RabbitMQ's own STOMP plugin and Relay sinks, same vhost,
see the same messages, destinations and headers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stomp

from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink
from tests.support import rabbit

FRAME_ONLY = {"subscription", "message-id", "ack", "content-length", "destination"}


class Collector(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, str], bytes]] = []
        self.receipts: set[str] = set()
        self.errors: list[Any] = []
        self.lock = threading.Lock()

    def on_message(self, frame: Any) -> None:
        with self.lock:
            self.messages.append((dict(frame.headers), bytes(frame.body)))

    def on_receipt(self, frame: Any) -> None:
        with self.lock:
            self.receipts.add(frame.headers["receipt-id"])

    def on_error(self, frame: Any) -> None:
        with self.lock:
            self.errors.append(frame)


async def wait_until(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the STOMP plugin client")
        await asyncio.sleep(0.02)


@pytest.fixture
def plugin_client(fresh_vhost: str) -> Iterator[tuple[Any, Collector]]:
    conn = stomp.Connection(
        [("127.0.0.1", rabbit.RABBIT_STOMP_PORT)], vhost=fresh_vhost, auto_decode=False, timeout=5
    )
    collector = Collector()
    conn.set_listener("collector", collector)
    conn.connect(rabbit.USER, rabbit.PASSWORD, wait=True)
    try:
        yield conn, collector
    finally:
        conn.disconnect()


def comparable(headers: dict[str, str] | tuple[tuple[str, str], ...]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers
    return {k: v for k, v in items if k not in FRAME_ONLY}


async def test_relay_and_rabbitmq_plugin_interoperate(
    make_relay: RelayFactory, plugin_client: tuple[Any, Collector]
) -> None:
    conn, collector = plugin_client
    relay = await make_relay()
    conn.subscribe("/topic/room.1", id="t", ack="auto", headers={"receipt": "r-t"})
    conn.subscribe("/queue/q", id="q", ack="auto", headers={"receipt": "r-q"})
    await wait_until(lambda: {"r-t", "r-q"} <= collector.receipts)

    sink = RecordingSink("relay-side")
    await relay.subscribe(sink, "t", "/topic/room.1", "auto", {})
    await relay.subscribe(sink, "q2", "/queue/q2", "auto", {})

    # Relay → plugin client (topic, and a queue the plugin client consumes).
    headers = [
        ("event-type", "message"),
        ("content-type", "text/plain"),
        ("correlation-id", "c-7"),
        ("amqp-message-id", "id-7"),
    ]
    await relay.publish(sink, "/topic/room.1", headers, b"hello from the gateway")
    await relay.publish(sink, "/queue/q", headers, b"to the queue")
    await wait_until(lambda: len(collector.messages) >= 2)
    by_destination = {h["destination"]: (h, body) for h, body in collector.messages}
    topic_headers, topic_body = by_destination["/topic/room.1"]
    assert topic_body == b"hello from the gateway"
    assert topic_headers["event-type"] == "message"
    assert topic_headers["correlation-id"] == "c-7"
    queue_headers, queue_body = by_destination["/queue/q"]
    assert queue_body == b"to the queue"
    assert queue_headers["event-type"] == "message"

    # The relay's own subscriber saw exactly what the plugin's subscriber saw.
    (mine,) = await sink.wait_for(1)
    assert mine.destination == topic_headers["destination"]
    assert mine.body == topic_body
    assert comparable(mine.message.headers) == comparable(topic_headers)

    # Plugin client → Relay sinks (topic fan-out and a queue consumer).
    conn.send("/topic/room.1", b"hello from stomp.py", headers={"x-from": "plugin"})
    conn.send("/queue/q2", b"queued by stomp.py", headers={"x-from": "plugin"})
    await sink.wait_for(3)
    got = {d.destination: d for d in sink.deliveries[1:]}
    assert got["/topic/room.1"].body == b"hello from stomp.py"
    assert got["/topic/room.1"].header("x-from") == "plugin"
    assert got["/topic/room.1"].subscription == "t"
    assert got["/queue/q2"].body == b"queued by stomp.py"
    assert got["/queue/q2"].header("x-from") == "plugin"
    assert collector.errors == []
