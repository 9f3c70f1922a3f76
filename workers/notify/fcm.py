"""Firebase Cloud Messaging, HTTP v1 API, with a service account's OAuth2 token.

Authentication (Google's OAuth 2.0 for server-to-server applications): a JWT signed RS256 with
the service account's private key (`kid` its `private_key_id`; `iss` its `client_email`,
`scope` https://www.googleapis.com/auth/firebase.messaging, `aud` the token endpoint, one
hour) is exchanged at the token endpoint (`grant_type=urn:ietf:params:oauth:grant-type:
jwt-bearer`) for an access token, reused until a minute before its `expires_in`.

Send: `POST {base}/v1/projects/{project}/messages:send`, `Authorization: Bearer <token>`,
body `{"message": {"token": <registration token>, "notification": {title, body},
"data": {...strings...}, "android": {"collapse_key": room, ...}, "apns": {...},
"webpush": {...}}}`; 200 answers `{"name": "projects/.../messages/..."}`.

Errors (the `FcmError` detail's `errorCode`, else the status):

| reply | meaning | what happens |
|---|---|---|
| 404 UNREGISTERED | the app was uninstalled or the token expired | subscription removed |
| 403 SENDER_ID_MISMATCH | the token belongs to another Firebase project | subscription removed |
| 400 INVALID_ARGUMENT on `message.token` | not a registration token | subscription removed |
| 400 INVALID_ARGUMENT (other) | the message itself is invalid | dead-lettered |
| 401 UNAUTHENTICATED | our access token expired or was revoked | a new token, retried |
| 401 THIRD_PARTY_AUTH_ERROR, 403 | credentials refused | retried after the cooldown |
| 429 QUOTA_EXCEEDED | slow down (`Retry-After`) | paused, retried |
| 500 INTERNAL, 503 UNAVAILABLE | FCM is overloaded | retried with backoff |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import orjson

from schemas.models import PushNotification
from workers.notify.http import fail, post
from workers.notify.providers import Rejected, SubscriptionGone, Target, Unavailable
from workers.resilience.http import HttpReply, UnreadableReplyError

NAME = "fcm"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
#: A token is renewed this long before it expires.
TOKEN_MARGIN = 60.0


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a Google service-account key file this provider uses."""

    client_email: str
    private_key: str = field(repr=False)
    private_key_id: str
    token_uri: str
    project_id: str

    @classmethod
    def from_file(cls, path: str) -> ServiceAccount:
        data = orjson.loads(Path(path).read_bytes())
        missing = [
            k
            for k in ("client_email", "private_key", "private_key_id", "token_uri")
            if not isinstance(data.get(k), str)
        ]
        if missing:
            raise ValueError(f"{path}: not a service-account key file (no {', '.join(missing)})")
        return cls(
            client_email=data["client_email"],
            private_key=data["private_key"],
            private_key_id=data["private_key_id"],
            token_uri=data["token_uri"],
            project_id=str(data.get("project_id", "")),
        )


def fcm_message(token: str, notification: PushNotification) -> dict[str, Any]:
    """The `message` of a send request: the notification for every platform, collapsed per
    room, with the push.notification.v1 fields as string data (FCM's data is strings only)."""
    data = {
        "room": notification.room,
        "message_id": notification.message_id,
        "user": notification.user,
        "sent_at": str(notification.sent_at),
    }
    extra: Mapping[str, object] = notification.data or {}
    data.update({k: _string(v) for k, v in extra.items()})
    room = notification.room
    return {
        "token": token,
        "notification": {"title": notification.title, "body": notification.body},
        "data": data,
        "android": {"collapse_key": room[:64], "notification": {"tag": room}},
        "apns": {"headers": {"apns-collapse-id": room[:64]}, "payload": {"aps": {}}},
        "webpush": {"headers": {"Topic": room[:32]}},
    }


def _string(value: object) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


class FcmProvider:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        account: ServiceAccount,
        *,
        project: str | None = None,
        base_url: str = "https://fcm.googleapis.com",
        token_url: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._account = account
        self.project = project or account.project_id
        if not self.project:
            raise ValueError("FCM needs a project id (the service account names none)")
        self.send_url = f"{base_url.rstrip('/')}/v1/projects/{quote(self.project)}/messages:send"
        self.token_url = token_url or account.token_uri
        self.timeout = timeout
        self._clock = clock
        self._token: tuple[float, str] | None = None  # (expiry, access token)
        self._token_lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return NAME

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        token = await self._access_token()
        reply = await post(
            self._session,
            NAME,
            self.send_url,
            timeout=self.timeout,
            data=orjson.dumps({"message": fcm_message(target.address, notification)}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        if reply.status == 200:
            return
        code, token_field = _error_code(reply)
        what = f"HTTP {reply.status} {code}: {reply.text_at('error', 'message') or reply.quote()}"
        if code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or (
            code == "INVALID_ARGUMENT" and token_field
        ):
            raise SubscriptionGone(NAME, what)
        if reply.status == 404:
            raise SubscriptionGone(NAME, what)
        if reply.status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
            self._token = None  # expired or revoked: the retry gets a new one
            raise Unavailable(NAME, what)
        if reply.status == 400:
            raise Rejected(NAME, what)
        fail(reply, NAME, what)

    async def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._token[0] - TOKEN_MARGIN:
            return self._token[1]
        async with self._token_lock:  # one exchange, however many sends wait for it
            if self._token is not None and self._clock() < self._token[0] - TOKEN_MARGIN:
                return self._token[1]
            now = int(self._clock())
            account = self._account
            assertion = jwt.encode(
                {
                    "iss": account.client_email,
                    "scope": SCOPE,
                    "aud": self.token_url,
                    "iat": now,
                    "exp": now + 3600,
                },
                account.private_key,
                algorithm="RS256",
                headers={"kid": account.private_key_id},
            )
            reply = await post(
                self._session,
                NAME,
                self.token_url,
                timeout=self.timeout,
                data={"grant_type": GRANT, "assertion": assertion},
            )
            if reply.status in (400, 401, 403):  # invalid_grant, a revoked or wrong key
                detail = reply.text_at("error_description") or reply.quote()
                raise Unavailable(
                    NAME, f"token endpoint refused the service account: {detail}", credentials=True
                )
            if reply.status != 200:
                fail(reply, NAME, f"token endpoint: {reply.quote()}")
            try:
                data = reply.loads()
                token, lifetime = str(data["access_token"]), float(data.get("expires_in", 3600))
            except (UnreadableReplyError, KeyError, TypeError, ValueError):
                raise Unavailable(NAME, f"token endpoint: {reply.quote()}") from None
            self._token = (now + lifetime, token)
            return token


def _error_code(reply: HttpReply) -> tuple[str, bool]:
    """(the FcmError `errorCode`, else the `status`; whether a BadRequest names the token)."""
    try:
        error = reply.loads().get("error", {})
    except (UnreadableReplyError, AttributeError):
        return "", False
    if not isinstance(error, dict):
        return "", False
    code = str(error.get("status", ""))
    token_field = False
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR and detail.get("errorCode"):
            code = str(detail["errorCode"])
        if detail.get("@type") == BAD_REQUEST:
            fields = [
                v.get("field") for v in detail.get("fieldViolations") or () if isinstance(v, dict)
            ]
            token_field = "message.token" in fields
    return code, token_field
