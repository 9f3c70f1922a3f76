"""WorkerApp against the real RabbitMQ: acks, retries, DLQ, validation, concurrency, drain."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from workers.framework import (
    BatchSpec,
    DeadLetter,
    Delivery,
    RedisIdempotency,
    SchemaUnavailableError,
    WorkerApp,
)

from .amqp import channel, drain_queue, publish, ready_count, wait_for

Q = "team.jobs"


def new_app(url: str, apps: list[WorkerApp], **kwargs: Any) -> WorkerApp:
    app = WorkerApp("test", amqp_url=url, **kwargs)
    apps.append(app)
    return app


async def test_success_acks_each_message(vhost_url: str, apps: list[WorkerApp]) -> None:
    app = new_app(vhost_url, apps)
    seen: list[Delivery[bytes]] = []

    @app.consumer("room.*", queue=Q)
    async def handle(msg: Delivery[bytes]) -> None:
        seen.append(msg)

    await app.start()
    async with channel(vhost_url) as ch:
        for i in range(5):
            await publish(ch, f"room.r{i}", b"m%d" % i, headers={"k": "v"}, message_id=f"id{i}")
        await wait_for(lambda: len(seen) == 5, what="5 handled")
        await app.drain()
        assert await ready_count(ch, Q) == 0  # acked: nothing went back on close
    assert sorted(m.body for m in seen) == [b"m%d" % i for i in range(5)]
    first = next(m for m in seen if m.body == b"m0")
    assert first.payload == b"m0"
    assert first.routing_key == "room.r0"
    assert first.exchange == "amq.topic"
    assert first.headers == {"k": "v"}
    assert first.key == "id0"
    assert first.attempt == 1
    value = app.metrics.registry.get_sample_value(
        "stompgate_worker_messages_handled_total", {"worker": "test", "queue": Q}
    )
    assert value == 5


async def test_failure_retries_with_backoff_then_dead_letters_whole(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = new_app(vhost_url, apps)
    calls: list[tuple[float, int, str]] = []

    @app.consumer("room.*", queue=Q, max_attempts=3, backoff=(0.2, 0.4))
    async def handle(msg: Delivery[bytes]) -> None:
        calls.append((time.monotonic(), msg.attempt, msg.routing_key))
        raise RuntimeError(f"boom {msg.attempt}")

    await app.start()
    async with channel(vhost_url) as ch:
        await publish(
            ch,
            "room.r1",
            b"\x00payload\xff",
            headers={"event-type": "message", "n": 7},
            message_id="mid-1",
            content_type="application/json",
            correlation_id="corr",
        )
        await wait_for(lambda: len(calls) == 3, what="3 attempts")
        await wait_for_dlq(ch, f"{Q}.dlq")
        [dead] = await drain_queue(ch, f"{Q}.dlq")
        await app.drain()
        assert await ready_count(ch, Q) == 0
        assert await ready_count(ch, f"{Q}.retry.200ms") == 0
        assert await ready_count(ch, f"{Q}.retry.400ms") == 0
    assert [(a, rk) for _, a, rk in calls] == [(1, "room.r1"), (2, "room.r1"), (3, "room.r1")]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.18
    assert gaps[1] >= 0.38
    assert dead.body == b"\x00payload\xff"
    assert dead.message_id == "mid-1"
    assert dead.content_type == "application/json"
    assert dead.correlation_id == "corr"
    headers = dict(dead.headers)
    assert headers["event-type"] == "message"
    assert headers["n"] == 7
    assert headers["x-attempts"] == 3
    assert headers["x-error"] == "RuntimeError: boom 3"
    assert headers["x-original-routing-key"] == "room.r1"
    assert headers["x-original-exchange"] == "amq.topic"
    assert headers["x-dead-letter-reason"] == "exhausted"
    assert "x-death" not in headers
    labels = {"worker": "test", "queue": Q}
    registry = app.metrics.registry
    assert registry.get_sample_value("stompgate_worker_messages_retried_total", labels) == 2
    assert (
        registry.get_sample_value(
            "stompgate_worker_messages_dead_lettered_total", {**labels, "reason": "exhausted"}
        )
        == 1
    )


async def wait_for_ready(ch: Any, queue: str, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while await ready_count(ch, queue) < count:
        assert time.monotonic() < deadline, f"fewer than {count} ready in {queue}"
        await asyncio.sleep(0.05)


wait_for_dlq = wait_for_ready


async def test_retry_then_success(vhost_url: str, apps: list[WorkerApp]) -> None:
    app = new_app(vhost_url, apps)
    attempts: list[int] = []
    done = asyncio.Event()

    @app.consumer("room.*", queue=Q, max_attempts=5, backoff=(0.05,))
    async def handle(msg: Delivery[bytes]) -> None:
        attempts.append(msg.attempt)
        if msg.attempt < 3:
            raise ValueError("not yet")
        done.set()

    await app.start()
    async with channel(vhost_url) as ch:
        await publish(ch, "room.x", b"once")
        await asyncio.wait_for(done.wait(), 10)
        await app.drain()
        assert await ready_count(ch, f"{Q}.dlq") == 0
        assert await ready_count(ch, Q) == 0
    assert attempts == [1, 2, 3]


async def test_invalid_payload_goes_to_dlq_at_once(vhost_url: str, apps: list[WorkerApp]) -> None:
    app = new_app(vhost_url, apps)
    handled: list[int] = []

    def validate(body: bytes) -> int:
        return int(body)  # ValueError for anything not a number

    @app.consumer("room.*", queue=Q, validator=validate, max_attempts=5, backoff=(0.05,))
    async def handle(msg: Delivery[int]) -> None:
        handled.append(msg.payload)

    await app.start()
    async with channel(vhost_url) as ch:
        await publish(ch, "room.a", b"41", headers={"h": "1"})
        await publish(ch, "room.a", b"not a number", headers={"h": "2"})
        await wait_for(lambda: handled == [41], what="valid one handled")
        await wait_for_dlq(ch, f"{Q}.dlq")
        await app.drain()
        [dead] = await drain_queue(ch, f"{Q}.dlq")
    assert dead.body == b"not a number"
    headers = dict(dead.headers)
    assert headers["h"] == "2"
    assert headers["x-dead-letter-reason"] == "invalid"
    assert headers["x-attempts"] == 0
    error = str(headers["x-error"])
    assert error.startswith("ValueError: invalid literal for int()")


@pytest.mark.parametrize("batch", [None, BatchSpec(max_size=10, max_wait=0.05)])
async def test_a_handler_raising_dead_letter_skips_the_retries(
    vhost_url: str, apps: list[WorkerApp], batch: BatchSpec | None
) -> None:
    app = new_app(vhost_url, apps)
    calls: list[int] = []

    async def handle(msg: Any) -> None:
        calls.append(1)
        raise DeadLetter("the service refused it: HTTP 400")

    app.add_consumer(handle, "room.*", queue=Q, max_attempts=5, backoff=(0.05,), batch=batch)
    await app.start()
    async with channel(vhost_url) as ch:
        await publish(ch, "room.a", b"never", headers={"h": "1"})
        await wait_for_dlq(ch, f"{Q}.dlq")
        await app.drain()
        [dead] = await drain_queue(ch, f"{Q}.dlq")
    assert calls == [1]
    assert dead.body == b"never"
    assert dead.headers["x-dead-letter-reason"] == "rejected"
    assert dead.headers["x-attempts"] == 1
    assert str(dead.headers["x-error"]) == "DeadLetter: the service refused it: HTTP 400"


async def test_schema_validation_uses_schemas_validate(
    vhost_url: str, apps: list[WorkerApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    import schemas

    class SchemaError(ValueError):
        pass

    def validate(name: str, body: bytes) -> dict[str, str]:
        if body != b"ok":
            raise SchemaError(f"{name}: bad body")
        return {"schema": name}

    monkeypatch.setattr(schemas, "validate", validate, raising=False)
    app = new_app(vhost_url, apps)
    payloads: list[Any] = []

    @app.consumer("room.*", queue=Q, schema="chat.message.v1")
    async def handle(msg: Delivery[Any]) -> None:
        payloads.append(msg.payload)

    await app.start()
    async with channel(vhost_url) as ch:
        await publish(ch, "room.a", b"nope")
        await publish(ch, "room.a", b"ok")
        await wait_for(lambda: len(payloads) == 1, what="valid one")
        await wait_for_dlq(ch, f"{Q}.dlq")
        await app.drain()
        [dead] = await drain_queue(ch, f"{Q}.dlq")
    assert payloads == [{"schema": "chat.message.v1"}]
    assert dead.headers["x-error"] == "SchemaError: chat.message.v1: bad body"


async def test_schema_without_schemas_validate_fails_at_start(
    vhost_url: str, apps: list[WorkerApp], no_schemas_validate: None
) -> None:
    app = new_app(vhost_url, apps)

    @app.consumer("room.*", queue=Q, schema="chat.message.v1")
    async def handle(msg: Delivery[Any]) -> None:
        raise AssertionError("never")

    with pytest.raises(SchemaUnavailableError):
        await app.start()


@pytest.mark.parametrize(("prefetch", "concurrency", "expected"), [(20, 3, 3), (4, 50, 4)])
async def test_concurrency_and_prefetch_bound_parallel_handlers(
    vhost_url: str, apps: list[WorkerApp], prefetch: int, concurrency: int, expected: int
) -> None:
    app = new_app(vhost_url, apps, prefetch=prefetch, concurrency=concurrency)
    active = 0
    peak = 0
    done = 0

    @app.consumer("room.*", queue=Q)
    async def handle(msg: Delivery[bytes]) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        done += 1

    async with channel(vhost_url) as ch:
        await app.start()
        for i in range(16):
            await publish(ch, "room.c", b"%d" % i)
        await wait_for(lambda: done == 16, what="16 handled")
        await app.drain()
    assert peak == expected


async def test_drain_finishes_in_flight_and_returns_the_rest(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = new_app(vhost_url, apps, prefetch=2, concurrency=2)
    started: list[bytes] = []
    finished: list[bytes] = []
    release = asyncio.Event()

    @app.consumer("room.*", queue=Q)
    async def handle(msg: Delivery[bytes]) -> None:
        started.append(msg.body)
        await release.wait()
        finished.append(msg.body)

    async with channel(vhost_url) as ch:
        await app.start()
        for i in range(5):
            await publish(ch, "room.d", b"%d" % i)
        await wait_for(lambda: len(started) == 2, what="2 in flight")
        drain = asyncio.create_task(app.drain(grace=10))
        await asyncio.sleep(0.2)
        assert not drain.done()  # waiting for the two in-flight handlers
        assert not app.healthy
        release.set()
        await asyncio.wait_for(drain, 10)
        assert sorted(finished) == sorted(started)
        assert len(finished) == 2
        await wait_for_ready(ch, Q, 3)  # the rest was never taken, or given back
        assert await ready_count(ch, Q) == 3
    assert app.state == "stopped"


async def test_drain_timeout_gives_unfinished_work_back(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = new_app(vhost_url, apps, prefetch=1, concurrency=1)
    started = asyncio.Event()

    @app.consumer("room.*", queue=Q)
    async def handle(msg: Delivery[bytes]) -> None:
        started.set()
        await asyncio.sleep(30)

    async with channel(vhost_url) as ch:
        await app.start()
        await publish(ch, "room.d", b"slow")
        await asyncio.wait_for(started.wait(), 10)
        t0 = time.monotonic()
        await app.drain(grace=0.3)
        assert time.monotonic() - t0 < 3
        await wait_for_ready(ch, Q, 1)


async def test_header_filter_acks_and_skips(vhost_url: str, apps: list[WorkerApp]) -> None:
    app = new_app(vhost_url, apps)
    bodies: list[bytes] = []

    @app.consumer("room.*", queue=Q, only_headers={"event-type": "message"})
    async def handle(msg: Delivery[bytes]) -> None:
        bodies.append(msg.body)

    async with channel(vhost_url) as ch:
        await app.start()
        await publish(ch, "room.f", b"typing", headers={"event-type": "typing"})
        await publish(ch, "room.f", b"no header")
        await publish(ch, "room.f", b"chat", headers={"event-type": "message"})
        await wait_for(lambda: bodies == [b"chat"], what="message handled")
        await app.drain()
        assert await ready_count(ch, Q) == 0
    skipped = app.metrics.registry.get_sample_value(
        "stompgate_worker_messages_skipped_total",
        {"worker": "test", "queue": Q, "reason": "filtered"},
    )
    assert skipped == 2


async def test_redis_idempotency_skips_repeats(
    vhost_url: str, apps: list[WorkerApp], redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.from_url(redis_url)
    guard = RedisIdempotency(client, prefix=redis_prefix, ttl=60)
    app = new_app(vhost_url, apps, concurrency=1)
    keys: list[str] = []

    @app.consumer("room.*", queue=Q, idempotency=guard)
    async def handle(msg: Delivery[bytes]) -> None:
        keys.append(msg.key)

    try:
        async with channel(vhost_url) as ch:
            await app.start()
            await publish(ch, "room.i", b"a", message_id="same")
            await wait_for(lambda: keys == ["same"], what="first")
            await publish(ch, "room.i", b"a again", message_id="same")
            await publish(ch, "room.i", b"b", message_id="other")
            await publish(ch, "room.i", b"b", message_id="other")
            await wait_for(lambda: len(keys) == 2, what="the other one")
            await asyncio.sleep(0.2)
            await app.drain()
            assert await ready_count(ch, Q) == 0
        assert keys == ["same", "other"]
        assert await client.exists(redis_prefix + "same") == 1
    finally:
        async for key in client.scan_iter(match=redis_prefix + "*"):
            await client.delete(key)
        await client.aclose()


async def test_batch_consumer_gets_lists_and_acks_them(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = new_app(vhost_url, apps)
    batches: list[list[bytes]] = []

    @app.consumer("room.*", queue=Q, batch=BatchSpec(max_size=10, max_wait=0.1))
    async def handle(msgs: list[Delivery[bytes]]) -> None:
        batches.append([m.body for m in msgs])

    async with channel(vhost_url) as ch:
        await app.start()
        for i in range(25):
            await publish(ch, "room.b", b"%02d" % i)
        await wait_for(lambda: sum(map(len, batches)) == 25, what="25 in batches")
        await app.drain()
        assert await ready_count(ch, Q) == 0
    assert all(1 <= len(b) <= 10 for b in batches)
    assert [x for b in batches for x in b] == [b"%02d" % i for i in range(25)]


async def test_batch_failure_is_retried_in_process_then_dead_lettered(
    vhost_url: str, apps: list[WorkerApp]
) -> None:
    app = new_app(vhost_url, apps)
    calls: list[list[int]] = []

    def number(body: bytes) -> int:
        return int(body)

    @app.consumer(
        "room.*",
        queue=Q,
        validator=number,
        batch=BatchSpec(max_size=50, max_wait=0.2),
        max_attempts=3,
        backoff=(0.05,),
    )
    async def handle(msgs: list[Delivery[int]]) -> None:
        calls.append([m.attempt for m in msgs])
        if 13 in (m.payload for m in msgs):
            raise RuntimeError("unlucky batch")

    async with channel(vhost_url) as ch:
        await app.start()
        for body in (b"1", b"x", b"13"):
            await publish(ch, "room.b", body)
        await wait_for_dlq(ch, f"{Q}.dlq", count=3)
        await app.drain()
        dead = await drain_queue(ch, f"{Q}.dlq")
        assert await ready_count(ch, Q) == 0
    assert calls == [[1, 1], [2, 2], [3, 3]]
    reasons = sorted((m.body, m.headers["x-dead-letter-reason"]) for m in dead)
    assert reasons == [(b"1", "exhausted"), (b"13", "exhausted"), (b"x", "invalid")]
    assert all(m.headers["x-attempts"] == 3 for m in dead if m.body != b"x")


async def test_health_and_metrics_endpoints(vhost_url: str, apps: list[WorkerApp]) -> None:
    from aiohttp import ClientSession

    app = new_app(vhost_url, apps, metrics_port=0)

    @app.consumer("room.*", queue=Q)
    async def handle(msg: Delivery[bytes]) -> None:
        pass

    await app.start()
    port = app.bound_metrics_port
    assert port
    async with ClientSession() as http, channel(vhost_url) as ch:
        await publish(ch, "room.h", b"x")
        await wait_for(
            lambda: (
                app.metrics.registry.get_sample_value(
                    "stompgate_worker_messages_handled_total", {"worker": "test", "queue": Q}
                )
                == 1
            ),
            what="handled",
        )
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            body = await response.json()
        assert body["status"] == "ok"
        assert body["consumers"] == [{"queue": Q, "consuming": True, "pending": 0}]
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        assert (
            'stompgate_worker_messages_handled_total{queue="team.jobs",worker="test"} 1.0' in text
        )
        assert "stompgate_worker_handler_seconds_bucket" in text
        await app.drain()
