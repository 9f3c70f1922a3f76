"""The Translator: one provider behind a cache, limits, retries and a circuit breaker.

Theory of operation. `translate_many(texts, source, target)` answers one `Outcome` per text
(outcomes.py) and never raises for anything the provider or Redis does:

1. Tags are normalized; a text whose source and target are the same language, or a pair the
   provider does not offer (`pairs()`, trusted for `pairs_ttl`), is `Untranslatable`.
2. The cache (Redis, by text hash, source and target) answers what it has; only the misses go
   on, in requests of up to `provider.max_batch` texts.
3. Each request passes, in this order: the circuit breaker (open: "retry later" at once,
   without waiting), a pause the provider asked for that is longer than `max_retry_wait`
   ("retry later" too), the concurrency bound (an `asyncio.Semaphore` of `concurrency`
   slots, held for the request only), the token bucket (`rate` a second, `burst`), the call.
4. The provider's answer decides (providers.py has the errors):
   - translations: the breaker hears success, the cache stores them;
   - rate limited: every request to the provider pauses for the `Retry-After` (or a backoff),
     then this one tries again, up to `max_attempts`;
   - unavailable (5xx, timeout, network): the breaker counts a failure; backoff, try again,
     up to `max_attempts` and while the breaker stays closed;
   - quota exceeded, credentials refused: no retry; the breaker opens for `lockout`;
   - unsupported pair, invalid request: `Untranslatable` (the provider is fine).
   When the attempts are used up, or a wait would be longer than `max_retry_wait`, the outcome
   is `RetryLater(after=...)`: the worker delays the translation and nothing is lost.

A burst of 500 messages is 500 coroutines waiting on one semaphore: never more than
`concurrency` requests in flight, never a thread per message, never past the rate limit.
The bounds, the bucket and the breaker belong to the instance: make one Translator per
provider in a process and share it between all the handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from workers.resilience.backoff import Backoff
from workers.resilience.breaker import CircuitBreaker, State
from workers.resilience.limits import Clock, TokenBucket
from workers.translate import languages
from workers.translate.cache import TranslationCache
from workers.translate.outcomes import Delay, Outcome, RetryLater, Untranslatable
from workers.translate.providers import (
    AuthenticationError,
    InvalidRequestError,
    LanguagePair,
    ProviderError,
    ProviderUnavailableError,
    QuotaExceededError,
    RateLimitedError,
    Translation,
    TranslationProvider,
    UnsupportedLanguageError,
)
from workers.translate.settings import ProviderLimits

log = logging.getLogger("stompgate.workers.translate")

#: How long a failed `pairs()` is not asked again (meanwhile every pair is assumed offered).
PAIRS_RETRY = 60.0


class Translator:
    def __init__(
        self,
        provider: TranslationProvider,
        limits: ProviderLimits | None = None,
        *,
        cache: TranslationCache | None = None,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.provider = provider
        self.limits = limits or ProviderLimits()
        self.cache = cache
        self.breaker = CircuitBreaker(
            failures=self.limits.breaker_failures,
            cooldown=self.limits.breaker_cooldown,
            clock=clock,
        )
        self._bucket = TokenBucket(self.limits.rate, self.limits.burst, clock=clock)
        self._slots = asyncio.Semaphore(self.limits.concurrency)
        self._backoff = backoff or Backoff(self.limits.backoff_base, self.limits.backoff_max)
        self._clock = clock
        self._pairs: frozenset[LanguagePair] | None = None
        self._pairs_until = 0.0
        self._pairs_lock = asyncio.Lock()  # one `pairs()` request, however many callers

    @property
    def name(self) -> str:
        return self.provider.name

    async def translate(self, text: str, source: str, target: str) -> Outcome:
        return (await self.translate_many([text], source, target))[0]

    async def translate_many(self, texts: Sequence[str], source: str, target: str) -> list[Outcome]:
        try:
            source, target = languages.normalize(source), languages.normalize(target)
        except ValueError as exc:
            return [Untranslatable(self.name, str(exc))] * len(texts)
        if languages.base(source) == languages.base(target):
            return [Untranslatable(self.name, f"{source}->{target}: same language")] * len(texts)
        if not await self._offers(source, target):
            detail = f"{source}->{target}: not a pair {self.name} translates"
            return [Untranslatable(self.name, detail)] * len(texts)
        outcomes: list[Outcome | None] = [None] * len(texts)
        if self.cache is not None:
            outcomes[:] = await self.cache.get_many(texts, source, target)
        misses = [i for i, outcome in enumerate(outcomes) if outcome is None]
        size = self.provider.max_batch
        chunks = [misses[at : at + size] for at in range(0, len(misses), size)]
        answers = await asyncio.gather(
            *(self._request([texts[i] for i in chunk], source, target) for chunk in chunks)
        )
        fresh: list[tuple[str, Translation]] = []
        for chunk, answer in zip(chunks, answers, strict=True):
            for i, outcome in zip(chunk, answer, strict=True):
                outcomes[i] = outcome
                if isinstance(outcome, Translation):
                    fresh.append((texts[i], outcome))
        if self.cache is not None and fresh:
            await self.cache.put_many([t for t, _ in fresh], [d for _, d in fresh])
        return [o for o in outcomes if o is not None]

    async def _request(self, texts: list[str], source: str, target: str) -> Sequence[Outcome]:
        """One request for `texts` (retried as the limits allow); one outcome per text."""
        n = len(texts)
        limits = self.limits
        attempt = 0
        while True:
            attempt += 1
            if wait := self.breaker.before_call():
                return [self._later(Delay.CIRCUIT_OPEN, wait, self.breaker.reason)] * n
            paused = self._bucket.paused_for()
            if paused > limits.max_retry_wait:
                self.breaker.inconclusive()
                return [self._later(Delay.RATE_LIMITED, paused, "provider asked to wait")] * n
            try:
                async with self._slots:
                    await self._bucket.acquire()
                    done = await self.provider.translate(texts, source, target)
            except RateLimitedError as exc:
                self.breaker.inconclusive()
                wait = exc.retry_after if exc.retry_after is not None else self._delay(attempt)
                self._bucket.pause(wait)
                if attempt >= limits.max_attempts or wait > limits.max_retry_wait:
                    return [self._later(Delay.RATE_LIMITED, wait, exc.message)] * n
                log.info("%s: rate limited, retrying in %.2f s", self.name, wait)
            except ProviderUnavailableError as exc:
                self.breaker.failed(str(exc))
                wait = exc.retry_after if exc.retry_after is not None else self._delay(attempt)
                if self.breaker.state is not State.CLOSED:
                    wait = max(wait, self.breaker.remaining())
                if attempt >= limits.max_attempts or wait > limits.max_retry_wait:
                    return [self._later(Delay.UNAVAILABLE, wait, exc.message)] * n
                log.info("%s: %s; retrying in %.2f s", self.name, exc.message, wait)
                await asyncio.sleep(wait)
            except (QuotaExceededError, AuthenticationError) as exc:
                reason = (
                    Delay.QUOTA_EXCEEDED
                    if isinstance(exc, QuotaExceededError)
                    else Delay.AUTHENTICATION
                )
                self.breaker.trip(limits.lockout, str(exc))
                log.error(
                    "%s refused to translate (%s): %s; no request to it for %g s",
                    self.name,
                    reason.value,
                    exc.message,
                    limits.lockout,
                )
                return [self._later(reason, limits.lockout, exc.message)] * n
            except (UnsupportedLanguageError, InvalidRequestError) as exc:
                self.breaker.succeeded()  # it answered: the provider is healthy
                return [Untranslatable(self.name, exc.message)] * n
            except BaseException:
                self.breaker.inconclusive()  # a bug or a cancel must not keep the probe
                raise
            else:
                self.breaker.succeeded()
                return done

    async def _offers(self, source: str, target: str) -> bool:
        if self._clock() >= self._pairs_until:
            async with self._pairs_lock:
                if self._clock() >= self._pairs_until:  # not refreshed while we waited
                    await self._refresh_pairs()
        if self._pairs is None:
            return True  # unknown: let the provider say
        sources = {source, languages.base(source)}
        targets = {target, languages.base(target)}
        return any(LanguagePair(s, t) in self._pairs for s in sources for t in targets)

    async def _refresh_pairs(self) -> None:
        try:
            self._pairs = await self.provider.pairs()
            self._pairs_until = self._clock() + self.limits.pairs_ttl
        except ProviderError as exc:
            log.warning("%s: cannot list its language pairs (%s)", self.name, exc.message)
            self._pairs, self._pairs_until = None, self._clock() + PAIRS_RETRY

    def _delay(self, attempt: int) -> float:
        return self._backoff.delay(attempt)

    def _later(self, reason: Delay, after: float, detail: str) -> RetryLater:
        return RetryLater(reason, max(after, 0.0), self.name, detail)
