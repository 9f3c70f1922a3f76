"""JWT verification (pyjwt) and development-mode logins.

Theory of operation
-------------------
``JwtAuthenticator.verify(token, now)`` turns a compact JWS into an ``Identity`` or raises
``AuthError`` with one of a fixed set of messages (see ``MESSAGES`` below).  The steps:

1. Size and shape: empty -> "missing token"; longer than ``MAX_TOKEN_LENGTH`` or not three
   base64url segments with a JSON-object header -> "malformed token".
2. Algorithm: the header's ``alg`` must be one of ``JwtSettings.algorithms``.  ``none`` is
   refused whatever the settings say (it cannot even be configured).
3. Key selection.  Every configured key is bound to a *key family* when it is loaded, from the
   key's own type, never from the token: an HMAC secret serves only HS256/384/512, an RSA key
   only RS*/PS*, a P-256 key only ES256 (P-384: ES384, P-521: ES512), an Ed25519/Ed448 key only
   EdDSA.  A PEM text is never an HMAC secret (refused at start-up), so the classic HS/RS
   confusion -- a token "signed" with HMAC over the RSA public key PEM -- has no key to be
   checked against.  With a JWKS, a token ``kid`` selects the key; a JWK's own ``alg``, when
   present, must equal the token's.
4. Signature, by pyjwt's JWS layer pinned to the single algorithm in the header.
5. Claims, checked here against the caller's ``now`` (pyjwt's claim checks read the wall clock,
   which tests cannot control): required claims, ``exp``/``nbf``/``iat`` with ``leeway``,
   ``iss``, ``aud``; ``sub`` must be a printable string of at most 255 characters because it
   is stamped into headers, Redis keys and ``/user/`` routing.

Keys come from ``key`` (HS secret or PEM text), ``key_file`` (the same, read from a file),
``jwks_file`` (a JSON Web Key Set) and ``jwks_url`` (a JSON Web Key Set fetched from the
issuer: ``gateway.auth.jwks_url``).  The JWKS file is re-read when its mtime/size/inode change;
the check runs at most once per ``JWKS_CHECK_INTERVAL`` seconds (monotonic clock).  A JWKS file
that fails to parse keeps the previous keys (and logs an error): write it atomically (rename).

``verify`` is synchronous and uses the keys at hand.  ``verify_async`` is what a node calls:
with a JWKS URL it first fetches the set when it has none yet or it is older than its refresh
interval, and when a token's ``kid`` is unknown it fetches once more (rate-limited) and tries
again, so a key the issuer has just rotated in is accepted without a restart.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from cryptography.x509 import load_pem_x509_certificate
from jwt import PyJWK
from jwt.api_jws import PyJWS
from jwt.exceptions import (
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from gateway.auth import _env
from gateway.auth.errors import AuthError
from gateway.auth.identity import Identity
from gateway.auth.jwks_url import JwksUrlSettings, RemoteJwks

__all__ = [
    "JWKS_CHECK_INTERVAL",
    "MAX_TOKEN_LENGTH",
    "SUPPORTED_ALGORITHMS",
    "DevAuthenticator",
    "JwtAuthenticator",
    "JwtSettings",
    "valid_user_name",
]

log = logging.getLogger("stompgate.auth")

MAX_TOKEN_LENGTH = 16 * 1024
JWKS_CHECK_INTERVAL = 1.0
MAX_USER_LENGTH = 255
MIN_RSA_BITS = 2048

# algorithm -> key family.  A key is usable only for the algorithms of its own family.
_ALGORITHM_FAMILY: dict[str, str] = {
    "HS256": "oct",
    "HS384": "oct",
    "HS512": "oct",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC:secp256r1",
    "ES384": "EC:secp384r1",
    "ES512": "EC:secp521r1",
    "EdDSA": "OKP",
}
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHM_FAMILY)
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How tokens are verified.  Environment variables (prefix ``STOMPGATE_``):

    ============================  =====================  ==========================================
    variable                      field                  default
    ============================  =====================  ==========================================
    ``JWT_ALGORITHMS``            ``algorithms``         required, comma list, e.g. ``RS256,ES256``
    ``JWT_KEY``                   ``key``                unset; HS secret or PEM public key text
    ``JWT_KEY_FILE``              ``key_file``           unset; file holding an HS secret or PEM
    ``JWKS_FILE``                 ``jwks_file``          unset; JSON Web Key Set file (reloaded)
    ``JWKS_URL`` and ``JWKS_*``   ``jwks_url``           unset; see ``JwksUrlSettings``
    ``JWT_AUDIENCE``              ``audience``           unset (then tokens with ``aud`` fail)
    ``JWT_ISSUER``                ``issuer``             unset (``iss`` not checked)
    ``JWT_LEEWAY``                ``leeway``             ``30`` seconds
    ``JWT_REQUIRE``               ``require``            ``exp,sub``
    ``JWT_ROLES_CLAIM``           ``roles_claim``        ``roles`` (dotted path allowed)
    ``JWT_ROOMS_CLAIM``           ``rooms_claim``        ``rooms`` (dotted path allowed)
    ============================  =====================  ==========================================
    """

    algorithms: tuple[str, ...]
    key: str | None = None
    key_file: str | None = None
    jwks_file: str | None = None
    jwks_url: JwksUrlSettings | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway: float = 30.0
    require: tuple[str, ...] = ("exp", "sub")
    roles_claim: str = "roles"
    rooms_claim: str = "rooms"

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("JWT algorithms must be pinned: set at least one algorithm")
        for algorithm in self.algorithms:
            if algorithm.lower() == "none":
                raise ValueError("JWT algorithm 'none' can never be allowed")
            if algorithm not in _ALGORITHM_FAMILY:
                supported = ", ".join(SUPPORTED_ALGORITHMS)
                raise ValueError(f"unsupported JWT algorithm {algorithm!r}; supported: {supported}")
        if (
            self.key is None
            and self.key_file is None
            and self.jwks_file is None
            and self.jwks_url is None
        ):
            raise ValueError("no JWT key configured: set a key, a key file, a JWKS file or URL")
        if not self.leeway >= 0:
            raise ValueError(f"JWT leeway must be >= 0, got {self.leeway}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_") -> JwtSettings:
        algorithms = _env.get_list(environ, f"{prefix}JWT_ALGORITHMS", ())
        if not algorithms:
            raise ValueError(f"{prefix}JWT_ALGORITHMS is required, e.g. RS256")
        return cls(
            algorithms=algorithms,
            key=_env.get_str(environ, f"{prefix}JWT_KEY", None),
            key_file=_env.get_str(environ, f"{prefix}JWT_KEY_FILE", None),
            jwks_file=_env.get_str(environ, f"{prefix}JWKS_FILE", None),
            jwks_url=JwksUrlSettings.from_env(environ, prefix),
            audience=_env.get_str(environ, f"{prefix}JWT_AUDIENCE", None),
            issuer=_env.get_str(environ, f"{prefix}JWT_ISSUER", None),
            leeway=_env.get_float(environ, f"{prefix}JWT_LEEWAY", 30.0),
            require=_env.get_list(environ, f"{prefix}JWT_REQUIRE", ("exp", "sub")),
            roles_claim=_env.get_str(environ, f"{prefix}JWT_ROLES_CLAIM", "roles") or "roles",
            rooms_claim=_env.get_str(environ, f"{prefix}JWT_ROOMS_CLAIM", "rooms") or "rooms",
        )


@dataclass(frozen=True, slots=True)
class _Key:
    family: str  # see _ALGORITHM_FAMILY
    key: Any  # bytes for HMAC, a cryptography public key otherwise
    kid: str | None = None
    algorithm: str | None = None  # a JWK's own "alg": the only algorithm it may verify


class _KeyNotFoundError(AuthError):
    """``token key not found``: no loaded key fits the token (its ``kid`` may be new)."""


def _family_of(key: Any) -> str:
    if isinstance(key, bytes):
        return "oct"
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC:{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "OKP"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _load_pem(text: str, origin: str) -> Any:
    data = text.encode()
    if b"CERTIFICATE-----" in data:
        return load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY-----" in data:
        log.warning("%s holds a private key; only its public half is used", origin)
        return load_pem_private_key(data, password=None).public_key()
    return load_pem_public_key(data)


def _keys_from_text(text: str, origin: str, algorithms: Sequence[str]) -> list[_Key]:
    """A key from config text: PEM (any public key, cert or private key) or an HMAC secret."""
    if "-----BEGIN" in text:
        try:
            public = _load_pem(text, origin)
        except ValueError as exc:
            raise ValueError(f"{origin}: cannot load PEM key: {exc}") from None
        if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"{origin}: RSA key is {public.key_size} bits; at least {MIN_RSA_BITS} required"
            )
        return [_Key(_family_of(public), public)]
    hs = [a for a in algorithms if _ALGORITHM_FAMILY[a] == "oct"]
    if not hs:
        raise ValueError(
            f"{origin} is not a PEM key and no HS algorithm is pinned; "
            "an HMAC secret is only used with HS256/HS384/HS512"
        )
    secret = text.encode()
    for algorithm in hs:
        if len(secret) < _HMAC_MIN_BYTES[algorithm]:
            raise ValueError(
                f"{origin}: HMAC secret is {len(secret)} bytes; {algorithm} needs at least "
                f"{_HMAC_MIN_BYTES[algorithm]} (RFC 7518 section 3.2)"
            )
    return [_Key("oct", secret)]


def _keys_from_jwks(data: Any, origin: str) -> list[_Key]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError(f"{origin}: not a JWKS (a JSON object with a 'keys' list)")
    keys: list[_Key] = []
    for index, jwk in enumerate(data["keys"]):
        if not isinstance(jwk, dict):
            log.warning("%s: key %d is not an object; skipped", origin, index)
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            parsed = PyJWK(jwk)
        except PyJWTError as exc:
            log.warning("%s: key %d unusable (%s); skipped", origin, index, exc)
            continue
        material: Any = parsed.key
        if hasattr(material, "public_key"):  # a private JWK: keep the public half only
            material = material.public_key()
        kid = jwk.get("kid")
        alg = jwk.get("alg")
        try:
            family = _family_of(material)
        except ValueError as exc:
            log.warning("%s: key %d skipped: %s", origin, index, exc)
            continue
        keys.append(
            _Key(
                family,
                material,
                kid if isinstance(kid, str) else None,
                alg if isinstance(alg, str) else None,
            )
        )
    return keys


def _printable(text: str, limit: int = 32) -> str:
    """Attacker-supplied text made safe for an ERROR header: printable ASCII, bounded."""
    cleaned = "".join(ch if 0x20 < ord(ch) < 0x7F else "?" for ch in text[:limit])
    return cleaned + ("..." if len(text) > limit else "")


def valid_user_name(user: object) -> bool:
    """A user name we can stamp into headers, Redis keys and ``/user/`` routing."""
    return (
        isinstance(user, str)
        and 0 < len(user) <= MAX_USER_LENGTH
        and all(ch.isprintable() for ch in user)
        and user.strip() == user
    )


def _claim_path(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _string_set(value: Any) -> frozenset[str]:
    """A claim read as a set: a list of strings/ints, or a space-separated string."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(
            str(item)
            for item in value
            if isinstance(item, str | int) and not isinstance(item, bool)
        )
    return frozenset()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class JwtAuthenticator:
    """Verifies tokens against pinned algorithms and configured keys (see module docstring)."""

    def __init__(
        self,
        settings: JwtSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._jws = PyJWS(options={"verify_signature": True, "enforce_minimum_key_length": True})
        self._static: list[_Key] = []
        if settings.key is not None:
            self._static += _keys_from_text(settings.key, "JWT key", settings.algorithms)
        if settings.key_file is not None:
            with open(settings.key_file, encoding="utf-8") as handle:
                text = handle.read()
            if "-----BEGIN" not in text:
                text = text.rstrip("\r\n")
            self._static += _keys_from_text(
                text, f"JWT key file {settings.key_file}", settings.algorithms
            )
        self._jwks: list[_Key] = []
        self._jwks_stamp: tuple[int, int, int] | None = None
        self._jwks_checked_at = float("-inf")
        self._lock = threading.Lock()
        if settings.jwks_file is not None:
            self._load_jwks(initial=True)
        self._remote: RemoteJwks[_Key] | None = None
        if settings.jwks_url is not None:
            origin = f"JWKS at {settings.jwks_url.url}"
            self._remote = RemoteJwks(
                settings.jwks_url, lambda data: _keys_from_jwks(data, origin), monotonic=monotonic
            )
        changing = settings.jwks_file is not None or settings.jwks_url is not None
        families = {k.family for k in self._static + self._jwks}
        for algorithm in settings.algorithms:
            if _ALGORITHM_FAMILY[algorithm] not in families:
                message = f"JWT algorithm {algorithm} is pinned but no key of its type is loaded"
                if not changing:
                    raise ValueError(message)
                log.warning("%s (yet: the JWKS file or URL may gain one)", message)
        unused = families - {_ALGORITHM_FAMILY[a] for a in settings.algorithms}
        if unused and not changing:
            raise ValueError(
                "a configured JWT key fits none of the pinned algorithms "
                f"{', '.join(settings.algorithms)} (key type: {', '.join(sorted(unused))})"
            )
        if settings.audience is None:
            log.warning("JWT audience not configured: tokens carrying 'aud' will be refused")
        if settings.issuer is None:
            log.warning("JWT issuer not configured: 'iss' is not checked")

    # -- JWKS -------------------------------------------------------------------------------

    def _load_jwks(self, *, initial: bool = False) -> None:
        path = self.settings.jwks_file
        assert path is not None
        try:
            info = os.stat(path)
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            if stamp == self._jwks_stamp:
                return
            with open(path, encoding="utf-8") as handle:
                keys = _keys_from_jwks(json.load(handle), f"JWKS file {path}")
        except (OSError, ValueError) as exc:
            if initial:
                raise ValueError(f"cannot load JWKS file {path}: {exc}") from None
            log.error("cannot reload JWKS file %s, keeping the previous keys: %s", path, exc)
            return
        self._jwks = keys
        self._jwks_stamp = stamp
        log.info("loaded %d key(s) from JWKS file %s", len(keys), path)

    def _maybe_reload(self) -> None:
        if self.settings.jwks_file is None:
            return
        now = self._monotonic()
        if now - self._jwks_checked_at < JWKS_CHECK_INTERVAL:
            return
        with self._lock:
            if now - self._jwks_checked_at < JWKS_CHECK_INTERVAL:
                return
            self._jwks_checked_at = now
            self._load_jwks()

    def _candidates(self, algorithm: str, kid: str | None) -> list[_Key]:
        family = _ALGORITHM_FAMILY[algorithm]
        jwks = self._jwks if self._remote is None else [*self._jwks, *self._remote.keys]
        if kid is not None and any(k.kid is not None for k in jwks):
            pool = [k for k in jwks if k.kid == kid] + self._static
        else:
            pool = jwks + self._static
        return [
            k
            for k in pool
            if k.family == family and (k.algorithm is None or k.algorithm == algorithm)
        ]

    # -- verification -----------------------------------------------------------------------

    def verify(self, token: str | None, now: float | None = None) -> Identity:
        """The identity in ``token``, or ``AuthError`` with an exact message."""
        if token is None or not token.strip():
            raise AuthError("missing token", "no token was presented")
        token = token.strip()
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(
                "malformed token", f"token is longer than {MAX_TOKEN_LENGTH} characters"
            )
        jws = self._jws
        try:
            header = jws.get_unverified_header(token)
        except PyJWTError as exc:
            raise AuthError("malformed token", f"token header cannot be decoded: {exc}") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise AuthError("malformed token", "token header has no 'alg'")
        if algorithm.lower() == "none":
            raise AuthError(
                "token algorithm not allowed: none", "unsigned tokens are never accepted"
            )
        if algorithm not in self.settings.algorithms:
            raise AuthError(
                f"token algorithm not allowed: {_printable(algorithm)}",
                f"allowed algorithms: {', '.join(self.settings.algorithms)}",
            )
        kid = header.get("kid")
        self._maybe_reload()
        candidates = self._candidates(algorithm, kid if isinstance(kid, str) else None)
        if not candidates:
            raise _KeyNotFoundError("token key not found", f"no configured {algorithm} key matches")
        payload_bytes: bytes | None = None
        for candidate in candidates:
            try:
                decoded = jws.decode_complete(token, key=candidate.key, algorithms=[algorithm])
            except (InvalidSignatureError, InvalidKeyError):
                continue
            except PyJWTError as exc:
                raise AuthError("malformed token", f"token cannot be decoded: {exc}") from None
            payload_bytes = decoded["payload"]
            break
        if payload_bytes is None:
            raise AuthError("token signature invalid", "no configured key verifies the token")
        try:
            claims = json.loads(payload_bytes)
        except (ValueError, RecursionError):
            raise AuthError("malformed token", "token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise AuthError("malformed token", "token payload is not a JSON object")
        return self._identity(claims, time.time() if now is None else now)

    async def verify_async(self, token: str | None, now: float | None = None) -> Identity:
        """``verify``, after fetching the JWKS URL's keys when there are none yet or they are
        stale; a token whose key is not found makes one more (rate-limited) fetch first."""
        remote = self._remote
        if remote is None:
            return self.verify(token, now)
        await remote.ensure_fresh()
        try:
            return self.verify(token, now)
        except _KeyNotFoundError:
            if not await remote.refresh("a token names an unknown key"):
                raise
        return self.verify(token, now)

    def _identity(self, claims: dict[str, Any], now: float) -> Identity:
        s = self.settings
        for name in (*s.require, "sub"):
            if claims.get(name) is None:
                raise AuthError(f"token missing claim: {name}", f"the token has no '{name}' claim")
        times: dict[str, float | None] = {}
        for name in ("exp", "nbf", "iat"):
            times[name] = _number(claims.get(name))
            if name in claims and times[name] is None:
                raise AuthError("malformed token", f"claim '{name}' is not a number")
        exp, nbf, iat = times["exp"], times["nbf"], times["iat"]
        if exp is not None and exp <= now - s.leeway:
            raise AuthError(
                "token expired", f"token expired at {exp:.0f}; now {now:.0f}, leeway {s.leeway:g} s"
            )
        if nbf is not None and nbf > now + s.leeway:
            raise AuthError(
                "token not yet valid",
                f"token not valid before {nbf:.0f}; now {now:.0f}, leeway {s.leeway:g} s",
            )
        if iat is not None and iat > now + s.leeway:
            raise AuthError(
                "token not yet valid",
                f"token issued in the future ({iat:.0f}); now {now:.0f}, leeway {s.leeway:g} s",
            )
        if s.issuer is not None and claims.get("iss") != s.issuer:
            raise AuthError("token issuer mismatch", f"expected issuer {s.issuer!r}")
        if "aud" in claims or s.audience is not None:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if s.audience is None or s.audience not in audiences:
                detail = (
                    "the token names an audience but none is configured"
                    if s.audience is None
                    else f"expected audience {s.audience!r}"
                )
                raise AuthError("token audience mismatch", detail)
        user = claims["sub"]
        if not valid_user_name(user):
            raise AuthError(
                "token subject invalid",
                f"'sub' must be a printable string of 1..{MAX_USER_LENGTH} characters",
            )
        return Identity(
            user=user,
            claims=claims,
            expires_at=exp,
            roles=_string_set(_claim_path(claims, s.roles_claim)),
            rooms=_string_set(_claim_path(claims, s.rooms_claim)),
        )

    def deadline(self, identity: Identity) -> float | None:
        """When a session on ``identity`` must end (epoch seconds): ``exp`` plus the leeway."""
        if identity.expires_at is None or identity.dev:
            return None
        return identity.expires_at + self.settings.leeway


class DevAuthenticator:
    """Development-mode logins: fixed login/passcode pairs; identities have ``dev=True``."""

    def __init__(self, users: Mapping[str, str]) -> None:
        if not users:
            raise ValueError("development mode needs at least one user (login:passcode)")
        for login in users:
            if not valid_user_name(login):
                raise ValueError(f"invalid development login {login!r}")
        self._users = dict(users)

    @classmethod
    def from_string(cls, spec: str) -> DevAuthenticator:
        """From ``"user:pass,user2:pass2"`` (a passcode may contain ':')."""
        users: dict[str, str] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            login, sep, passcode = item.partition(":")
            if not sep or not login:
                raise ValueError(f"development user must be 'login:passcode', got {item!r}")
            users[login] = passcode
        return cls(users)

    @property
    def logins(self) -> tuple[str, ...]:
        return tuple(self._users)

    def passcode(self, login: str) -> str | None:
        """The passcode of a development login, or None: what the demo page's token endpoint
        (``POST /api/demo/token``, development mode only) hands out."""
        return self._users.get(login)

    def verify_login(self, login: str | None, passcode: str | None) -> Identity:
        expected = self._users.get(login or "")
        # compare even on an unknown login so timing does not reveal which logins exist
        ok = hmac.compare_digest(
            (expected if expected is not None else "\x00unknown").encode(),
            (passcode or "").encode(),
        )
        if expected is None or not ok or login is None:
            raise AuthError(  # RabbitMQ's body for a refused login
                f"Access refused for user '{_printable(login or '', 64)}'",
                "unknown login or wrong passcode",
            )
        # The login string is one of the configured few: share it instead of keeping the
        # CONNECT header's copy for as long as the session lives.
        return Identity(user=sys.intern(login), dev=True)
