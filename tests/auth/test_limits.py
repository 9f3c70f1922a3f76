"""Abuse limits: token buckets fed `now`, floods, timers, Origin, connection counts."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from gateway.auth.errors import LimitExceeded
from gateway.auth.limits import (
    BREACH_KINDS,
    AbuseLimits,
    Breach,
    ConnectionCounter,
    SessionRateLimiter,
    TokenBucket,
    check_frame_size,
    check_subscriptions,
    origin_allowed,
    origin_rejection,
)

# -- token bucket ------------------------------------------------------------------------------


def test_bucket_starts_full_and_refills_at_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert all(bucket.allow(1, now=0.0) for _ in range(5))
    assert not bucket.allow(1, now=0.0)
    assert not bucket.allow(1, now=0.05)  # 0.5 token
    assert bucket.allow(1, now=0.1)  # 1 token
    assert not bucket.allow(1, now=0.1)
    assert bucket.available(now=100.0) == 5  # capped at burst


def test_bucket_refusal_takes_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=10)
    assert bucket.allow(7, now=0.0)
    assert not bucket.allow(4, now=0.0)
    assert bucket.available(now=0.0) == 3
    assert bucket.allow(3, now=0.0)


def test_bucket_wait_time() -> None:
    bucket = TokenBucket(rate=4, burst=8)
    assert bucket.wait_time(8, now=0.0) == 0.0
    assert bucket.allow(8, now=0.0)
    assert bucket.wait_time(2, now=0.0) == pytest.approx(0.5)
    assert bucket.wait_time(9, now=0.0) == math.inf
    assert TokenBucket(rate=0, burst=1).wait_time(1, now=0.0) == 0.0


def test_bucket_ignores_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=2)
    assert bucket.allow(2, now=10.0)
    assert not bucket.allow(1, now=5.0)
    assert not bucket.allow(1, now=10.5)
    assert bucket.allow(1, now=11.0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 1000),
    burst=st.integers(1, 1000),
    steps=st.lists(st.tuples(st.floats(0, 5), st.integers(1, 50)), max_size=60),
)
def test_bucket_never_exceeds_rate_times_time_plus_burst(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    spent = 0
    for delta, cost in steps:
        now += delta
        if bucket.allow(cost, now):
            spent += cost
        assert spent <= burst + rate * now + 1e-6
        assert 0 <= bucket.available(now) <= burst


# -- per-session rate limiter ------------------------------------------------------------------


def test_flood_beyond_frame_rate() -> None:
    limiter = SessionRateLimiter(AbuseLimits(frames_per_second=50, frames_burst=100))
    results = [limiter.check(100, now=0.0) for _ in range(101)]
    assert results[:100] == [None] * 100
    assert results[100] == "rate limit exceeded: frames_per_second 50 (burst 100)"
    assert limiter.check(100, now=0.02) is None  # one token back after 1/50 s
    breach = limiter.breach(100, now=0.02)
    assert breach == Breach(
        "frames_per_second", "rate limit exceeded: frames_per_second 50 (burst 100)"
    )


def test_steady_rate_under_the_limit_is_fine() -> None:
    limiter = SessionRateLimiter(AbuseLimits(frames_per_second=50, frames_burst=5))
    assert all(limiter.check(10, now=i / 40) is None for i in range(1000))


def test_flood_beyond_byte_rate() -> None:
    limits = AbuseLimits(bytes_per_second=1000, bytes_burst=4000, max_frame_size=4000)
    limiter = SessionRateLimiter(limits)
    assert limiter.check(4000, now=0.0) is None
    assert limiter.check(1, now=0.0) == "rate limit exceeded: bytes_per_second 1000 (burst 4000)"
    assert limiter.breach(1, now=0.0) == Breach(
        "bytes_per_second", "rate limit exceeded: bytes_per_second 1000 (burst 4000)"
    )
    assert limiter.check(500, now=0.5) is None


def test_refused_frame_charges_neither_bucket() -> None:
    limits = AbuseLimits(frames_burst=2, bytes_per_second=10, bytes_burst=100, max_frame_size=100)
    limiter = SessionRateLimiter(limits)
    assert limiter.check(100, now=0.0) is None
    assert limiter.check(50, now=0.0) is not None  # bytes refused: the frame token is kept
    assert limiter.check(0, now=0.0) is None
    assert limiter.check(0, now=0.0) is not None


def test_rate_limits_can_be_disabled() -> None:
    limiter = SessionRateLimiter(AbuseLimits(frames_per_second=0, bytes_per_second=0))
    assert all(limiter.check(10**9, now=0.0) is None for _ in range(10_000))


def test_sizes_and_counts() -> None:
    limits = AbuseLimits(max_subscriptions=2, max_frame_size=1000, bytes_burst=1000)
    assert check_subscriptions(1, limits) is None
    assert check_subscriptions(2, limits) == Breach(
        "subscriptions", "too many subscriptions: 3 > max_subscriptions 2"
    )
    assert check_frame_size(1000, limits) is None
    assert check_frame_size(1001, limits) == Breach(
        "frame_size", "frame too large: 1001 bytes > max_frame_size 1000"
    )


def test_breach_kinds_are_documented() -> None:
    assert set(BREACH_KINDS) >= {
        "origin",
        "connections_per_ip",
        "connections_per_user",
        "frames_per_second",
        "bytes_per_second",
        "subscriptions",
        "connect_timeout",
        "idle_timeout",
        "frame_size",
    }
    error = Breach("frame_size", "m").error()
    assert isinstance(error, LimitExceeded)
    assert (error.kind, error.message) == ("frame_size", "m")


# -- Origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        # same host is always allowed
        ("https://chat.example.com", "chat.example.com", (), True),
        ("https://CHAT.example.com", "chat.example.com", (), True),
        ("http://localhost:8080", "localhost:8080", (), True),
        ("http://localhost:3000", "localhost:8080", (), False),
        ("https://chat.example.com", "chat.example.com:443", (), True),
        # foreign origins
        ("https://evil.example", "chat.example.com", (), False),
        ("https://chat.example.com.evil.example", "chat.example.com", (), False),
        ("https://evil.example", None, (), False),
        # the allow-list
        ("https://app.example.com", "gw.example.com", ("https://app.example.com",), True),
        ("http://app.example.com", "gw.example.com", ("https://app.example.com",), False),
        ("https://app.example.com:8443", "gw", ("https://app.example.com",), False),
        ("https://app.example.com:8443", "gw", ("https://app.example.com:8443",), True),
        ("https://a.example.com", "gw", ("https://*.example.com",), True),
        ("https://a.b.example.com", "gw", ("https://*.example.com",), True),
        ("https://example.com", "gw", ("https://*.example.com",), False),
        ("https://badexample.com", "gw", ("https://*.example.com",), False),
        ("http://app.example.com:81", "gw", ("app.example.com",), True),
        ("https://x.example.com", "gw", ("*.example.com",), True),
        ("https://anything.test", "gw", ("*",), True),
        # null and junk
        ("null", "gw", (), False),
        ("null", "gw", ("null",), True),
        ("file://", "gw", (), False),
        ("https://chat.example.com:99999", "chat.example.com", (), False),
        ("javascript:alert(1)", "gw", (), False),
        ("https://chat.example.com/path", "chat.example.com", (), False),
    ],
)
def test_origin_allowed(
    origin: str, host: str | None, allowed: tuple[str, ...], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_missing_origin() -> None:
    assert origin_allowed(None, "gw", ()) is True
    assert origin_allowed("", "gw", ()) is True
    assert origin_allowed(None, "gw", (), allow_missing=False) is False


def test_foreign_origin_message() -> None:
    assert origin_rejection("https://evil.example") == Breach(
        "origin", "origin not allowed: https://evil.example"
    )
    assert origin_rejection("https://e\r\nx").message == "origin not allowed: https://e??x"


# -- settings ----------------------------------------------------------------------------------


def test_limits_from_env() -> None:
    assert AbuseLimits.from_env({}) == AbuseLimits()
    limits = AbuseLimits.from_env(
        {
            "STOMPGATE_ALLOWED_ORIGINS": "https://app.example.com, https://*.example.org",
            "STOMPGATE_REQUIRE_ORIGIN": "true",
            "STOMPGATE_MAX_CONNECTIONS_PER_IP": "5",
            "STOMPGATE_MAX_CONNECTIONS_PER_USER": "2",
            "STOMPGATE_FRAMES_PER_SECOND": "10.5",
            "STOMPGATE_FRAMES_BURST": "20",
            "STOMPGATE_BYTES_PER_SECOND": "1000",
            "STOMPGATE_BYTES_BURST": "65536",
            "STOMPGATE_MAX_SUBSCRIPTIONS": "7",
            "STOMPGATE_CONNECT_TIMEOUT": "3",
            "STOMPGATE_IDLE_TIMEOUT": "0",
            "STOMPGATE_MAX_FRAME_SIZE": "65536",
            "STOMPGATE_MAX_DESTINATION_LENGTH": "128",
        }
    )
    assert limits == AbuseLimits(
        origins=("https://app.example.com", "https://*.example.org"),
        require_origin=True,
        max_connections_per_ip=5,
        max_connections_per_user=2,
        frames_per_second=10.5,
        frames_burst=20,
        bytes_per_second=1000,
        bytes_burst=65536,
        max_subscriptions=7,
        connect_timeout=3,
        idle_timeout=0,
        max_frame_size=65536,
        max_destination_length=128,
    )


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            {"STOMPGATE_MAX_CONNECTIONS_PER_IP": "-1"},
            "STOMPGATE_MAX_CONNECTIONS_PER_IP must be >= 0",
        ),
        ({"STOMPGATE_FRAMES_BURST": "lots"}, "STOMPGATE_FRAMES_BURST must be an integer"),
        ({"STOMPGATE_IDLE_TIMEOUT": "inf"}, "STOMPGATE_IDLE_TIMEOUT must be a finite number"),
        ({"STOMPGATE_IDLE_TIMEOUT": "nan"}, "STOMPGATE_IDLE_TIMEOUT must be a finite number"),
        ({"STOMPGATE_BYTES_BURST": "1000"}, "bytes_burst (1000) must be >= max_frame_size"),
        ({"STOMPGATE_FRAMES_BURST": "0"}, "frames_burst must be >= 1"),
    ],
)
def test_limits_from_env_errors(env: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        AbuseLimits.from_env(env)


# -- connection counts -------------------------------------------------------------------------


def test_connections_per_ip() -> None:
    counter = ConnectionCounter(AbuseLimits(max_connections_per_ip=2))
    counter.acquire_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.2")
    with pytest.raises(LimitExceeded) as caught:
        counter.acquire_ip("10.0.0.1")
    assert caught.value.kind == "connections_per_ip"
    assert caught.value.message == (
        "too many connections from 10.0.0.1: 3 > max_connections_per_ip 2"
    )
    assert counter.ip_count("10.0.0.1") == 2  # the refused one was not counted
    counter.release_ip("10.0.0.1")
    counter.acquire_ip("10.0.0.1")
    for _ in range(5):
        counter.release_ip("10.0.0.1")
    assert counter.ip_count("10.0.0.1") == 0


async def test_connections_per_user_in_process() -> None:
    counter = ConnectionCounter(AbuseLimits(max_connections_per_user=1))
    lease = await counter.acquire_user("alice")
    with pytest.raises(LimitExceeded, match="too many connections for user alice: 2 > max"):
        await counter.acquire_user("alice")
    await counter.release_user(lease)
    await counter.release_user(lease)  # idempotent
    await counter.acquire_user("alice")


async def test_connections_per_user_across_nodes(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=3)
    node_a = ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id="a")
    node_b = ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id="b")
    leases = [
        await node_a.acquire_user("alice"),
        await node_b.acquire_user("alice"),
        await node_a.acquire_user("alice"),
    ]
    assert all(lease.shared for lease in leases)
    for node in (node_a, node_b):
        with pytest.raises(LimitExceeded) as caught:
            await node.acquire_user("alice")
        assert caught.value.kind == "connections_per_user"
        assert caught.value.message == (
            "too many connections for user alice: 4 > max_connections_per_user 3"
        )
    assert await node_b.user_count("alice") == 3
    await node_b.acquire_user("bob")  # other users are unaffected
    await node_a.release_user(leases[0])
    await node_a.release_user(leases[0])  # idempotent: does not free a second slot
    await node_b.acquire_user("alice")
    with pytest.raises(LimitExceeded):
        await node_a.acquire_user("alice")


async def test_concurrent_acquires_never_overshoot(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=5)
    nodes = [
        ConnectionCounter(limits, redis_client, key_prefix=redis_prefix, node_id=f"n{i}")
        for i in range(4)
    ]

    async def attempt(node: ConnectionCounter) -> bool:
        try:
            await node.acquire_user("alice")
        except LimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(nodes[i % 4]) for i in range(40)))
    assert sum(results) == 5
    assert await nodes[0].user_count("alice") == 5


async def test_dead_node_leases_expire(redis_client: Redis, redis_prefix: str) -> None:
    limits = AbuseLimits(max_connections_per_user=1)
    dead = ConnectionCounter(
        limits, redis_client, key_prefix=redis_prefix, node_id="dead", lease_ttl=0.5
    )
    alive = ConnectionCounter(
        limits, redis_client, key_prefix=redis_prefix, node_id="alive", lease_ttl=0.5
    )
    await dead.acquire_user("alice")  # the node then "crashes": never releases, never refreshes
    with pytest.raises(LimitExceeded):
        await alive.acquire_user("alice")
    await asyncio.sleep(0.6)
    lease = await alive.acquire_user("alice")
    for _ in range(3):  # a live node keeps its lease by refreshing it
        await asyncio.sleep(0.15)
        await alive.refresh()
    with pytest.raises(LimitExceeded):
        await dead.acquire_user("alice")
    await alive.release_user(lease)
    await dead.acquire_user("alice")


async def test_redis_down_counts_locally(caplog: pytest.LogCaptureFixture) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        counter = ConnectionCounter(AbuseLimits(max_connections_per_user=1), broken)
        lease = await counter.acquire_user("alice")
        assert not lease.shared
        with pytest.raises(LimitExceeded):
            await counter.acquire_user("alice")
        await counter.release_user(lease)
        assert "counting locally" in caplog.text
    finally:
        await broken.aclose()
