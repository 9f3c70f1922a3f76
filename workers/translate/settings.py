"""Translation settings: frozen dataclasses built from the environment and passed in.

`STOMPGATE_TRANSLATE_` + name (workers/README.md has the full table):

| name | default | meaning |
|---|---|---|
| PROVIDER | apertium | apertium, deepl, libretranslate or papago |
| APERTIUM_URL | http://127.0.0.1:2737 | apertium-apy |
| DEEPL_KEY, DEEPL_URL | -, by the key | auth key; `...:fx` keys use the Free API's URL |
| LIBRETRANSLATE_URL, _KEY | http://127.0.0.1:5000, - | server, its `api_key` if it wants one |
| PAPAGO_KEY_ID, PAPAGO_KEY | - | NAVER Cloud client id and secret |
| PAPAGO_URL | https://papago.apigw.ntruss.com/nmt/v1 | Papago Text Translation |
| CACHE_TTL | 604800 | seconds a cached translation lives (7 days) |
| CACHE_CONCURRENCY | 16 | Redis commands of the cache in flight at once |
| DETECT_LANGUAGES | en,es,fr,de,it,pt,nl,ru,ja,ko,zh | what detection chooses from |
| DETECT_MIN_CONFIDENCE | 0.3 | below it, a text's language is "unknown" |
| TARGETS | - | languages every message goes into besides its room's and members' (en,es) |
| ROOM_TTL | 5 | seconds the worker reuses the languages a room needs |
| RETRY_FOR | 86400 | seconds a message delayed by a provider outage is retried; then: DLQ |

The cache uses the gateway's `STOMPGATE_REDIS_URL` and `STOMPGATE_REDIS_PREFIX`.

Limits, per provider (`ProviderLimits`): `STOMPGATE_TRANSLATE_<NAME>` sets one for every
provider, `STOMPGATE_TRANSLATE_<PROVIDER>_<NAME>` (e.g. `..._DEEPL_RATE=5`) for one, and wins:

| NAME | default | meaning |
|---|---|---|
| CONCURRENCY | 4 | requests in flight at once |
| RATE, BURST | 10, 10 | requests per second (0: no limit); how many may go at once |
| TIMEOUT | 10 | seconds for one request |
| MAX_ATTEMPTS | 3 | requests per translation before "retry later" (429, 5xx) |
| BACKOFF_BASE, BACKOFF_MAX | 0.5, 30 | seconds: exponential backoff between attempts |
| MAX_RETRY_WAIT | 10 | longest wait spent inside a call; a longer one is "retry later" |
| BREAKER_FAILURES | 5 | consecutive failures that open the breaker |
| BREAKER_COOLDOWN | 30 | seconds it stays open before a probe |
| LOCKOUT | 3600 | seconds it stays open after a quota or credentials refusal |
| PAIRS_TTL | 3600 | seconds the provider's list of language pairs is trusted |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatstate.client import check_key_prefixes
from chatstate.deployment import DEFAULT_DEPLOYMENT, default_redis_prefix
from workers.env import EnvReader
from workers.translate import languages

PREFIX = "STOMPGATE_TRANSLATE_"
PROVIDERS = ("apertium", "deepl", "libretranslate", "papago")
#: The `ProviderLimits` fields that are counts (whole numbers >= 1).
WHOLE = ("concurrency", "burst", "max_attempts", "breaker_failures")


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """How the Translator treats one provider (the table above, in seconds and counts)."""

    concurrency: int = 4
    rate: float = 10.0
    burst: int = 10
    timeout: float = 10.0
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_wait: float = 10.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    lockout: float = 3600.0
    pairs_ttl: float = 3600.0

    def __post_init__(self) -> None:
        for name in WHOLE:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("timeout", "backoff_base", "breaker_cooldown", "lockout", "pairs_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.rate < 0 or self.max_retry_wait < 0:
            raise ValueError("rate and max_retry_wait must be >= 0")
        if self.backoff_max < self.backoff_base:
            raise ValueError("backoff_max must be >= backoff_base")


@dataclass(frozen=True, slots=True)
class TranslateSettings:
    """Which provider, where it is, its credentials (never in `repr`), cache and detection."""

    provider: str = "apertium"
    apertium_url: str = "http://127.0.0.1:2737"
    deepl_key: str | None = field(default=None, repr=False)
    deepl_url: str | None = None
    libretranslate_url: str = "http://127.0.0.1:5000"
    libretranslate_key: str | None = field(default=None, repr=False)
    papago_key_id: str | None = field(default=None, repr=False)
    papago_key: str | None = field(default=None, repr=False)
    papago_url: str = "https://papago.apigw.ntruss.com/nmt/v1"
    cache_ttl: float = 7 * 86_400.0
    cache_concurrency: int = 16
    detect_languages: tuple[str, ...] = (
        "en", "es", "fr", "de", "it", "pt", "nl", "ru", "ja", "ko", "zh",
    )  # fmt: skip
    detect_min_confidence: float = 0.3
    #: Translation worker: languages every message goes into, whatever its room needs.
    targets: tuple[str, ...] = ()
    #: Translation worker: seconds a room's languages are reused before they are read again.
    room_ttl: float = 5.0
    #: Translation worker: seconds a delayed message keeps being retried (then: dead letter).
    retry_for: float = 86_400.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "stompgate:"
    #: Limits by provider name; a provider not named here gets `ProviderLimits()`.
    limits: Mapping[str, ProviderLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(
                f"{PREFIX}PROVIDER must be one of {', '.join(PROVIDERS)}, got {self.provider!r}"
            )
        try:
            object.__setattr__(self, "targets", tuple(languages.normalize(t) for t in self.targets))
        except ValueError as exc:
            raise ValueError(f"{PREFIX}TARGETS: {exc}") from None
        try:
            check_key_prefixes(self.redis_url, [("STOMPGATE_REDIS_PREFIX", self.redis_prefix)])
        except ValueError as exc:
            raise ValueError(f"STOMPGATE_REDIS_URL: {exc}") from None

    def limits_for(self, provider: str) -> ProviderLimits:
        return self.limits.get(provider) or ProviderLimits()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TranslateSettings:
        env = EnvReader(os.environ if environ is None else environ)
        d = cls()
        return cls(
            provider=(env.text(PREFIX + "PROVIDER") or d.provider).lower(),
            apertium_url=env.text(PREFIX + "APERTIUM_URL") or d.apertium_url,
            deepl_key=env.text(PREFIX + "DEEPL_KEY"),
            deepl_url=env.text(PREFIX + "DEEPL_URL"),
            libretranslate_url=env.text(PREFIX + "LIBRETRANSLATE_URL") or d.libretranslate_url,
            libretranslate_key=env.text(PREFIX + "LIBRETRANSLATE_KEY"),
            papago_key_id=env.text(PREFIX + "PAPAGO_KEY_ID"),
            papago_key=env.text(PREFIX + "PAPAGO_KEY"),
            papago_url=env.text(PREFIX + "PAPAGO_URL") or d.papago_url,
            cache_ttl=env.number(PREFIX + "CACHE_TTL", d.cache_ttl, positive=True),
            cache_concurrency=env.count(PREFIX + "CACHE_CONCURRENCY", d.cache_concurrency),
            detect_languages=env.words(PREFIX + "DETECT_LANGUAGES") or d.detect_languages,
            detect_min_confidence=env.number(
                PREFIX + "DETECT_MIN_CONFIDENCE", d.detect_min_confidence
            ),
            targets=env.words(PREFIX + "TARGETS"),
            room_ttl=env.number(PREFIX + "ROOM_TTL", d.room_ttl),
            retry_for=env.number(PREFIX + "RETRY_FOR", d.retry_for, positive=True),
            redis_url=env.text("STOMPGATE_REDIS_URL") or d.redis_url,
            redis_prefix=env.text("STOMPGATE_REDIS_PREFIX")
            or default_redis_prefix(env.text("STOMPGATE_DEPLOYMENT") or DEFAULT_DEPLOYMENT),
            limits={name: _limits(env, name) for name in PROVIDERS},
        )


def _limits(env: EnvReader, provider: str) -> ProviderLimits:
    values: dict[str, float | int] = {}
    used: list[str] = []
    for f in dataclasses.fields(ProviderLimits):
        suffix = f.name.upper()
        name = f"{PREFIX}{provider.upper()}_{suffix}"
        if env.text(name) is None:
            name = PREFIX + suffix
        if env.text(name) is None:
            continue
        used.append(name)
        values[f.name] = env.count(name, 1) if f.name in WHOLE else env.number(name, 0.0)
    try:
        return ProviderLimits(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{provider} limits: {exc} (set by {', '.join(used)})") from None
