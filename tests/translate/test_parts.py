"""The Translator's parts on their own: breaker, token bucket, backoff, Retry-After, tags."""

from __future__ import annotations

import email.utils

import pytest

from tests.translate.helpers import Clock, state
from workers.resilience.backoff import Backoff
from workers.resilience.breaker import CircuitBreaker, State
from workers.resilience.limits import TokenBucket
from workers.resilience.retry_after import parse_retry_after
from workers.translate import languages


def test_breaker_opens_after_n_consecutive_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    breaker.failed("a")
    breaker.failed("b")
    breaker.succeeded()  # the count is of consecutive failures
    breaker.failed("c")
    breaker.failed("d")
    assert state(breaker) is State.CLOSED
    assert breaker.before_call() == 0
    breaker.failed("e")
    assert state(breaker) is State.OPEN
    assert breaker.reason == "e"
    assert breaker.before_call() == 10
    clock.now += 4
    assert breaker.before_call() == 6
    assert breaker.remaining() == 6


def test_breaker_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=clock)
    breaker.failed("down")
    clock.now += 10
    assert state(breaker) is State.HALF_OPEN
    assert breaker.before_call() == 0  # the probe
    assert breaker.before_call() == 10  # everyone else waits for its verdict
    breaker.inconclusive()  # e.g. it answered 429: the probe is handed on
    assert breaker.before_call() == 0
    breaker.succeeded()
    assert state(breaker) is State.CLOSED
    assert breaker.before_call() == 0


def test_breaker_failed_probe_reopens_and_trip_uses_its_own_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=5, cooldown=10, clock=clock)
    breaker.trip(3600, "quota exceeded")
    assert state(breaker) is State.OPEN
    assert breaker.remaining() == 3600
    clock.now += 3600
    assert breaker.before_call() == 0
    breaker.failed("still out")  # a failed probe opens it again, whatever the count
    assert state(breaker) is State.OPEN
    assert breaker.remaining() == 10


def test_token_bucket_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.1)
    clock.now += 0.05
    assert bucket.take() == pytest.approx(0.05)
    clock.now += 0.05
    assert bucket.take() == 0
    clock.now += 60  # a long lull saves up at most `burst`
    assert [bucket.take() for _ in range(4)][:3] == [0, 0, 0]


def test_token_bucket_pause_and_no_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0, clock=clock)
    assert all(bucket.take() == 0 for _ in range(1000))
    bucket.pause(5)
    bucket.pause(2)  # a shorter pause does not cut the longer one
    assert bucket.take() == 5
    assert bucket.paused_for() == 5
    clock.now += 5
    assert bucket.take() == 0


async def test_token_bucket_acquire_waits_for_the_pause() -> None:
    bucket = TokenBucket(rate=0)
    bucket.pause(0.05)
    await bucket.acquire()
    assert bucket.paused_for() == 0


def test_backoff_is_exponential_capped_with_equal_jitter() -> None:
    top = Backoff(0.5, 4.0, rand=lambda: 1.0)
    assert [top.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    bottom = Backoff(0.5, 4.0, rand=lambda: 0.0)
    assert [bottom.delay(n) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="base"):
        Backoff(0, 1)


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 30.0
    assert parse_retry_after(date, now=2_000_000) == 0.0


def test_language_tags() -> None:
    assert languages.normalize("EN") == "en"
    assert languages.normalize("pt_br") == "pt-BR"
    assert languages.normalize(" zh-hant ") == "zh-Hant"
    assert languages.base("pt-BR") == "pt"
    for bad in ("", "eng", "english", "e1", "en-", "en-USA"):
        with pytest.raises(ValueError, match="language tag"):
            languages.normalize(bad)
