"""Notify worker settings: a frozen dataclass built from the environment and passed in.

`STOMPGATE_NOTIFY_` + name (workers/README.md explains each provider):

| name | default | meaning |
|---|---|---|
| WINDOW | 10 | seconds: at most one notification per user per room per window |
| PREVIEW_CHARS | 120 | characters of the message text a notification carries (0: none) |
| VAPID_PRIVATE_KEY | - | Web Push: VAPID key (PEM, a PEM file, or raw base64url); off without |
| VAPID_SUBJECT | mailto:push@stompgate.invalid | Web Push: the `sub` claim (mailto: or https:) |
| WEBPUSH_TTL | 86400 | Web Push: seconds the push service keeps it for an offline device |
| WEBPUSH_HOSTS | (the big four) | endpoint hosts allowed, with subdomains; `*`: any |
| WEBHOOK_URL | - | the deployment's webhook, sent every notification; off without |
| WEBHOOK_SECRET | - | HMAC-SHA256 key of the webhook's signature (required with the URL) |
| FCM_CREDENTIALS | - | FCM: the service-account JSON file; FCM is off without it |
| FCM_PROJECT | - | FCM: project id (default: the service account's `project_id`) |
| FCM_URL | https://fcm.googleapis.com | FCM: the API's base URL |
| FCM_TOKEN_URL | - | FCM: OAuth2 token endpoint (default: the account's `token_uri`) |
| APNS_KEY | - | APNs: the token-signing key (.p8 file); APNs is off without it |
| APNS_KEY_ID, APNS_TEAM_ID | - | APNs: the key's id, the team id (required with the key) |
| APNS_TOPIC | - | APNs: the app's bundle id (required with the key) |
| APNS_URL | https://api.push.apple.com | APNs: base URL (development: api.sandbox...) |
| APNS_CA_FILE | - | APNs: a CA bundle to trust instead of the system's |
| CONCURRENCY | 8 | requests in flight at once, per provider |
| RATE | 0 | requests per second, per provider (0: no limit) |
| TIMEOUT | 10 | seconds for one request |
| MAX_ATTEMPTS | 8 | sends of one notification before the dead-letter queue |
| BACKOFF | 1,5,30,120 | seconds before retry 1, 2, 3, ... (the last one repeats) |
| MAX_RETRY_WAIT | 10 | a provider's `Retry-After` up to this is waited out in the call |
| BREAKER_FAILURES | 5 | consecutive failures that open a provider's circuit breaker |
| BREAKER_COOLDOWN | 30 | seconds an open breaker waits before a probe |

The big four Web Push services: fcm.googleapis.com (Chrome), push.services.mozilla.com
(Firefox), notify.windows.com (Edge), push.apple.com (Safari). A longer `Retry-After` than
MAX_RETRY_WAIT sends the notification back to the retry queue.

Room members, presence and read pointers are read from the gateway's Redis (`chatstate`),
with its `STOMPGATE_REDIS_URL` and `STOMPGATE_REDIS_PREFIX`; room rosters are under
`STOMPGATE_MEMBERSHIP_PREFIX` (the ACL's). Subscriptions and mutes, and the rooms' members
when Redis has lost a roster, are in the store of `STOMPGATE_STORE` (the workers' setting).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatstate.client import check_key_prefixes
from chatstate.deployment import DEFAULT_DEPLOYMENT, default_redis_prefix
from workers.env import EnvReader

PREFIX = "STOMPGATE_NOTIFY_"
DEFAULT_WEBPUSH_HOSTS = (
    "fcm.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
)


@dataclass(frozen=True, slots=True)
class GateLimits:
    """How the worker treats each provider (the limits rows of the table above)."""

    concurrency: int = 8
    rate: float = 0.0
    timeout: float = 10.0
    max_retry_wait: float = 10.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Collapse window, providers and their credentials (never in `repr`), limits."""

    window: float = 10.0
    preview_chars: int = 120
    vapid_private_key: str | None = field(default=None, repr=False)
    vapid_subject: str = "mailto:push@stompgate.invalid"
    webpush_ttl: int = 86_400
    webpush_hosts: tuple[str, ...] = DEFAULT_WEBPUSH_HOSTS
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    fcm_credentials: str | None = None
    fcm_project: str | None = None
    fcm_url: str = "https://fcm.googleapis.com"
    fcm_token_url: str | None = None
    apns_key: str | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None
    apns_url: str = "https://api.push.apple.com"
    apns_ca_file: str | None = None
    limits: GateLimits = field(default_factory=GateLimits)
    max_attempts: int = 8
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "stompgate:"
    membership_prefix: str = "stompgate:"

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ValueError(f"{PREFIX}WINDOW must be > 0")
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(f"{PREFIX}WEBHOOK_URL needs {PREFIX}WEBHOOK_SECRET")
        apns = (self.apns_key_id, self.apns_team_id, self.apns_topic)
        if self.apns_key and not all(apns):
            raise ValueError(
                f"{PREFIX}APNS_KEY needs {PREFIX}APNS_KEY_ID, {PREFIX}APNS_TEAM_ID and "
                f"{PREFIX}APNS_TOPIC"
            )
        if self.max_attempts < 1 or not self.backoff or min(self.backoff) <= 0:
            raise ValueError(f"{PREFIX}MAX_ATTEMPTS must be >= 1 and {PREFIX}BACKOFF > 0")
        try:
            check_key_prefixes(
                self.redis_url,
                [
                    ("STOMPGATE_REDIS_PREFIX", self.redis_prefix),
                    ("STOMPGATE_MEMBERSHIP_PREFIX", self.membership_prefix),
                ],
            )
        except ValueError as exc:
            raise ValueError(f"STOMPGATE_REDIS_URL: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifySettings:
        env = EnvReader(os.environ if environ is None else environ)
        d, dl, p = cls(), GateLimits(), PREFIX
        return cls(
            window=env.number(p + "WINDOW", d.window, positive=True),
            preview_chars=env.count(p + "PREVIEW_CHARS", d.preview_chars, positive=False),
            vapid_private_key=env.text(p + "VAPID_PRIVATE_KEY"),
            vapid_subject=env.text(p + "VAPID_SUBJECT") or d.vapid_subject,
            webpush_ttl=env.count(p + "WEBPUSH_TTL", d.webpush_ttl, positive=False),
            webpush_hosts=env.words(p + "WEBPUSH_HOSTS") or d.webpush_hosts,
            webhook_url=env.text(p + "WEBHOOK_URL"),
            webhook_secret=env.text(p + "WEBHOOK_SECRET"),
            fcm_credentials=env.text(p + "FCM_CREDENTIALS"),
            fcm_project=env.text(p + "FCM_PROJECT"),
            fcm_url=env.text(p + "FCM_URL") or d.fcm_url,
            fcm_token_url=env.text(p + "FCM_TOKEN_URL"),
            apns_key=env.text(p + "APNS_KEY"),
            apns_key_id=env.text(p + "APNS_KEY_ID"),
            apns_team_id=env.text(p + "APNS_TEAM_ID"),
            apns_topic=env.text(p + "APNS_TOPIC"),
            apns_url=env.text(p + "APNS_URL") or d.apns_url,
            apns_ca_file=env.text(p + "APNS_CA_FILE"),
            limits=GateLimits(
                concurrency=env.count(p + "CONCURRENCY", dl.concurrency),
                rate=env.number(p + "RATE", dl.rate),
                timeout=env.number(p + "TIMEOUT", dl.timeout, positive=True),
                max_retry_wait=env.number(p + "MAX_RETRY_WAIT", dl.max_retry_wait),
                breaker_failures=env.count(p + "BREAKER_FAILURES", dl.breaker_failures),
                breaker_cooldown=env.number(
                    p + "BREAKER_COOLDOWN", dl.breaker_cooldown, positive=True
                ),
            ),
            max_attempts=env.count(p + "MAX_ATTEMPTS", d.max_attempts),
            backoff=env.numbers(p + "BACKOFF") or d.backoff,
            redis_url=env.text("STOMPGATE_REDIS_URL") or d.redis_url,
            redis_prefix=env.text("STOMPGATE_REDIS_PREFIX")
            or default_redis_prefix(env.text("STOMPGATE_DEPLOYMENT") or DEFAULT_DEPLOYMENT),
            membership_prefix=env.text("STOMPGATE_MEMBERSHIP_PREFIX") or d.membership_prefix,
        )
