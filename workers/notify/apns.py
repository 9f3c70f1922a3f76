"""Apple Push Notification service over HTTP/2, with token-based (JWT) authentication.

APNs speaks only HTTP/2: requests go through an `httpx.AsyncClient(http2=True)` (the h2
package), one connection multiplexing every request. Authentication is a provider token: a
JWT signed ES256 with the team's .p8 key (`alg` ES256, `kid` the key id; `iss` the team id,
`iat` now), sent as `authorization: bearer <jwt>` and reused for 50 minutes (Apple refuses
tokens older than an hour and throttles more than one new token per 20 minutes).

Send: `POST {base}/3/device/<device token>` with `apns-topic` (the app's bundle id),
`apns-push-type: alert`, `apns-priority: 10`, `apns-expiration` (now + the TTL) and
`apns-collapse-id` (the room, so a device shows one notification per room), body
`{"aps": {"alert": {"title", "body"}, "badge": <unread>, "sound": "default",
"thread-id": <room>}, "room", "message_id", "sender"}`.

Replies: 200 delivered to APNs. Errors carry `{"reason": ...}`:

| reply | what happens |
|---|---|
| 410 Unregistered, 400 BadDeviceToken, 400 DeviceTokenNotForTopic | subscription removed |
| 403 ExpiredProviderToken | a new token, retried |
| 403 InvalidProviderToken (and other 403) | credentials refused: retried after the cooldown |
| 429 TooManyRequests | slow down, retried |
| 500 InternalServerError, 503 ServiceUnavailable, Shutdown | retried with backoff |
| other 4xx (PayloadTooLarge, BadCollapseId, ...) | dead-lettered |
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import orjson

from schemas.models import PushNotification
from workers.notify.providers import (
    RateLimited,
    Rejected,
    SubscriptionGone,
    Target,
    Unavailable,
)
from workers.resilience.retry_after import parse_retry_after

NAME = "apns"
#: How long one provider token is used (Apple: at most 60 min, new ones at most every 20).
TOKEN_LIFE = 50 * 60
GONE = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{64,200}")


def apns_payload(notification: PushNotification) -> dict[str, Any]:
    data: dict[str, Any] = dict(notification.data or {})
    aps: dict[str, Any] = {
        "alert": {"title": notification.title, "body": notification.body},
        "sound": "default",
        "thread-id": notification.room,
    }
    if isinstance(data.get("unread"), int) and not isinstance(data.get("unread"), bool):
        aps["badge"] = data["unread"]
    return {
        "aps": aps,
        "room": notification.room,
        "message_id": notification.message_id,
        **({"sender": data["sender"]} if isinstance(data.get("sender"), str) else {}),
    }


class ApnsProvider:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        key: str,
        key_id: str,
        team_id: str,
        topic: str,
        base_url: str = "https://api.push.apple.com",
        ttl: int = 86_400,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._key = key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._token: tuple[float, str] | None = None  # (issued at, jwt)

    @property
    def name(self) -> str:
        return NAME

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        device = target.address
        if not DEVICE_TOKEN.fullmatch(device):
            raise SubscriptionGone(NAME, "not an APNs device token (64+ hex digits)")
        now = self._clock()
        headers = {
            "authorization": f"bearer {self._provider_token(now)}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(int(now) + self.ttl),
            "apns-collapse-id": notification.room[:64],
            "content-type": "application/json",
        }
        try:
            response = await self._client.post(
                f"{self.base_url}/3/device/{device}",
                content=orjson.dumps(apns_payload(notification)),
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            raise Unavailable(NAME, f"no reply within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Unavailable(NAME, f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 200:
            return
        reason = _reason(response.content)
        what = f"HTTP {response.status_code} {reason}".rstrip()
        status = response.status_code
        if reason in GONE or status == 410:
            raise SubscriptionGone(NAME, what)
        if status == 403:
            self._token = None
            raise Unavailable(NAME, what, credentials=reason != "ExpiredProviderToken")
        if status == 429:
            raise RateLimited(NAME, what, parse_retry_after(response.headers.get("retry-after")))
        if 400 <= status < 500:
            raise Rejected(NAME, what)
        raise Unavailable(NAME, what, parse_retry_after(response.headers.get("retry-after")))

    def _provider_token(self, now: float) -> str:
        if self._token is not None and now - self._token[0] < TOKEN_LIFE:
            return self._token[1]
        token = jwt.encode(
            {"iss": self.team_id, "iat": int(now)},
            self._key,
            algorithm="ES256",
            headers={"kid": self.key_id},
        )
        self._token = (now, token)
        return token


def _reason(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else ""
