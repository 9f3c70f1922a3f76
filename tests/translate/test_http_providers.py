"""DeepL, LibreTranslate and Papago against local fakes of their HTTP APIs: success, refused
credentials, 429 with Retry-After, 5xx, quota used up. Each test runs for every provider."""

from __future__ import annotations

import aiohttp
import pytest

from tests.translate.cases import BAD, GOOD, Case
from tests.translate.fakes import FakeService, Reply
from tests.translate.helpers import state
from workers.resilience.backoff import Backoff
from workers.resilience.breaker import State
from workers.translate import Delay, ProviderLimits, RetryLater, Translation, Translator
from workers.translate.providers import (
    AuthenticationError,
    LanguagePair,
    ProviderUnavailableError,
    QuotaExceededError,
    RateLimitedError,
)

Service = tuple[Case, FakeService]

#: Deterministic backoff: 0.2 s, 0.4 s, ... (no jitter taken off).
BACKOFF = Backoff(0.2, 2.0, rand=lambda: 1.0)


def translator(
    http: aiohttp.ClientSession, service: Service, key: str = GOOD, **limits: float
) -> Translator:
    case, fake = service
    settings = ProviderLimits(**{"rate": 0, **limits})  # type: ignore[arg-type]
    return Translator(case.provider(http, fake.url, key), settings, backoff=BACKOFF)


async def test_translates(http: aiohttp.ClientSession, service: Service) -> None:
    case, fake = service
    provider = case.provider(http, fake.url, GOOD)
    results = await provider.translate(["Hello", "world"][: provider.max_batch], "en", "es")
    assert [r.text for r in results] == ["[es] Hello", "[es] world"][: provider.max_batch]
    assert {r.provider for r in results} == {case.name}
    assert LanguagePair("en", "es") in await provider.pairs()
    outcome = await translator(http, service).translate("Good night", "en", "es")
    assert outcome == Translation("[es] Good night", "en", "es", case.name)


async def test_refused_credentials_are_a_clear_error_and_not_retried(
    http: aiohttp.ClientSession, service: Service
) -> None:
    case, fake = service
    with pytest.raises(AuthenticationError) as raised:
        await case.provider(http, fake.url, BAD).translate(["Hello"], "en", "es")
    assert case.name in str(raised.value)
    fake.requests.clear()
    t = translator(http, service, BAD, lockout=600)
    outcome = await t.translate("Hello", "en", "es")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason is Delay.AUTHENTICATION
    assert outcome.after == 600
    assert len(fake.translate_requests) == 1  # no retry
    later = await t.translate("Hello again", "en", "es")
    assert isinstance(later, RetryLater)
    assert later.reason is Delay.CIRCUIT_OPEN
    assert "HTTP 40" in later.detail  # why the breaker is open: the refusal
    assert len(fake.translate_requests) == 1


async def test_429_with_retry_after_is_retried_after_the_wait(
    http: aiohttp.ClientSession, service: Service
) -> None:
    case, fake = service
    fake.script(case.rate_limited)
    with pytest.raises(RateLimitedError) as raised:
        await case.provider(http, fake.url, GOOD).translate(["Hello"], "en", "es")
    assert raised.value.retry_after == 1.0
    fake.requests.clear()
    fake.script(case.rate_limited)
    outcome = await translator(http, service).translate("Hello", "en", "es")
    assert outcome == Translation("[es] Hello", "en", "es", case.name)
    first, second = fake.translate_requests
    assert second.at - first.at >= 0.9  # Retry-After: 1 (asyncio may wake a hair early)


async def test_a_long_retry_after_is_retry_later_without_waiting(
    http: aiohttp.ClientSession, service: Service
) -> None:
    case, fake = service
    fake.script(Reply(case.rate_limited.status, case.rate_limited.body, {"Retry-After": "120"}))
    t = translator(http, service, max_retry_wait=5)
    outcome = await t.translate("Hello", "en", "es")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason is Delay.RATE_LIMITED
    assert 110 < outcome.after <= 120
    # the provider asked everyone to wait: the next text does not ask it either
    assert isinstance(await t.translate("Other", "en", "es"), RetryLater)
    assert len(fake.translate_requests) == 1


async def test_5xx_is_retried_with_backoff(http: aiohttp.ClientSession, service: Service) -> None:
    case, fake = service
    fake.script(case.unavailable)
    with pytest.raises(ProviderUnavailableError):
        await case.provider(http, fake.url, GOOD).translate(["Hello"], "en", "es")
    fake.requests.clear()
    fake.script(case.unavailable, case.unavailable)
    outcome = await translator(http, service, max_attempts=3).translate("Hello", "en", "es")
    assert outcome == Translation("[es] Hello", "en", "es", case.name)
    at = [r.at for r in fake.translate_requests]
    assert len(at) == 3
    assert at[1] - at[0] >= 0.19  # backoff 0.2 s
    assert at[2] - at[1] >= 0.39  # then 0.4 s


async def test_5xx_past_the_attempts_is_retry_later(
    http: aiohttp.ClientSession, service: Service
) -> None:
    case, fake = service
    fake.script(case.unavailable, case.unavailable)
    t = translator(http, service, max_attempts=2)
    outcome = await t.translate("Hello", "en", "es")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason is Delay.UNAVAILABLE
    assert outcome.after > 0
    assert len(fake.translate_requests) == 2
    assert state(t.breaker) is State.CLOSED  # 2 failures < 5


async def test_quota_exceeded_opens_the_breaker(
    http: aiohttp.ClientSession, service: Service
) -> None:
    case, fake = service
    fake.script(case.quota)
    with pytest.raises(QuotaExceededError):
        await case.provider(http, fake.url, GOOD).translate(["Hello"], "en", "es")
    fake.requests.clear()
    fake.script(case.quota)
    t = translator(http, service, lockout=900)
    outcome = await t.translate("Hello", "en", "es")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason is Delay.QUOTA_EXCEEDED
    assert outcome.after == 900
    assert state(t.breaker) is State.OPEN
    later = await t.translate("Hello", "en", "es")
    assert isinstance(later, RetryLater)
    assert later.reason is Delay.CIRCUIT_OPEN
    assert 0 < later.after <= 900
    assert len(fake.translate_requests) == 1
