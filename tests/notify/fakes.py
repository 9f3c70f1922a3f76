"""Local stand-ins for the push services, speaking their documented HTTP.

- `PushServices`: one aiohttp server with a Web Push endpoint (`POST /push/{id}`) that
  decrypts the RFC 8291 payload with http_ece using the browser's keys and verifies the VAPID
  `Authorization` (ES256 JWT over the endpoint's origin, with the `k` public key); the
  webhook (`POST /hook`), which verifies the HMAC signature and the timestamp; and FCM: the
  OAuth2 token endpoint (`POST /token`, verifying the service account's RS256 assertion) and
  `POST /v1/projects/{project}/messages:send` (verifying the access token).
- `FakeApns`: APNs over HTTP/2 with TLS (hypercorn, a trustme test CA): `POST /3/device/{t}`,
  verifying the ES256 provider token, the headers and the protocol version.

Each records what it received and answers success unless a test scripted replies first
(`script(path_prefix, Reply(...), ...)`): 410, 404 UNREGISTERED, 429 with Retry-After, 503...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import jwt
import orjson
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.support.gateway_proc import free_port
from tests.translate.fakes import Reply, respond
from workers.notify.webhook import SIGNATURE, TIMESTAMP, verify

__all__ = ["Browser", "FakeApns", "PushServices", "Received", "Reply", "service_account"]

WEBHOOK_SECRET = b"test-webhook-secret"
ACCESS_TOKEN = "fcm-access-token-1"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's push subscription: its P-256 key pair and auth secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth_b64(self) -> str:
        return b64(self.auth)


@dataclass
class Received:
    """One request a fake accepted (or refused by script): what the service saw."""

    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any = None  # decrypted / parsed
    claims: dict[str, Any] = field(default_factory=dict)  # the verified JWT
    status: int = 200


def service_account(token_url: str) -> tuple[dict[str, str], rsa.RSAPublicKey]:
    """A Google service-account key file's fields (a fresh RSA key) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "chat-app",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "push@chat-app.iam.gserviceaccount.com",
        "token_uri": token_url,
    }, key.public_key()


class PushServices:
    def __init__(self) -> None:
        self.port = free_port()
        self.browsers: dict[str, Browser] = {}  # endpoint id -> keys
        self.pushes: list[Received] = []
        self.hooks: list[Received] = []
        self.tokens: list[Received] = []
        self.fcm: list[Received] = []
        self.fcm_key: rsa.RSAPublicKey | None = None
        self.vapid_subject = ""
        self._scripted: dict[str, deque[Reply]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, name: str) -> tuple[str, Browser]:
        browser = self.browsers.setdefault(name, Browser())
        return f"{self.url}/push/{name}", browser

    def script(self, path_prefix: str, *replies: Reply) -> None:
        self._scripted.setdefault(path_prefix, deque()).extend(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._fcm_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next(self, path: str) -> Reply | None:
        for prefix, replies in self._scripted.items():
            if path.startswith(prefix) and replies:
                return replies.popleft()
        return None

    async def _record(
        self,
        request: web.Request,
        into: list[Received],
        check: Callable[[Received], Awaitable[web.Response | None]],
    ) -> web.Response:
        seen = Received(request.path, dict(request.headers), await request.read())
        refused = await check(seen)
        scripted = self._next(request.path) if refused is None else None
        seen.status = refused.status if refused else scripted.status if scripted else 201
        into.append(seen)
        if refused is not None:
            return refused
        return respond(scripted) if scripted is not None else web.Response(status=201)

    async def _push(self, request: web.Request) -> web.Response:
        browser = self.browsers[request.match_info["name"]]

        async def check(seen: Received) -> web.Response | None:
            scheme, _, params = seen.headers.get("Authorization", "").partition(" ")
            parts = dict(p.strip().split("=", 1) for p in params.split(","))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(parts["k"]))
            try:
                seen.claims = jwt.decode(
                    parts["t"], public, algorithms=["ES256"], audience=self.url
                )
            except jwt.InvalidTokenError as exc:
                return web.Response(status=401, text=str(exc))
            assert scheme == "vapid"
            assert seen.headers["Content-Encoding"] == "aes128gcm"
            plain = http_ece.decrypt(
                seen.body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
            )
            seen.payload = orjson.loads(plain)
            return None

        return await self._record(request, self.pushes, check)

    async def _hook(self, request: web.Request) -> web.Response:
        async def check(seen: Received) -> web.Response | None:
            ok = verify(
                WEBHOOK_SECRET,
                seen.headers.get(TIMESTAMP, ""),
                seen.body,
                seen.headers.get(SIGNATURE, ""),
                time.time(),
            )
            if not ok:
                return web.Response(status=401, text="bad signature")
            seen.payload = orjson.loads(seen.body)
            return None

        return await self._record(request, self.hooks, check)

    async def _token(self, request: web.Request) -> web.Response:
        async def check(seen: Received) -> web.Response | None:
            form = await request.post()
            assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            assert self.fcm_key is not None
            seen.claims = jwt.decode(
                str(form["assertion"]),
                self.fcm_key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
            )
            return None

        reply = await self._record(request, self.tokens, check)
        if reply.status != 201:
            return reply
        return web.json_response(
            {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def _fcm_send(self, request: web.Request) -> web.Response:
        async def check(seen: Received) -> web.Response | None:
            if seen.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                return web.json_response(
                    {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}},
                    status=401,
                )
            seen.payload = orjson.loads(seen.body)
            return None

        reply = await self._record(request, self.fcm, check)
        if reply.status == 201:
            name = f"projects/{request.match_info['project']}/messages/{len(self.fcm)}"
            return web.json_response({"name": name})
        return reply


def fcm_error(status: str, code: str, *, http: int, retry_after: str | None = None) -> Reply:
    """An FCM v1 error reply with an FcmError detail (`code`) or none (`code` is a status)."""
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    return Reply(
        http,
        {"error": {"code": http, "message": code, "status": status, "details": details}},
        {"Retry-After": retry_after} if retry_after else {},
    )


class FakeApns:
    """APNs over HTTP/2 and TLS, on hypercorn, with a test CA."""

    def __init__(self, tmp: Path, team_id: str, key_id: str, topic: str) -> None:
        self.port = free_port()
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._certfile, self._keyfile = tmp / "apns-cert.pem", tmp / "apns-key.pem"
        cert.cert_chain_pems[0].write_to_path(str(self._certfile))
        cert.private_key_pem.write_to_path(str(self._keyfile))
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.requests: list[Received] = []
        self.versions: list[str] = []
        self._scripted: deque[Reply] = deque()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def script(self, *replies: Reply) -> None:
        self._scripted.extend(replies)

    async def start(self) -> None:
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile, config.keyfile = str(self._certfile), str(self._keyfile)
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1
        self._task = asyncio.create_task(serve(self._app, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the APNs fake did not start")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen = Received(scope["path"], headers, body)
        self.versions.append(scope["http_version"])
        status, reply, extra = self._answer(seen)
        seen.status = status
        self.requests.append(seen)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"apns-id", b"00000000-0000-0000-0000-000000000001"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    def _answer(self, seen: Received) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        scheme, _, token = seen.headers.get("authorization", "").partition(" ")
        try:
            seen.claims = jwt.decode(token, self.key.public_key(), algorithms=["ES256"])
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return 403, b'{"reason":"InvalidProviderToken"}', []
        if scheme != "bearer" or header.get("kid") != self.key_id:
            return 403, b'{"reason":"InvalidProviderToken"}', []
        if seen.claims.get("iss") != self.team_id:
            return 403, b'{"reason":"InvalidProviderToken"}', []
        if seen.headers.get("apns-topic") != self.topic:
            return 400, b'{"reason":"DeviceTokenNotForTopic"}', []
        seen.payload = orjson.loads(seen.body)
        if self._scripted:
            r = self._scripted.popleft()
            extra = [(k.lower().encode(), v.encode()) for k, v in r.headers.items()]
            return r.status, orjson.dumps(r.body), extra
        return 200, b"", []
