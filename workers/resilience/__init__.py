"""How a worker calls a third-party service without hammering it: pieces any provider uses.

- backoff.py: `Backoff`, exponential waits with jitter between retries.
- breaker.py: `CircuitBreaker`, stop calling a service that keeps failing, probe it later.
- limits.py: `TokenBucket`, requests per second with a burst, and a pause (a 429's wait).
- retry_after.py: `parse_retry_after`, the wait a `Retry-After` header asks for.
- http.py: `fetch`, one aiohttp request with its reply read whole (`HttpReply`).

The translation providers (`workers.translate`) and the push providers (`workers.notify`)
both use them; only http.py does I/O, and time comes from an injected clock.
"""

from workers.resilience.backoff import Backoff
from workers.resilience.breaker import CircuitBreaker, State
from workers.resilience.limits import Clock, TokenBucket
from workers.resilience.retry_after import parse_retry_after

__all__ = ["Backoff", "CircuitBreaker", "Clock", "State", "TokenBucket", "parse_retry_after"]
