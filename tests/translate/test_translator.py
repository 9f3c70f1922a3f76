"""The Translator's machinery against a fake provider: bounded concurrency under a burst, the
rate limit, the Redis cache, the circuit breaker opening and closing, and what it does when
Redis or the provider's language list fails. Nothing here asserts how fast the machine is:
only bounds that a slower machine keeps too (at most N at once, at least the wait it owes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.translate.cases import BY_NAME, GOOD
from tests.translate.fakes import FakeService, Reply
from tests.translate.helpers import Clock, state
from workers.resilience.breaker import State
from workers.translate import (
    Delay,
    ProviderLimits,
    RetryLater,
    Translation,
    Translator,
    Untranslatable,
)
from workers.translate.cache import TranslationCache
from workers.translate.libretranslate import LibreTranslateProvider
from workers.translate.providers import LanguagePair, ProviderUnavailableError


@pytest.fixture
async def libre() -> AsyncIterator[FakeService]:
    fake = BY_NAME["libretranslate"].fake()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def provider(http: aiohttp.ClientSession, fake: FakeService) -> LibreTranslateProvider:
    return LibreTranslateProvider(http, fake.url, api_key=GOOD, timeout=10)


async def test_a_500_message_burst_never_exceeds_the_concurrency_bound(
    http: aiohttp.ClientSession, libre: FakeService, redis: aioredis.Redis, redis_prefix: str
) -> None:
    libre.hold = 0.01  # each request stays open a while, so requests overlap
    cache = TranslationCache(redis, prefix=redis_prefix, ttl=60)
    bound = 4
    translator = Translator(
        provider(http, libre), ProviderLimits(concurrency=bound, rate=0), cache=cache
    )
    texts = [f"message {i}" for i in range(500)]
    outcomes = await asyncio.gather(*(translator.translate(t, "en", "es") for t in texts))
    assert outcomes == [Translation(f"[es] {t}", "en", "es", "libretranslate") for t in texts]
    assert len(libre.translate_requests) == 500
    assert libre.max_in_flight <= bound
    assert libre.max_in_flight >= 2  # the bound was reached for real, not by going one by one
    assert [r.path for r in libre.requests].count("/languages") == 1  # asked once, not 500x
    # the burst did not overwhelm the cache either: every translation is in it, and the same
    # burst again is answered from it without a request
    cached = await redis.mget([cache.key(t, "en", "es") for t in texts])
    assert all(value is not None for value in cached)
    again = await asyncio.gather(*(translator.translate(t, "en", "es") for t in texts))
    assert all(isinstance(o, Translation) and o.cached for o in again)
    assert len(libre.translate_requests) == 500


async def test_the_rate_limit_spaces_requests(
    http: aiohttp.ClientSession, libre: FakeService
) -> None:
    rate, burst, n = 20.0, 2, 12
    translator = Translator(
        provider(http, libre), ProviderLimits(concurrency=10, rate=rate, burst=burst)
    )
    outcomes = await asyncio.gather(*(translator.translate(f"t{i}", "en", "fr") for i in range(n)))
    assert all(isinstance(o, Translation) for o in outcomes)
    at = sorted(r.at for r in libre.translate_requests)
    # after the burst, one request per 1/rate s: the whole run takes at least this long
    assert at[-1] - at[0] >= 0.9 * (n - burst) / rate


async def test_a_second_identical_request_does_not_reach_the_provider(
    http: aiohttp.ClientSession, libre: FakeService, redis: aioredis.Redis, redis_prefix: str
) -> None:
    cache = TranslationCache(redis, prefix=redis_prefix, ttl=60)
    translator = Translator(provider(http, libre), ProviderLimits(rate=0), cache=cache)
    first = await translator.translate("See you tomorrow", "en", "es")
    second = await translator.translate("See you tomorrow", "en", "es")
    assert first == Translation("[es] See you tomorrow", "en", "es", "libretranslate")
    assert second == Translation("[es] See you tomorrow", "en", "es", "libretranslate", cached=True)
    assert len(libre.translate_requests) == 1
    # another target or another text is another key
    await translator.translate("See you tomorrow", "en", "fr")
    await translator.translate("See you later", "en", "es")
    assert len(libre.translate_requests) == 3
    # a batch: only the misses go out
    outcomes = await translator.translate_many(["See you tomorrow", "New one"], "en", "es")
    assert [o.cached for o in outcomes if isinstance(o, Translation)] == [True, False]
    assert libre.translate_requests[-1].body["q"] == "New one"
    key = cache.key("See you tomorrow", "en", "es")
    assert key.startswith(redis_prefix + "translate:en:es:")
    assert 0 < await redis.pttl(key) <= 60_000


async def test_a_redis_outage_only_costs_the_cache(
    http: aiohttp.ClientSession, libre: FakeService
) -> None:
    # nothing listens on port 1; no retries, so the test does not wait out redis-py's backoff
    dead = aioredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    try:
        cache = TranslationCache(dead, prefix="stompgate-test:none:", ttl=60)
        translator = Translator(provider(http, libre), ProviderLimits(rate=0), cache=cache)
        outcome = await translator.translate("Hello", "en", "es")
        assert outcome == Translation("[es] Hello", "en", "es", "libretranslate")
    finally:
        await dead.aclose()


async def test_the_breaker_opens_after_consecutive_failures_and_closes_after_a_probe(
    http: aiohttp.ClientSession, libre: FakeService
) -> None:
    down = Reply(503, {"error": "down"})
    limits = ProviderLimits(rate=0, max_attempts=1, breaker_failures=3, breaker_cooldown=30)
    clock = Clock()
    translator = Translator(provider(http, libre), limits, clock=clock)
    libre.script(down, down, down)
    for i in range(3):
        outcome = await translator.translate(f"m{i}", "en", "es")
        assert isinstance(outcome, RetryLater)
        assert outcome.reason is Delay.UNAVAILABLE
    assert state(translator.breaker) is State.OPEN
    blocked = await translator.translate("m3", "en", "es")
    assert isinstance(blocked, RetryLater)
    assert blocked.reason is Delay.CIRCUIT_OPEN
    assert blocked.after == 30
    assert "down" in blocked.detail
    assert len(libre.translate_requests) == 3  # the open breaker kept the call away
    clock.now += 29.9
    assert isinstance(await translator.translate("m3", "en", "es"), RetryLater)
    clock.now += 0.1  # the cooldown is over: the next call is the probe
    assert state(translator.breaker) is State.HALF_OPEN
    probe = await translator.translate("m3", "en", "es")
    assert probe == Translation("[es] m3", "en", "es", "libretranslate")
    assert state(translator.breaker) is State.CLOSED
    assert len(libre.translate_requests) == 4


async def test_a_failed_probe_opens_the_breaker_again(
    http: aiohttp.ClientSession, libre: FakeService
) -> None:
    down = Reply(500, {"error": "still down"})
    limits = ProviderLimits(rate=0, max_attempts=1, breaker_failures=1, breaker_cooldown=30)
    clock = Clock()
    translator = Translator(provider(http, libre), limits, clock=clock)
    libre.script(down, down)
    assert isinstance(await translator.translate("a", "en", "es"), RetryLater)
    clock.now += 30
    probe = await translator.translate("b", "en", "es")
    assert isinstance(probe, RetryLater)
    assert probe.reason is Delay.UNAVAILABLE
    assert state(translator.breaker) is State.OPEN
    assert translator.breaker.remaining() == 30
    assert len(libre.translate_requests) == 2


class Flaky:
    """A provider whose language list is down and whose translate hangs until cancelled."""

    name = "flaky"
    max_batch = 1

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        self.called.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def pairs(self) -> frozenset[LanguagePair]:
        raise ProviderUnavailableError(self.name, "no language list today")


async def test_a_cancelled_probe_hands_the_probe_on() -> None:
    flaky, clock = Flaky(), Clock()
    limits = ProviderLimits(rate=0, breaker_failures=1, breaker_cooldown=30)
    translator = Translator(flaky, limits, clock=clock)
    translator.breaker.failed("test: down")
    clock.now += 30
    task = asyncio.create_task(translator.translate("Hi", "en", "es"))  # unknown pairs: tried
    await flaky.called.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert translator.breaker.before_call() == 0  # the next caller may probe


async def test_what_is_never_translated() -> None:
    translator = Translator(Flaky())
    assert isinstance(await translator.translate("Hi", "en", "en-GB"), Untranslatable)
    assert isinstance(await translator.translate("Hi", "english", "es"), Untranslatable)
