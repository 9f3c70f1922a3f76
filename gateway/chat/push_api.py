"""HTTP API for push notifications: a user's subscriptions and muted rooms.

Authenticated like the history API (a bearer token; in development mode HTTP Basic with a dev
login): every route acts on the caller's own data only.

| route | does | answers |
|---|---|---|
| `POST /api/me/push-subscriptions` | register a target (JSON below) | 201 (200 if known) |
| `GET /api/me/push-subscriptions` | list them, oldest first | `{"subscriptions": [...]}` |
| `DELETE /api/me/push-subscriptions/{id}` | remove one | 204, or 404 |
| `GET /api/me/mutes` | the rooms muted | `{"rooms": [...]}` |
| `PUT /api/me/mutes/{room}` | mute a room (no notification from it) | 204 |
| `DELETE /api/me/mutes/{room}` | unmute it | 204 |

A subscription is one of:

    {"kind": "webpush", "endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}
    {"kind": "fcm", "token": "<FCM registration token>"}
    {"kind": "apns", "token": "<APNs device token, hex>"}

(`kind` may be left out for Web Push: the browser's `PushSubscription.toJSON()` is accepted
as is.) A subscription is answered as `{"id", "kind", "endpoint" or "token", "created_at"}`;
registering the same target again keeps its id (and updates Web Push keys). A Web Push
endpoint must be `https://` (`http://` only on a loopback host, for development); its keys
must be a P-256 public key (65 bytes) and a 16-byte secret, base64url. At most
`max_subscriptions` per user (409 past it). Errors are `{"error": "..."}` with 400, 401, 403,
404, 409, or 503 when the gateway has no store (`--store`) to keep them in.

Subscriptions and mutes live in the store (`store.PushStore`, the message store's file or
database), so they survive restarts; the notify worker reads them there.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from gateway.chat.destinations import is_valid_room
from store import PushStore, PushSubscription, new_subscription, open_push_store

Authenticate = Callable[[web.Request], Awaitable[str]]
"""request -> user; raises web.HTTPUnauthorized (or web.HTTPForbidden)."""

MAX_BODY = 8 * 1024
MAX_ENDPOINT = 2048
MAX_TOKEN = 4096
DEFAULT_MAX_SUBSCRIPTIONS = 20
_FCM_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_APNS_TOKEN = re.compile(r"[0-9A-Fa-f]{64,200}")
_LOOPBACK_NAMES = {"localhost"}


class BadSubscriptionError(ValueError):
    pass


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _unb64(value: object, name: str, size: int) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadSubscriptionError(f"`keys.{name}` must be a base64url string")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BadSubscriptionError(f"`keys.{name}` is not base64url") from None
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        what = "an uncompressed P-256 public key" if name == "p256dh" else f"{size} bytes"
        raise BadSubscriptionError(f"`keys.{name}` must be {what}")
    return value


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ENDPOINT:
        raise BadSubscriptionError(f"`endpoint` must be a URL of at most {MAX_ENDPOINT} characters")
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise BadSubscriptionError("`endpoint` must be an https:// URL with a host")
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
        raise BadSubscriptionError("`endpoint` must be an https:// URL")
    return value


def parse_subscription(user: str, data: Any, now_ms: int) -> PushSubscription:
    """The subscription a request body asks for, or `BadSubscriptionError`."""
    if not isinstance(data, dict):
        raise BadSubscriptionError("the body must be a JSON object")
    kind = data.get("kind", "webpush" if "endpoint" in data else None)
    if kind == "webpush":
        keys = data.get("keys")
        if not isinstance(keys, dict):
            raise BadSubscriptionError("`keys` must be an object with `p256dh` and `auth`")
        return new_subscription(
            user,
            "webpush",
            _endpoint(data.get("endpoint")),
            p256dh=_unb64(keys.get("p256dh"), "p256dh", 65),
            auth=_unb64(keys.get("auth"), "auth", 16),
            created_at=now_ms,
        )
    token = data.get("token")
    if kind == "fcm":
        if not isinstance(token, str) or not _FCM_TOKEN.fullmatch(token):
            raise BadSubscriptionError("`token` must be an FCM registration token")
        return new_subscription(user, "fcm", token, created_at=now_ms)
    if kind == "apns":
        if not isinstance(token, str) or not _APNS_TOKEN.fullmatch(token):
            raise BadSubscriptionError("`token` must be an APNs device token (hex)")
        return new_subscription(user, "apns", token.lower(), created_at=now_ms)
    raise BadSubscriptionError("`kind` must be webpush, fcm or apns")


def render(s: PushSubscription) -> dict[str, Any]:
    address = "endpoint" if s.kind == "webpush" else "token"
    return {"id": s.id, "kind": s.kind, address: s.address, "created_at": s.created_at}


class PushApi:
    def __init__(
        self,
        store: Callable[[], PushStore | None],
        authenticate: Authenticate,
        *,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._authenticate = authenticate
        self.max_subscriptions = max_subscriptions
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/me/push-subscriptions", self.add),
            web.get("/api/me/push-subscriptions", self.list),
            web.delete("/api/me/push-subscriptions/{id}", self.remove),
            web.get("/api/me/mutes", self.mutes),
            web.put("/api/me/mutes/{room}", self.mute),
            web.delete("/api/me/mutes/{room}", self.unmute),
        ]

    async def _caller(self, request: web.Request) -> tuple[str, PushStore]:
        store = self._store()
        if store is None:
            raise web.HTTPServiceUnavailable(
                text='{"error": "push subscriptions need a store: start the gateway with --store"}',
                content_type="application/json",
            )
        return await self._authenticate(request), store

    async def add(self, request: web.Request) -> web.Response:
        user, store = await self._caller(request)
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, f"a subscription is at most {MAX_BODY} bytes")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _error(413, f"a subscription is at most {MAX_BODY} bytes")
        try:
            subscription = parse_subscription(user, orjson.loads(raw), int(self._clock() * 1000))
        except orjson.JSONDecodeError:
            return _error(400, "the body must be JSON")
        except BadSubscriptionError as exc:
            return _error(400, str(exc))
        known = await store.subscription(subscription.id)
        if known is None and len(await store.subscriptions(user)) >= self.max_subscriptions:
            return _error(
                409, f"at most {self.max_subscriptions} push subscriptions: remove one first"
            )
        new = await store.save_subscription(subscription)
        saved = await store.subscription(subscription.id) or subscription
        return web.json_response(render(saved), status=201 if new else 200)

    async def list(self, request: web.Request) -> web.Response:
        user, store = await self._caller(request)
        found = await store.subscriptions(user)
        return web.json_response({"subscriptions": [render(s) for s in found]})

    async def remove(self, request: web.Request) -> web.Response:
        user, store = await self._caller(request)
        if await store.delete_subscription(request.match_info["id"], user=user):
            return web.Response(status=204)
        return _error(404, "no such push subscription")

    async def mutes(self, request: web.Request) -> web.Response:
        user, store = await self._caller(request)
        return web.json_response({"rooms": await store.muted_rooms(user)})

    async def mute(self, request: web.Request) -> web.Response:
        return await self._set_muted(request, True)

    async def unmute(self, request: web.Request) -> web.Response:
        return await self._set_muted(request, False)

    async def _set_muted(self, request: web.Request, muted: bool) -> web.Response:
        user, store = await self._caller(request)
        room = request.match_info["room"]
        if not is_valid_room(room):
            return _error(400, "invalid room id: 1-64 characters from A-Z a-z 0-9 _ -")
        await store.set_muted(user, room, muted)
        return web.Response(status=204)


def install_push_api(app: web.Application, store_url: str, authenticate: Authenticate) -> None:
    """Add the routes to `app`; the push store of `store_url` (none when empty: the routes
    answer 503) is opened when the app starts and closed when it stops."""
    opened: list[PushStore] = []

    async def store_lifetime(_app: web.Application) -> AsyncIterator[None]:
        if store_url:
            store = open_push_store(store_url)
            await store.open()
            opened.append(store)
        yield
        for store in opened:
            await store.close()
        opened.clear()

    app.cleanup_ctx.append(store_lifetime)
    api = PushApi(lambda: opened[0] if opened else None, authenticate)
    app.router.add_routes(api.routes())
