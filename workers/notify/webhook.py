"""The webhook: every notification POSTed, signed, to one URL the deployment configures.

For teams that deliver notifications their own way (SMS, e-mail, an in-house push service)
and for the demo. The request:

    POST <STOMPGATE_NOTIFY_WEBHOOK_URL>
    Content-Type: application/json
    X-Stompgate-Event: push.notification.v1
    X-Stompgate-Timestamp: 1767225600                      (Unix seconds, when it was signed)
    X-Stompgate-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

    <the push.notification.v1 JSON: user, room, message_id, title, body, sent_at, data>

How a receiver verifies it (scripts/webhook_sink.py does exactly this):

1. Take the raw body bytes as received (do not re-serialize the JSON).
2. Compute `hmac.new(secret, timestamp.encode() + b"." + body, "sha256").hexdigest()` and
   compare it with the signature header's hex in constant time (`hmac.compare_digest`).
3. Refuse a timestamp more than 5 minutes from your clock: a captured request cannot be
   replayed later, and the signature covers the timestamp, so it cannot be changed.
4. A retried delivery carries the same body (same `user`, `room`, `message_id`): make the
   side effect idempotent on those.

Any 2xx is success. 429 (with `Retry-After`) and 5xx are retried; 401/403 mean the secret
was refused; any other 4xx refuses this notification for good (dead-lettered).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp

from schemas.models import PushNotification
from workers.notify.http import fail, post
from workers.notify.providers import Target

NAME = "webhook"
SIGNATURE = "X-Stompgate-Signature"
TIMESTAMP = "X-Stompgate-Timestamp"
EVENT = "X-Stompgate-Event"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Stompgate-Signature` value for `body` signed at `timestamp`."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes, timestamp: str, body: bytes, header: str, now: float, tolerance: float = 300
) -> bool:
    """Whether `header` signs `body` at `timestamp`, and the timestamp is within `tolerance`
    seconds of `now`: what a receiver checks."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookProvider:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        secret: bytes,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._secret = secret
        self.timeout = timeout
        self._clock = clock

    @property
    def name(self) -> str:
        return NAME

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT: "push.notification.v1",
            TIMESTAMP: timestamp,
            SIGNATURE: signature(self._secret, timestamp, body),
        }
        reply = await post(
            self._session, NAME, target.address, timeout=self.timeout, data=body, headers=headers
        )
        if not 200 <= reply.status < 300:
            fail(reply, NAME)
