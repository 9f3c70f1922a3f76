"""The persist worker among deployments (#18): id conflicts are dead-lettered, never dropped;
its queue, store and deployment come from flags and variables; it refuses to start beside
another lease namespace. Real RabbitMQ (a fresh vhost per test), real Redis, SQLite."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import aio_pika
import aiormq
import pytest
import redis.asyncio as aioredis

from chatstate.deployment import NamespaceClashError, exchange_registry
from chatstate.keys import ChatKeys, id_member
from gateway.chat.unstored import UnstoredSet
from store import SQLiteStore
from workers.framework import BatchSpec, Delivery, WorkerApp
from workers.persist import REJECTED_TTL_S, build_app
from workers.settings import WorkerSettings

from .amqp import channel, drain_queue, ready_count, wait_for_async
from .chat import chat_event, publish_events

FAST = BatchSpec(max_size=100, max_wait=0.02)
ROOT = Path(__file__).parents[2]


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    for prefix in (redis_prefix, "t18a:", "t18b:"):
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    await client.aclose()


async def opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(str(path), synchronous="normal")
    await store.open()
    return store


async def test_a_conflicting_id_is_dead_lettered_whole_counted_logged_and_settled(
    vhost_url: str,
    redis_url: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    tmp_path: Path,
    apps: list[WorkerApp],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = await opened(tmp_path / "m.db")
    settings = WorkerSettings(
        amqp_url=vhost_url, redis_url=redis_url, redis_prefix=redis_prefix, metrics_port=None
    )
    app = build_app(settings, store=store, batch=FAST, backoff=(0.05,))
    apps.append(app)
    unstored = ChatKeys(redis_prefix).unstored("r2")
    # r2's unstored set waits for id 1 (the message that will conflict) and for id 5
    await redis.zadd(unstored, {id_member(1): 0, id_member(5): 0})
    first = chat_event(1, "r1", client_id="a")
    clash = chat_event(1, "r2", sender="bob", client_id="b")  # another issuer's id 1
    try:
        await app.start()
        async with channel(vhost_url) as ch:
            await publish_events(ch, [("r1", first)])
            await wait_for_async(lambda: _count(store, 1), 10, "the first message stored")
            with caplog.at_level(logging.ERROR, logger="stompgate.workers.persist"):
                await publish_events(ch, [("r2", clash), ("r2", chat_event(2, "r2"))])
                await wait_for_async(
                    lambda: _ready(ch, "stompgate.persist.dlq", 1), 10, "the dead letter"
                )
                await wait_for_async(lambda: _count(store, 2), 10, "the rest of the batch")
            # a true duplicate (same id, same client id) stays idempotent: no dead letter
            await publish_events(ch, [("r1", first)])
            await asyncio.sleep(0.3)
            await app.drain()
            assert await ready_count(ch, "stompgate.persist") == 0
            [dead] = await drain_queue(ch, "stompgate.persist.dlq")
    finally:
        await store.close()
    assert dead.body == clash  # whole, byte for byte
    assert dead.headers["x-dead-letter-reason"] == "rejected"
    assert dead.headers["x-original-routing-key"] == "room.r2"
    error = str(dead.headers["x-error"])
    for part in ("id 1", "'r2'", "'r1'"):
        assert part in error
    registry = app.metrics.registry
    assert registry.get_sample_value("stompgate_persist_conflicts_total") == 1
    assert registry.get_sample_value("stompgate_persist_duplicates_total") == 1
    [line] = [r.getMessage() for r in caplog.records if "conflict" in r.getMessage()]
    for part in ("bob/'b'", "alice/'a'", "'r1'", "'r2'"):
        assert part in line
    # the first message is intact
    reopened = await opened(tmp_path / "m.db")
    try:
        [kept] = await reopened.history("r1")
        assert kept.event == first
        assert [m.id for m in await reopened.history("r2")] == [2]
    finally:
        await reopened.close()
    # the conflicting id will never be stored: recorded as rejected, so history (the gateway's
    # unstored-set check) stops waiting for it; id 5 is still waited for
    keys = ChatKeys(redis_prefix)
    assert await redis.zrange(keys.rejected("r2"), 0, -1) == [id_member(1)]
    assert 0 < await redis.ttl(keys.rejected("r2")) <= REJECTED_TTL_S
    assert await UnstoredSet(redis, keys).outstanding("r2", [1, 5]) == [5]
    assert await redis.zrange(unstored, 0, -1) == [id_member(5)]


async def test_two_persist_workers_with_two_queues_each_store_everything(
    vhost_url: str, redis_url: str, tmp_path: Path, apps: list[WorkerApp]
) -> None:
    stores = []
    for name in ("a", "b"):
        settings = WorkerSettings.from_env(
            {
                "STOMPGATE_AMQP_URL": vhost_url,
                "STOMPGATE_REDIS_URL": redis_url,
                "STOMPGATE_WORKER_METRICS_PORT": "off",
                "STOMPGATE_PERSIST_QUEUE": "ignored.by.the.flag",
            },
            flags={"PERSIST_QUEUE": f"archive-{name}", "STORE": f"sqlite:///{tmp_path}/{name}.db"},
        )
        assert settings.persist_queue == f"archive-{name}"
        store = await opened(Path(settings.store_url.removeprefix("sqlite:///")))
        stores.append(store)
        app = build_app(settings, store=store, batch=FAST)
        apps.append(app)
        await app.start()
    try:
        events = [(f"r{i % 3}", chat_event(i, f"r{i % 3}")) for i in range(1, 301)]
        async with channel(vhost_url) as ch:
            await publish_events(ch, events)
            for store in stores:
                await wait_for_async(partial(_count, store, 300), 20, "300 stored")
            for app in apps:
                await app.drain()
            for name in ("a", "b"):
                assert await ready_count(ch, f"archive-{name}") == 0
    finally:
        for store in stores:
            await store.close()


async def test_a_worker_of_another_namespace_on_the_same_exchange_is_refused(
    vhost_url: str, redis_url: str, redis: aioredis.Redis, tmp_path: Path, apps: list[WorkerApp]
) -> None:
    def settings(deployment: str, prefix: str) -> WorkerSettings:
        return WorkerSettings(
            amqp_url=vhost_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            deployment=deployment,
            metrics_port=None,
        )

    store = await opened(tmp_path / "a.db")
    try:
        first = build_app(settings("t18a", "t18a:"), store=store, batch=FAST)
        apps.append(first)
        await first.start()
        # the same deployment name, another Redis prefix: refused
        second = build_app(settings("t18a", "t18b:"), store=store, batch=FAST)
        apps.append(second)
        with pytest.raises(NamespaceClashError, match=r"topic exchange 'amq\.topic'"):
            await second.run(handle_signals=False)
        # another name, the same topic exchange (amq.topic): refused too
        third = build_app(settings("t18b", "t18b:"), store=store, batch=FAST)
        apps.append(third)
        with pytest.raises(NamespaceClashError, match="deployment 't18a'"):
            await third.run(handle_signals=False)
        assert first.healthy  # the first keeps running
        async with channel(vhost_url) as ch:
            await publish_events(ch, [("r", chat_event(7, "r"))])
            await wait_for_async(lambda: _count(store, 1), 10, "stored by the first")
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await ready_count(ch, "t18b.persist")  # the refused one declared nothing
        await first.drain()
    finally:
        await store.close()


async def test_python_m_workers_persist_exits_3_with_one_line_on_a_clash(
    vhost_url: str, redis_url: str, redis: aioredis.Redis, tmp_path: Path
) -> None:
    env = {**os.environ, "STOMPGATE_AMQP_URL": vhost_url, "STOMPGATE_REDIS_URL": redis_url}
    env["STOMPGATE_WORKER_METRICS_PORT"] = "off"
    async with channel(vhost_url) as ch:  # another namespace owns the vhost's amq.topic
        await ch.declare_queue(
            exchange_registry("amq.topic"), durable=True, arguments={"x-queue-type": "stream"}
        )
        await ch.default_exchange.publish(
            aio_pika.Message(
                b'{"token": "theirs", "deployment": "other", "redis_prefix": "other:"}'
            ),
            routing_key=exchange_registry("amq.topic"),
        )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        "persist",
        "--deployment",
        "t18a",
        "--redis-prefix",
        "t18a:",
        "--store",
        f"sqlite:///{tmp_path}/x.db",
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3
    lines = [line for line in out.decode().splitlines() if "refusing to start" in line]
    assert len(lines) == 1, out.decode()
    for part in ("deployment 'other'", "deployment 't18a'", "Fix:"):
        assert part in lines[0]


def test_persist_help_names_queue_store_and_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    from workers.__main__ import main

    with pytest.raises(SystemExit):
        main(["persist", "--help"])
    text = capsys.readouterr().out
    for flag, variable in (
        ("--queue", "STOMPGATE_PERSIST_QUEUE"),
        ("--store", "STOMPGATE_STORE"),
        ("--deployment", "STOMPGATE_DEPLOYMENT"),
        ("--topic-exchange", "STOMPGATE_TOPIC_EXCHANGE"),
    ):
        assert flag in text
        assert variable in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEPLOYMENT", "Blue"),
        ("DEPLOYMENT", "-blue"),
        ("DEPLOYMENT", "a" * 33),
        ("DEPLOYMENT", "blue.green"),
        ("TOPIC_EXCHANGE", "amq.direct"),
        ("TOPIC_EXCHANGE", "rooms exchange"),
    ],
)
def test_bad_deployment_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"STOMPGATE_{variable}"):
        WorkerSettings.from_env({f"STOMPGATE_{variable}": value})


def test_deployment_names_the_queues_and_the_redis_prefix() -> None:
    s = WorkerSettings.from_env({"STOMPGATE_DEPLOYMENT": "blue"})
    assert (s.persist_queue, s.redis_prefix, s.queue("translate")) == (
        "blue.persist",
        "blue:",
        "blue.translate",
    )
    d = WorkerSettings.from_env({})
    assert (d.persist_queue, d.redis_prefix, d.topic_exchange) == (
        "stompgate.persist",
        "stompgate:",
        "amq.topic",
    )


async def _count(store: SQLiteStore, n: int) -> bool:
    return await store.count() >= n


async def _ready(ch: object, queue: str, n: int) -> bool:
    return await ready_count(ch, queue) >= n  # type: ignore[arg-type]


async def test_a_team_consumer_binds_the_deployments_topic_exchange(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = WorkerApp("team")
    seen: list[bytes] = []

    @app.consumer("room.*", queue="team.rooms")
    async def handle(delivery: Delivery[bytes]) -> None:
        seen.append(delivery.body)
        await app.publish("echo.x", delivery.body)  # to the same exchange

    app.configure(
        WorkerSettings(amqp_url=vhost_url, topic_exchange="t18-team-rooms", metrics_port=None)
    )
    apps.append(app)
    await app.start()  # declares t18-team-rooms (durable topic) and binds team.rooms to it
    async with channel(vhost_url) as ch:
        echoes = await ch.declare_queue(exclusive=True)
        await echoes.bind("t18-team-rooms", "echo.*")
        await publish_events(ch, [("a", chat_event(1, "a"))], exchange_name="t18-team-rooms")
        await wait_for_async(partial(_ready, ch, echoes.name, 1), 10, "the echo")
        await app.drain()
    assert seen == [chat_event(1, "a")]
