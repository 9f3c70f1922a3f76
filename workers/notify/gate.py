"""The ProviderGate: one push provider behind bounded concurrency, a rate limit, a pause for
its `Retry-After`, and a circuit breaker, so a burst of chat never becomes a burst of requests.

Theory of operation. `send(target, notification, body)` passes, in this order:

1. the circuit breaker: open means `Unavailable` at once, without a request (the worker's
   retry queue brings the notification back later);
2. a pause the provider asked for (a 429's `Retry-After`, or a 503's): up to
   `max_retry_wait` it is waited out here, longer means `RateLimited` at once;
3. the concurrency bound (an `asyncio.Semaphore` of `concurrency` slots, held for the request
   only) and the token bucket (`rate` requests a second; 0: none);
4. the provider's request. Its answer feeds the breaker: success, a gone subscription and a
   rejected notification close it (the service answered); `Unavailable` counts a failure
   (refused credentials open it for the whole cooldown); `RateLimited` pauses every request
   to the provider for its `Retry-After` (or an exponential backoff when it named none).

Errors propagate unchanged: retries belong to the worker's retry queues (backoff, then the
dead-letter queue), so no handler holds a slot while it waits for a second try. The bounds,
the bucket and the breaker belong to the gate: one per provider per process, shared by every
handler.
"""

from __future__ import annotations

import asyncio
import time

from schemas.models import PushNotification
from workers.notify.providers import (
    PushProvider,
    RateLimited,
    Rejected,
    SubscriptionGone,
    Target,
    Unavailable,
)
from workers.notify.settings import GateLimits
from workers.resilience import Backoff, CircuitBreaker, Clock, TokenBucket


class ProviderGate:
    def __init__(
        self, provider: PushProvider, limits: GateLimits, *, clock: Clock = time.monotonic
    ) -> None:
        self.provider = provider
        self.limits = limits
        self.breaker = CircuitBreaker(
            failures=limits.breaker_failures, cooldown=limits.breaker_cooldown, clock=clock
        )
        self._bucket = TokenBucket(limits.rate, max(1, int(limits.rate)), clock=clock)
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._backoff = Backoff(1.0, 60.0)
        self._throttled = 0  # 429s in a row without a Retry-After

    @property
    def name(self) -> str:
        return self.provider.name

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        name = self.name
        if wait := self.breaker.before_call():
            raise Unavailable(name, f"circuit open: {self.breaker.reason}", wait)
        paused = self._bucket.paused_for()
        if paused > self.limits.max_retry_wait:
            self.breaker.inconclusive()
            raise RateLimited(name, "the provider asked us to wait", paused)
        try:
            async with self._slots:
                await self._bucket.acquire()
                await self.provider.send(target, notification, body)
        except RateLimited as exc:
            self.breaker.inconclusive()
            if exc.retry_after is None:
                self._throttled += 1
                self._bucket.pause(self._backoff.delay(self._throttled))
            else:
                self._bucket.pause(exc.retry_after)
            raise
        except Unavailable as exc:
            if exc.credentials:
                self.breaker.trip(self.limits.breaker_cooldown, str(exc))
            else:
                self.breaker.failed(str(exc))
            if exc.retry_after is not None:
                self._bucket.pause(exc.retry_after)
            raise
        except (SubscriptionGone, Rejected):
            self._answered()
            raise
        except BaseException:
            self.breaker.inconclusive()  # a bug or a cancel must not keep the probe
            raise
        self._answered()

    def _answered(self) -> None:
        self.breaker.succeeded()
        self._throttled = 0
