"""Losing the broker: the relay says so once, reconnects, restores what is still wanted."""

from __future__ import annotations

import asyncio

import pytest

from gateway.relay import PublishError
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import (
    RecordingSink,
    binding_keys,
    close_connections,
    connections,
    eventually,
    settle,
)


async def test_reconnect_restores_bindings_and_consumers(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    lost: list[str] = []
    ready_when_told: list[bool] = []

    def on_lost(reason: str) -> None:
        lost.append(reason)
        ready_when_told.append(relay.ready)

    relay = await make_relay(on_connection_lost=on_lost, node_id="loser")
    topic_sink = RecordingSink("t")
    queue_sink = RecordingSink("q")
    await relay.subscribe(topic_sink, "t", "/topic/room.5", "auto", {})
    queue_sub = await relay.subscribe(queue_sink, "q", "/queue/keep", "client", {})
    old_queue = relay.node_queue

    await eventually(lambda: connections(fresh_vhost), lambda c: len(c) == 2)
    assert close_connections(fresh_vhost) == 2
    await eventually(lambda: lost, lambda told: len(told) == 1, within=5, every=0.05)
    assert ready_when_told == [False]
    assert "CONNECTION_FORCED" in lost[0]
    assert await relay.wait_ready(10)

    new_queue = relay.node_queue
    assert new_queue is not None
    assert new_queue != old_queue
    assert binding_keys(fresh_vhost, new_queue) == {"room.5"}

    sender = RecordingSink("sender")
    await relay.publish(sender, "/topic/room.5", [], b"after")
    await relay.publish(sender, "/queue/keep", [], b"queued after")
    await topic_sink.wait_for(1)
    (delivery,) = await queue_sink.wait_for(1)
    assert delivery.body == b"queued after"
    await queue_sub.ack(delivery.ack_id or "")
    await settle()
    assert len(lost) == 1


async def test_in_flight_and_offline_operations_fail_clearly(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    lost: list[str] = []
    relay = await make_relay(
        on_connection_lost=lost.append, reconnect_min_delay=1.0, reconnect_max_delay=1.0
    )
    sink = RecordingSink("s")
    await relay.subscribe(sink, "t", "/topic/x", "auto", {})
    await eventually(lambda: connections(fresh_vhost), lambda c: len(c) == 2)

    async def flood() -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for i in range(2000):
            try:
                await relay.publish(sink, "/queue/flood", [], f"{i}".encode())
                results.append(None)
            except PublishError as exc:
                results.append(exc)
                break
        return results

    task = asyncio.create_task(flood())
    await asyncio.sleep(0.2)
    await asyncio.to_thread(close_connections, fresh_vhost)
    results = await asyncio.wait_for(task, 10)
    error = results[-1]
    assert isinstance(error, PublishError), "a publish during the loss must fail, not succeed"
    assert "broker" in str(error)

    await eventually(lambda: relay.ready, lambda ready: not ready, within=5, every=0.05)
    with pytest.raises(PublishError, match="broker unavailable"):
        await relay.publish(sink, "/topic/x", [], b"while down")
    # The gateway closes its sessions when told; detach works offline.
    await relay.detach(sink)
    assert await relay.wait_ready(10)
    assert len(lost) == 1
    node_queue = relay.node_queue
    assert node_queue is not None
    assert binding_keys(fresh_vhost, node_queue) == set()
    await relay.publish(RecordingSink("s2"), "/topic/x", [], b"works again")
