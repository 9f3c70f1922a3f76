"""The one interface every push provider implements, what it sends to, and what it may raise.

A provider is an adapter: `send(target, notification, body)` turns one notification into one
request to its service (Web Push, FCM, APNs, the webhook) and the reply into nothing (sent) or
one of the errors below. It holds no policy: no retries, no waiting, no limits; the
`ProviderGate` (gate.py) wraps it with those, and the worker acts on the errors:

- `SubscriptionGone`: the service says this target no longer exists (Web Push 404/410, FCM
  UNREGISTERED, APNs 410 Unregistered / 400 BadDeviceToken). The subscription is removed.
- `Rejected`: the service refused this notification for what it is (a malformed request, a
  payload too large): it can never succeed, so it goes to the dead-letter queue at once.
- `RateLimited`: slow down (`retry_after`: the service's wait, if it said). Every request to
  the provider pauses for it; the notification is retried.
- `Unavailable`: 5xx, timeout, connection refused, an unreadable reply, or our credentials
  refused (`credentials=True`: the breaker stays open for its cooldown). Retried with backoff;
  counts as a failure for the provider's circuit breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from schemas.models import PushNotification

#: The target id of the deployment's webhook (subscription ids never look like this).
WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class Target:
    """Where one notification goes: a user's stored subscription, or the webhook.

    `kind` names the provider (`webpush`, `fcm`, `apns`, `webhook`); `address` is the Web Push
    endpoint, the FCM registration token, the APNs device token, or the webhook URL.
    """

    id: str
    kind: str
    address: str
    p256dh: str = ""
    auth: str = ""


class PushProvider(Protocol):
    """What the gate needs from a provider."""

    @property
    def name(self) -> str:
        """Short, stable name, equal to the `kind` of the targets it serves."""
        ...

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        """Deliver `notification` (its push.notification.v1 JSON is `body`) to `target`;
        return when the service accepted it, else raise a `ProviderError`."""
        ...


class ProviderError(Exception):
    """A send failed; `provider` names the provider."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class SubscriptionGone(ProviderError):  # noqa: N818 - reads as what the service said
    """The target is gone for good: remove the subscription."""


class Rejected(ProviderError):  # noqa: N818
    """This notification can never succeed with this service."""


class RateLimited(ProviderError):  # noqa: N818
    """Too many requests; `retry_after` is the service's own wait in seconds, if it gave one."""

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class Unavailable(ProviderError):  # noqa: N818
    """The service is down, unreachable, or refused our credentials (`credentials`)."""

    def __init__(
        self,
        provider: str,
        message: str,
        retry_after: float | None = None,
        *,
        credentials: bool = False,
    ) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after
        self.credentials = credentials
