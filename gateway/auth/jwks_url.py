"""A JSON Web Key Set fetched from the issuer's URL: cached, refreshed, bounded.

``RemoteJwks`` keeps the last good keys of ``JwksUrlSettings.url`` and fetches the set again

* on first use, and when the keys are older than ``refresh`` seconds (the CONNECT that notices
  waits for the fetch, at most ``timeout`` seconds; concurrent ones share it);
* when a token names a key id the set does not have (a key rotation at the issuer), at most
  once per ``min_interval`` seconds whatever the tokens say, so random ``kid`` values cannot
  turn the gateway into a client that hammers the issuer.

Every fetch is bounded: ``timeout`` seconds in all, at most ``max_bytes`` of body (refused
from ``Content-Length`` before reading, and while reading when it is absent), at most
``max_keys`` keys, status 200 only and no redirects (a redirect could leave HTTPS). A fetch
that fails in any way keeps the previous keys and logs why. The URL must be ``https://``;
``http://`` is accepted only for a loopback host (``localhost``, 127.0.0.0/8, ``::1``) or when
``allow_http`` says so explicitly. ``ca_file`` names the CA bundle to trust instead of the
system's.

It knows nothing about keys: the caller passes ``parse`` (``gateway.auth.jwt_auth`` turns a
JWKS document into its typed keys). The clock is injected (monotonic seconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp

from gateway.auth import _env

__all__ = ["JwksFetchError", "JwksUrlSettings", "RemoteJwks"]

log = logging.getLogger("stompgate.auth")

K = TypeVar("K")


class JwksFetchError(Exception):
    """A fetch that produced no usable key set; the text says why."""


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class JwksUrlSettings:
    """Where the key set is and how it is fetched.  Environment variables (prefix
    ``STOMPGATE_``):

    ============================  =====================  ==========================================
    variable                      field                  default
    ============================  =====================  ==========================================
    ``JWKS_URL``                  ``url``                unset; the issuer's JWKS URL (``https://``)
    ``JWKS_ALLOW_HTTP``           ``allow_http``         ``false`` (``http://`` only for loopback)
    ``JWKS_CA_FILE``              ``ca_file``            unset: the system's CA certificates
    ``JWKS_REFRESH``              ``refresh``            ``300`` seconds before keys are refetched
    ``JWKS_MIN_INTERVAL``         ``min_interval``       ``30`` seconds between unknown-kid fetches
    ``JWKS_TIMEOUT``              ``timeout``            ``5`` seconds per fetch
    ``JWKS_MAX_BYTES``            ``max_bytes``          ``262144`` (256 KiB) per response
    ``JWKS_MAX_KEYS``             ``max_keys``           ``32`` keys per set
    ============================  =====================  ==========================================
    """

    url: str
    allow_http: bool = False
    ca_file: str | None = None
    refresh: float = 300.0
    min_interval: float = 30.0
    timeout: float = 5.0
    max_bytes: int = 256 * 1024
    max_keys: int = 32

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"JWKS URL must be an https:// URL, got {self.url!r}")
        if parts.scheme == "http" and not (self.allow_http or _loopback(parts.hostname)):
            raise ValueError(
                f"JWKS URL {self.url!r} is plain http: keys must come over https (http is "
                "accepted for localhost, or with STOMPGATE_JWKS_ALLOW_HTTP=true)"
            )
        if parts.username or parts.password:
            raise ValueError("JWKS URL must not carry credentials")
        if not self.refresh > 0 or not self.timeout > 0 or self.min_interval < 0:
            raise ValueError("JWKS refresh and timeout must be > 0, min interval >= 0")
        if self.max_bytes < 1 or self.max_keys < 1:
            raise ValueError("JWKS max bytes and max keys must be at least 1")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_"
    ) -> JwksUrlSettings | None:
        """None when ``JWKS_URL`` is unset."""
        url = _env.get_str(environ, f"{prefix}JWKS_URL", None)
        if url is None:
            return None
        d: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(cls)}
        return cls(
            url=url,
            allow_http=_env.get_bool(environ, f"{prefix}JWKS_ALLOW_HTTP", d["allow_http"]),
            ca_file=_env.get_str(environ, f"{prefix}JWKS_CA_FILE", None),
            refresh=_env.get_float(environ, f"{prefix}JWKS_REFRESH", d["refresh"]),
            min_interval=_env.get_float(environ, f"{prefix}JWKS_MIN_INTERVAL", d["min_interval"]),
            timeout=_env.get_float(environ, f"{prefix}JWKS_TIMEOUT", d["timeout"]),
            max_bytes=_env.get_int(environ, f"{prefix}JWKS_MAX_BYTES", d["max_bytes"], minimum=1),
            max_keys=_env.get_int(environ, f"{prefix}JWKS_MAX_KEYS", d["max_keys"], minimum=1),
        )


class RemoteJwks(Generic[K]):
    """The keys of one JWKS URL (see the module docstring). ``keys`` is always the last good
    set (empty before the first successful fetch)."""

    def __init__(
        self,
        settings: JwksUrlSettings,
        parse: Callable[[Any], Sequence[K]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.keys: tuple[K, ...] = ()
        self.fetches = 0  # attempts made, for logs and tests
        self._parse = parse
        self._monotonic = monotonic
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._generation = 0  # successful fetches
        self._lock = asyncio.Lock()

    @property
    def stale(self) -> bool:
        fetched = self._fetched_at
        return fetched is None or self._monotonic() - fetched >= self.settings.refresh

    async def ensure_fresh(self) -> None:
        """Fetch when there are no keys yet or they are older than ``refresh``."""
        if self.stale:
            await self.refresh("keys are stale" if self._fetched_at else "first use")

    async def refresh(self, reason: str) -> bool:
        """Fetch now unless one was tried less than ``min_interval`` s ago. True when a fetch
        succeeded during this call (this one, or one it waited for)."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return True  # fetched while this caller waited for the lock
            now = self._monotonic()
            if now - self._attempted_at < self.settings.min_interval:
                return False
            self._attempted_at = now
            self.fetches += 1
            url = self.settings.url
            try:
                keys = await self._fetch()
            except JwksFetchError as exc:
                log.error(
                    "cannot fetch the JWKS from %s (%s); keeping the %d previous key(s): %s",
                    url,
                    reason,
                    len(self.keys),
                    exc,
                )
                return False
            self.keys = tuple(keys)
            self._fetched_at = self._monotonic()
            self._generation += 1
            log.info("fetched %d key(s) from the JWKS at %s (%s)", len(keys), url, reason)
            return True

    async def _fetch(self) -> Sequence[K]:
        s = self.settings
        ssl_context: ssl.SSLContext | bool = True
        if s.url.startswith("https://") and s.ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=s.ca_file)
        timeout = aiohttp.ClientTimeout(total=s.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    s.url,
                    allow_redirects=False,
                    ssl=ssl_context,
                    headers={"Accept": "application/jwk-set+json, application/json"},
                ) as response,
            ):
                if response.status != 200:
                    raise JwksFetchError(f"HTTP {response.status} (only 200 is accepted)")
                length = response.content_length
                if length is not None and length > s.max_bytes:
                    raise JwksFetchError(f"response of {length} bytes > max {s.max_bytes}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > s.max_bytes:
                        raise JwksFetchError(f"response longer than max {s.max_bytes} bytes")
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise JwksFetchError("response is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksFetchError("not a JWKS (a JSON object with a 'keys' list)")
        if len(document["keys"]) > s.max_keys:
            raise JwksFetchError(f"{len(document['keys'])} keys > max {s.max_keys}")
        try:
            return self._parse(document)
        except ValueError as exc:
            raise JwksFetchError(str(exc)) from None
