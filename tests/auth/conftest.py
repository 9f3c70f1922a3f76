"""Keys, token helpers and a Redis client for the gateway.auth tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from redis.asyncio import Redis

NOW = 1_700_000_000.0
HS_SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-0123"  # >= 32 bytes, as HS256 requires


@dataclass(frozen=True)
class KeyPair:
    private: Any
    public_pem: str
    private_pem: str


def _pair(private: Any) -> KeyPair:
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(private, public_pem, private_pem)


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_rsa_key() -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    return _pair(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def ed_key() -> KeyPair:
    return _pair(ed25519.Ed25519PrivateKey.generate())


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims at NOW; pass name=None to drop a claim."""
    base: dict[str, Any] = {
        "sub": "alice",
        "iat": int(NOW) - 10,
        "nbf": int(NOW) - 10,
        "exp": int(NOW) + 600,
        "aud": "chat",
        "iss": "https://issuer.example",
        "roles": ["member"],
        "rooms": ["7"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: Any, signature: bytes = b"") -> str:
    """A compact JWS built by hand (for tokens pyjwt refuses to produce)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def hmac_token(header: dict[str, Any], payload: Any, secret: bytes) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def sign(payload: dict[str, Any], key: Any, algorithm: str, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
