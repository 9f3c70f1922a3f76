"""What asking for a translation can come to, as data the worker acts on.

- `Translation` (providers.py): done; `cached` says it came from the cache.
- `RetryLater`: not now, and not the text's fault. The worker keeps the message and asks again
  after `after` seconds (its retry queue); nothing is lost and no chat message waits for it.
  `reason` says why: the provider is rate limiting, down, out of quota, refusing our
  credentials, or its circuit breaker is open. `detail` is the provider's own words.
- `Untranslatable`: never, with this provider (unsupported pair, a text it refuses). The
  worker drops that translation and moves on; asking again cannot help.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from workers.translate.providers import Translation


class Delay(enum.Enum):
    RATE_LIMITED = "rate-limited"
    UNAVAILABLE = "unavailable"
    QUOTA_EXCEEDED = "quota-exceeded"
    AUTHENTICATION = "authentication"
    CIRCUIT_OPEN = "circuit-open"


@dataclass(frozen=True, slots=True)
class RetryLater:
    reason: Delay
    after: float
    provider: str
    detail: str


@dataclass(frozen=True, slots=True)
class Untranslatable:
    provider: str
    detail: str


Outcome = Translation | RetryLater | Untranslatable
