"""The one interface every translation provider implements, and the errors it may raise.

A provider is an adapter: it turns `translate(texts, source, target)` into one HTTP request to
its service and the reply into `Translation`s, or into one of the errors below. It holds no
policy: no retries, no waiting, no cache, no limits. The `Translator` (translator.py) wraps a
provider with all of that and turns the errors into outcomes a worker can act on.

Language tags are the gateway's: ISO 639-1, lower case, optionally with a region or script
(`en`, `es`, `pt-BR`, `zh-TW`; see languages.py). Each provider maps them to its own codes.

Errors, by what the caller should do (what the Translator does with each):

- `AuthenticationError`: the credentials are missing, wrong or not allowed. No retry; the
  breaker opens for the long cooldown.
- `QuotaExceededError`: the account's quota is used up, or the service banned this client.
  No retry; the breaker opens for the long cooldown.
- `RateLimitedError`: slow down (`retry_after`: the service's wait in seconds, if it said).
  The provider is paused for the wait, then the request is retried.
- `ProviderUnavailableError`: 5xx, timeout, connection refused, a reply it cannot read.
  Backoff and retry; counts as a failure for the breaker.
- `UnsupportedLanguageError`: the provider does not translate that pair. Untranslatable.
- `InvalidRequestError`: this request can never succeed (too long, malformed). Untranslatable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class Translation:
    """One translated text, and who translated it (`cached`: it came from the cache)."""

    text: str
    source: str
    target: str
    provider: str
    cached: bool = False


class LanguagePair(NamedTuple):
    source: str
    target: str


class TranslationProvider(Protocol):
    """What the Translator needs from a provider."""

    @property
    def name(self) -> str:
        """Short, stable name: "apertium", "deepl", "libretranslate", "papago"."""
        ...

    @property
    def max_batch(self) -> int:
        """How many texts one `translate` call may carry (one request)."""
        ...

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        """Translate every text from `source` to `target` in one request; one result per text,
        in order. Raises a `ProviderError`."""
        ...

    async def pairs(self) -> frozenset[LanguagePair]:
        """The (source, target) pairs the provider translates, in the gateway's tags."""
        ...


class ProviderError(Exception):
    """A provider call failed; `provider` names the provider."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class AuthenticationError(ProviderError):
    """The service refused our credentials (or they are not configured)."""


class QuotaExceededError(ProviderError):
    """The account's quota is used up, or the service banned this client for a while."""


class RateLimitedError(ProviderError):
    """Too many requests; `retry_after` is the service's own wait in seconds, if it gave one."""

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ProviderUnavailableError(ProviderError):
    """The service is down, overloaded, unreachable or answered something unreadable."""

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class UnsupportedLanguageError(ProviderError):
    """The provider does not translate this language pair."""


class InvalidRequestError(ProviderError):
    """The service rejected this request for what it is (too long, malformed): never retry."""
