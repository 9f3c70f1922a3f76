"""JWKS from a URL: fetched over HTTPS (http only for loopback or when allowed), cached,
refreshed on an unknown ``kid`` at most once per interval, bounded, and never worse than the
last good keys. Served by a real HTTP server in the test; the clock is a fake one."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.auth.authenticator import Authenticator
from gateway.auth.errors import AuthError
from gateway.auth.jwks_url import JwksUrlSettings
from gateway.auth.jwt_auth import JwtAuthenticator, JwtSettings
from gateway.auth.settings import AuthSettings
from tests.auth.conftest import NOW, KeyPair, claims, sign
from tests.auth.test_jwt import AUD, ISS, FakeClock, jwk
from tests.relay.test_wire_tls import make_certificates


class Issuer:
    """An identity provider's JWKS endpoint: what it serves can change between requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        self.status = 200
        self.body: bytes | None = None  # served as is instead of the keys
        self.chunked = False
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.status in (301, 302):
            raise web.HTTPFound("http://example.invalid/jwks.json")
        body = self.body if self.body is not None else json.dumps({"keys": self.keys}).encode()
        if not self.chunked:
            return web.Response(body=body, status=self.status, content_type="application/json")
        response = web.StreamResponse(status=self.status)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        await response.write_eof()
        return response

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_get("/jwks.json", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/jwks.json"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def issuer(rsa_key: KeyPair) -> AsyncIterator[Issuer]:
    server = Issuer()
    server.keys = [jwk(rsa_key, "one")]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def authenticator(url: str, clock: FakeClock, **options: Any) -> JwtAuthenticator:
    return JwtAuthenticator(
        JwtSettings(
            algorithms=("RS256",),
            jwks_url=JwksUrlSettings(url, **options),
            audience=AUD,
            issuer=ISS,
        ),
        monotonic=clock,
    )


def token(key: KeyPair, kid: str) -> str:
    return sign(claims(), key.private, "RS256", kid=kid)


async def rejected(auth: JwtAuthenticator, jwt: str) -> str:
    with pytest.raises(AuthError) as caught:
        await auth.verify_async(jwt, NOW)
    return caught.value.text


@pytest.mark.parametrize(
    "url",
    [
        "https://issuer.example/.well-known/jwks.json",
        "http://127.0.0.1:8080/jwks",
        "http://127.5.0.1/jwks",
        "http://localhost/jwks",
        "http://[::1]:9000/jwks",
    ],
)
def test_https_or_loopback_urls_are_accepted(url: str) -> None:
    assert JwksUrlSettings(url).url == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://issuer.example/jwks", "plain http"),
        ("http://10.0.0.5/jwks", "plain http"),
        ("ftp://issuer.example/jwks", "must be an https:// URL"),
        ("issuer.example/jwks", "must be an https:// URL"),
        ("https://user:pw@issuer.example/jwks", "credentials"),
    ],
)
def test_other_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        JwksUrlSettings(url)


def test_http_can_be_allowed_explicitly_and_settings_come_from_the_environment() -> None:
    env = {
        "STOMPGATE_AUTH": "jwt",
        "STOMPGATE_JWT_ALGORITHMS": "RS256",
        "STOMPGATE_JWKS_URL": "http://idp.internal/jwks",
        "STOMPGATE_JWKS_ALLOW_HTTP": "true",
        "STOMPGATE_JWKS_REFRESH": "60",
        "STOMPGATE_JWKS_MIN_INTERVAL": "5",
        "STOMPGATE_JWKS_TIMEOUT": "2",
        "STOMPGATE_JWKS_MAX_BYTES": "1000",
        "STOMPGATE_JWKS_MAX_KEYS": "4",
        "STOMPGATE_JWKS_CA_FILE": "/etc/ssl/idp-ca.pem",
    }
    settings = AuthSettings.from_env(env)
    assert settings.jwt is not None
    assert settings.jwt.jwks_url == JwksUrlSettings(
        "http://idp.internal/jwks",
        allow_http=True,
        ca_file="/etc/ssl/idp-ca.pem",
        refresh=60,
        min_interval=5,
        timeout=2,
        max_bytes=1000,
        max_keys=4,
    )
    with pytest.raises(ValueError, match="plain http"):
        AuthSettings.from_env({**env, "STOMPGATE_JWKS_ALLOW_HTTP": "false"})


async def test_fetched_on_first_use_then_cached(issuer: Issuer, rsa_key: KeyPair) -> None:
    auth = authenticator(issuer.url, FakeClock())
    assert issuer.hits == 0  # nothing fetched at start-up: the first CONNECT fetches
    assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    assert issuer.hits == 1


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    issuer: Issuer, rsa_key: KeyPair, other_rsa_key: KeyPair
) -> None:
    auth = authenticator(issuer.url, clock := FakeClock())
    await auth.verify_async(token(rsa_key, "one"), NOW)
    issuer.keys = [jwk(other_rsa_key, "two")]  # the issuer rotates
    clock.now += 30  # the default min interval since the last fetch
    assert (await auth.verify_async(token(other_rsa_key, "two"), NOW)).user == "alice"
    assert issuer.hits == 2
    assert await rejected(auth, token(rsa_key, "one")) == "token key not found"  # retired


async def test_unknown_kids_refresh_at_most_once_per_interval(
    issuer: Issuer, rsa_key: KeyPair
) -> None:
    auth = authenticator(issuer.url, clock := FakeClock(), min_interval=30)
    await auth.verify_async(token(rsa_key, "one"), NOW)
    for n in range(5):  # within 30 s of the last fetch: no fetch at all
        assert await rejected(auth, token(rsa_key, f"forged-{n}")) == "token key not found"
    assert issuer.hits == 1
    clock.now += 30
    for n in range(5):  # one fetch for the first, none for the others
        assert await rejected(auth, token(rsa_key, f"random-{n}")) == "token key not found"
    assert issuer.hits == 2
    assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"


async def test_concurrent_connects_share_one_fetch(
    issuer: Issuer, rsa_key: KeyPair, other_rsa_key: KeyPair
) -> None:
    auth = authenticator(issuer.url, clock := FakeClock())
    await auth.verify_async(token(rsa_key, "one"), NOW)
    issuer.keys = [jwk(rsa_key, "one"), jwk(other_rsa_key, "two")]
    clock.now += 30
    identities = await asyncio.gather(
        *(auth.verify_async(token(other_rsa_key, "two"), NOW) for _ in range(20))
    )
    assert {i.user for i in identities} == {"alice"}
    assert issuer.hits == 2


async def test_stale_keys_are_refetched(issuer: Issuer, rsa_key: KeyPair) -> None:
    auth = authenticator(issuer.url, clock := FakeClock(), refresh=300)
    await auth.verify_async(token(rsa_key, "one"), NOW)
    clock.now += 299
    await auth.verify_async(token(rsa_key, "one"), NOW)
    assert issuer.hits == 1
    clock.now += 1
    await auth.verify_async(token(rsa_key, "one"), NOW)
    assert issuer.hits == 2


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_too_large_response_is_refused_and_the_keys_kept(
    issuer: Issuer, rsa_key: KeyPair, chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    auth = authenticator(issuer.url, clock := FakeClock(), max_bytes=20_000)
    await auth.verify_async(token(rsa_key, "one"), NOW)
    issuer.body = json.dumps({"keys": [jwk(rsa_key, "one")], "pad": "x" * 50_000}).encode()
    issuer.chunked = chunked
    clock.now += 300  # stale: refetched
    with caplog.at_level(logging.ERROR, logger="stompgate.auth"):
        assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    assert issuer.hits == 2
    assert "max 20000" in caplog.text
    assert "keeping the 1 previous key(s)" in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (200, None, "keys > max 3"),
        (500, b"oops", "HTTP 500"),
        (302, None, "HTTP 302"),
        (200, b"<html>", "not JSON"),
        (200, b'{"keys": {}}', "not a JWKS"),
    ],
)
async def test_bad_responses_keep_the_last_good_keys(
    issuer: Issuer,
    rsa_key: KeyPair,
    other_rsa_key: KeyPair,
    status: int,
    body: bytes | None,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = authenticator(issuer.url, clock := FakeClock(), max_keys=3)
    await auth.verify_async(token(rsa_key, "one"), NOW)
    issuer.keys = [jwk(other_rsa_key, f"k{n}") for n in range(4)]
    issuer.status, issuer.body = status, body
    clock.now += 300
    with caplog.at_level(logging.ERROR, logger="stompgate.auth"):
        assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    assert why in caplog.text


async def test_issuer_down_keeps_the_keys(issuer: Issuer, rsa_key: KeyPair) -> None:
    auth = authenticator(issuer.url, clock := FakeClock())
    await auth.verify_async(token(rsa_key, "one"), NOW)
    await issuer.stop()
    clock.now += 3600
    assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    assert await rejected(auth, token(rsa_key, "new")) == "token key not found"


async def test_no_keys_until_the_issuer_answers(rsa_key: KeyPair) -> None:
    server = Issuer()
    await server.start()
    url = server.url
    await server.stop()  # nothing listens there now
    auth = authenticator(url, clock := FakeClock(), timeout=2)
    assert await rejected(auth, token(rsa_key, "one")) == "token key not found"
    server.keys = [jwk(rsa_key, "one")]
    await server.start()
    try:
        clock.now += 30
        auth = authenticator(server.url, clock)
        assert (await auth.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
    finally:
        await server.stop()


async def test_https_with_a_private_ca(rsa_key: KeyPair, tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Issuer()
    server.keys = [jwk(rsa_key, "one")]
    await server.start(context)
    try:
        assert server.url.startswith("https://")
        trusted = authenticator(server.url, FakeClock(), ca_file=str(ca))
        assert (await trusted.verify_async(token(rsa_key, "one"), NOW)).user == "alice"
        untrusted = authenticator(server.url, FakeClock())  # the system's CAs only
        assert await rejected(untrusted, token(rsa_key, "one")) == "token key not found"
        assert server.hits == 1  # the TLS handshake failed before any request
    finally:
        await server.stop()


async def test_the_authenticator_fetches_for_a_connect(issuer: Issuer, rsa_key: KeyPair) -> None:
    env = {
        "STOMPGATE_JWT_ALGORITHMS": "RS256",
        "STOMPGATE_JWKS_URL": issuer.url,
        "STOMPGATE_JWT_AUDIENCE": AUD,
        "STOMPGATE_JWT_ISSUER": ISS,
    }
    auth = Authenticator(AuthSettings.from_env(env))
    identity = await auth.authenticate_async("", token(rsa_key, "one"), [], now=NOW)
    assert identity.user == "alice"
    assert issuer.hits == 1
