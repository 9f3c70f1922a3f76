"""Web Push (RFC 8030) with VAPID (RFC 8292), the payload encrypted per RFC 8291 (aes128gcm).

A browser's `PushSubscription` gives the endpoint (a URL at its push service) and two keys:
`p256dh` (the browser's P-256 public key) and `auth` (a 16-byte secret). For each
notification this provider

1. encrypts the push.notification.v1 JSON with pywebpush's `WebPusher.encode` (RFC 8291:
   an ephemeral ECDH key, HKDF with the auth secret, AES-128-GCM in one aes128gcm record,
   the sender's public key in the header);
2. signs a VAPID JWT (ES256; `aud` the endpoint's origin, `exp` 12 hours ahead, `sub` the
   operator's contact) with py_vapid, reused per origin until an hour before it expires, and
   sends `Authorization: vapid t=<jwt>, k=<public key>`;
3. POSTs it with `TTL`, `Urgency: normal` and `Topic` (the room, so the push service keeps
   only the latest undelivered notification of a room for a device).

201 (or any 2xx) is delivered to the push service. 404 and 410 mean the subscription expired
or was unsubscribed: it is removed. 413 and other 4xx are refused for good; 401/403 mean the
VAPID key or claims were refused; 429 and 5xx are retried.

Endpoints are checked against `hosts` (the push services the deployment allows; a
subscription elsewhere is refused, so a client cannot make the worker POST to any URL).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from schemas.models import PushNotification
from workers.notify.http import fail, post
from workers.notify.providers import Rejected, SubscriptionGone, Target

NAME = "webpush"
#: A VAPID token's life (RFC 8292 allows at most 24 h) and how early a new one is signed.
TOKEN_LIFE = 12 * 3600
TOKEN_MARGIN = 3600
TOPIC_MAX = 32


def load_vapid_key(value: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID private key from PEM text, the path of a PEM file, or the raw 32-byte
    private scalar in base64url (what `web-push generate-vapid-keys` prints)."""
    text = value.strip()
    if not text.startswith("-----BEGIN") and "/" in text and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8").strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be a P-256 (prime256v1) private key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The `applicationServerKey` browsers subscribe with: the uncompressed public point."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def topic_for(room: str) -> str:
    """The `Topic` header: at most 32 characters of the base64url alphabet (room ids are)."""
    if len(room) <= TOPIC_MAX:
        return room
    return base64.urlsafe_b64encode(hashlib.sha256(room.encode()).digest()).decode()[:TOPIC_MAX]


def host_allowed(endpoint: str, hosts: Sequence[str]) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    return "*" in hosts or any(host == h or host.endswith("." + h) for h in hosts)


class WebPushProvider:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        subject: str,
        hosts: Sequence[str],
        ttl: int = 86_400,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._vapid = Vapid(private_key)
        self.subject = subject
        self.hosts = tuple(h.lower() for h in hosts)
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._tokens: dict[str, tuple[float, str]] = {}  # audience -> (expiry, header)

    @property
    def name(self) -> str:
        return NAME

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        endpoint = target.address
        if not host_allowed(endpoint, self.hosts):
            raise Rejected(NAME, f"endpoint host not allowed: {urlsplit(endpoint).hostname}")
        try:
            pusher = WebPusher(
                {"endpoint": endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
            )
            encrypted: bytes = pusher.encode(body, "aes128gcm")["body"]
        except (WebPushException, ValueError) as exc:
            raise Rejected(NAME, f"cannot encrypt for this subscription: {exc}") from None
        headers = {
            "Authorization": self._authorization(endpoint),
            "TTL": str(self.ttl),
            "Urgency": "normal",
            "Topic": topic_for(notification.room),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        reply = await post(
            self._session, NAME, endpoint, timeout=self.timeout, data=encrypted, headers=headers
        )
        if 200 <= reply.status < 300:
            return
        if reply.status in (404, 410):
            raise SubscriptionGone(NAME, f"HTTP {reply.status}: {reply.quote()}")
        fail(reply, NAME)

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = self._clock()
        cached = self._tokens.get(audience)
        if cached is not None and now < cached[0] - TOKEN_MARGIN:
            return cached[1]
        expiry = int(now) + TOKEN_LIFE
        claims = {"aud": audience, "exp": expiry, "sub": self.subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        self._tokens[audience] = (expiry, header)
        return header
