"""Rate limits: token buckets fed `now`, floods, the per-session limiter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.limits import AbuseLimits, Breach
from gateway.auth.rates import SessionRateLimiter, TokenBucket

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
