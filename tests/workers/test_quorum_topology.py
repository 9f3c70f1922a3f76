"""Every queue a consumer declares is a quorum queue (retry queues too), so a cluster that
loses a node keeps them; an older deployment's classic retry queue is used as it is."""

from __future__ import annotations

import pytest

from tests.support import rabbit
from workers.framework import Delivery, WorkerApp
from workers.settings import WorkerSettings

from .amqp import channel, publish, wait_for

Q = "team.quorum"


async def test_retry_queues_are_quorum_and_a_classic_one_from_before_is_used(
    fresh_vhost: str, apps: list[WorkerApp]
) -> None:
    url = rabbit.amqp_url(fresh_vhost)
    async with channel(url) as ch:  # what an older version declared
        await ch.declare_queue(
            f"{Q}.retry.200ms",
            durable=True,
            arguments={
                "x-message-ttl": 200,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": Q,
            },
        )
    app = WorkerApp("quorum", amqp_url=url)
    app.configure(WorkerSettings.from_env({"STOMPGATE_QUORUM_INITIAL_GROUP_SIZE": "1"}))
    apps.append(app)
    attempts: list[int] = []

    @app.consumer("room.*", queue=Q, max_attempts=3, backoff=(0.2, 0.3))
    async def handle(msg: Delivery[bytes]) -> None:
        attempts.append(msg.attempt)
        if msg.attempt < 3:
            raise RuntimeError("not yet")

    await app.start()
    async with channel(url) as ch:
        await publish(ch, "room.r", b"twice retried")
    await wait_for(lambda: attempts == [1, 2, 3], within=15, what="3 attempts")

    queues = {q["name"]: q for q in rabbit.list_queues(fresh_vhost)}
    assert queues[f"{Q}.retry.200ms"]["type"] == "classic"  # kept, and it still works
    for name in (Q, f"{Q}.retry.300ms", f"{Q}.dlq"):
        assert queues[name]["type"] == "quorum", name
        assert queues[name]["arguments"]["x-quorum-initial-group-size"] == 1
    retry = queues[f"{Q}.retry.300ms"]["arguments"]
    assert retry["x-dead-letter-strategy"] == "at-least-once"
    assert retry["x-overflow"] == "reject-publish"


def test_group_size_setting_is_checked() -> None:
    assert WorkerSettings.from_env({}).quorum_group_size is None
    for bad in ("0", "-1", "three"):
        with pytest.raises(ValueError, match="STOMPGATE_QUORUM_INITIAL_GROUP_SIZE"):
            WorkerSettings.from_env({"STOMPGATE_QUORUM_INITIAL_GROUP_SIZE": bad})
