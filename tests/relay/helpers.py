"""Helpers for relay tests: a recording sink, polling, management-API lookups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.stomp import PreparedMessage
from tests.support import rabbit

T = TypeVar("T")


@dataclass
class Delivery:
    subscription: str
    message: PreparedMessage
    ack_id: str | None

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def destination(self) -> str:
        return self.message.destination

    def header(self, name: str) -> str | None:
        for key, value in self.message.headers:
            if key == name:
                return value
        return None


@dataclass(eq=False)
class RecordingSink:
    """A DeliverySink that records what it gets."""

    session_id: str
    user: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        self.deliveries.append(Delivery(subscription_id, message, ack_id))
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[Delivery]:
        """Wait until at least ``count`` deliveries arrived; fail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(self.deliveries) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.session_id}: wanted {count} deliveries, got {len(self.deliveries)}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return self.deliveries

    def bodies(self) -> list[bytes]:
        return [d.body for d in self.deliveries]


async def eventually(
    probe: Callable[[], T], check: Callable[[T], bool], within: float = 10.0, every: float = 0.2
) -> T:
    """Poll ``probe()`` (sync, run in a thread) until ``check`` passes; return the value."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(probe)
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s; last value: {value!r}")
        await asyncio.sleep(every)


def bindings(vhost: str, queue: str) -> list[dict[str, Any]]:
    """Bindings of ``queue`` except the default-exchange one."""
    path = f"/queues/{rabbit.quote(vhost)}/{rabbit.quote(queue)}/bindings"
    result: list[dict[str, Any]] = rabbit.mgmt("GET", path)
    return [b for b in result if b["source"] != ""]


def binding_keys(vhost: str, queue: str, exchange: str = "amq.topic") -> set[str]:
    return {b["routing_key"] for b in bindings(vhost, queue) if b["source"] == exchange}


def connections(vhost: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = rabbit.mgmt("GET", f"/vhosts/{rabbit.quote(vhost)}/connections")
    return result


def close_connections(vhost: str, reason: str = "test: broker loss") -> int:
    """Force-close every connection of ``vhost`` from the broker side."""
    count = 0
    for conn in connections(vhost):
        try:
            rabbit.mgmt("DELETE", f"/connections/{rabbit.quote(conn['name'])}")
            count += 1
        except Exception:  # noqa: S112 - already gone
            continue
    return count


async def queue_depth(vhost: str, queue: str) -> int:
    """Ready messages in ``queue`` right now (passive declare: exact, no stats lag)."""
    import aiormq

    connection = await aiormq.connect(rabbit.amqp_url(vhost))
    try:
        channel = await connection.channel()
        ok = await channel.queue_declare(queue, passive=True)
        return int(ok.message_count or 0)
    finally:
        await connection.close()


async def settle(seconds: float = 0.3) -> None:
    """Give the broker a moment to deliver anything it still would."""
    await asyncio.sleep(seconds)
