"""The gateway's gatekeeper: who may connect, and what each session may do.

A thin layer over :mod:`gateway.auth` for the connection code:

* ``check_handshake`` — the WebSocket ``Origin`` allow-list, before the upgrade;
* ``open``/``close`` — connections per IP (at accept) and per user (at CONNECT, all nodes);
* ``authenticate`` — development logins (``--auth dev``) or a JWT from the CONNECT frame or the
  WebSocket handshake (``--auth jwt``); production never falls back to dev logins;
* ``authorize_send``/``authorize_subscribe`` — destination hygiene, the ACL (rules file, token
  claims, room membership in Redis), spoofed sender headers removed and ``sender`` stamped;
* ``authorize`` — what the relay's plan for a frame needs besides its destination (queues,
  dead-letter targets, queue arguments: :class:`~gateway.auth.authority.Authority`);
* ``authenticate_request`` — an HTTP request authenticated like a CONNECT (the HTTP APIs);
* per-session token buckets (frames/s, bytes/s), the idle timeout and token expiry, checked
  by the node's ticker.

Settings shared with the sans-I/O limits (frame size, subscriptions, CONNECT timeout) come from
the gateway's :class:`~gateway.settings.Settings` so there is one value for each.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping

import redis.asyncio as redis
from aiohttp import web

from chatstate.client import check_key_prefixes, client_name, redis_client
from gateway.auth.acl import MembershipFallback, MembershipLookup
from gateway.auth.authenticator import Authenticator
from gateway.auth.authority import Authority
from gateway.auth.counter import ConnectionCounter, UserLease
from gateway.auth.errors import AccessDenied, AuthError, DestinationRejected, LimitExceeded
from gateway.auth.gatekeeper import Gatekeeper
from gateway.auth.identity import Identity
from gateway.auth.limits import Breach
from gateway.auth.origin import origin_allowed, origin_rejection
from gateway.auth.rates import RatePolicy, RateProfile, SessionRateLimiter
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.settings import ConfigurationError, Settings

__all__ = [
    "Access",
    "AccessDenied",
    "AuthError",
    "Breach",
    "DestinationRejected",
    "Identity",
    "LimitExceeded",
    "UserLease",
    "auth_settings",
    "build_access",
    "node_redis",
    "rate_policy",
]

log = logging.getLogger("stompgate.access")


class Access:
    def __init__(
        self,
        auth: AuthSettings,
        redis_client: redis.Redis,
        *,
        node_id: str,
        key_prefix: str,
        membership_fallback: MembershipFallback | None = None,
        rates: RatePolicy | None = None,
    ) -> None:
        """``membership_fallback`` answers for the ``member_of`` sets it knows when Redis has
        lost them (the chat's room rosters); ``rates`` says which rates each listener and
        role gets (default: the abuse limits' everywhere)."""
        self.settings = auth
        self.limits = auth.limits
        self.redis = redis_client
        self.authenticator = Authenticator(auth)
        self.gatekeeper = Gatekeeper(
            auth.load_acl(),
            limits=auth.limits,
            membership=MembershipLookup(
                redis_client,
                key_prefix=auth.membership_prefix,
                cache_ttl=auth.membership_cache_ttl,
                fallback=membership_fallback,
            ),
            sender_header=auth.sender_header,
            queues=auth.queues,
        )
        self.counter = ConnectionCounter(
            auth.limits, redis_client, key_prefix=key_prefix, node_id=node_id
        )
        self.rates = rates or RatePolicy(
            {"ws": auth.limits, "tcp": auth.limits}, {"ws": auth.limits, "tcp": auth.limits}
        )
        self._no_rate_limits = SessionRateLimiter(RateProfile())

    async def close(self) -> None:
        await self.redis.aclose()

    async def refresh(self) -> None:
        """Keep this node's per-user connection leases alive (called periodically)."""
        await self.counter.refresh()

    # -- handshake and accept ----------------------------------------------------------------

    def check_handshake(self, request: web.Request) -> str | None:
        """Why this WebSocket handshake is refused (``origin not allowed: …``, the Origin shown
        printable and bounded), or None."""
        return self.check_origin(request.headers.get("Origin"), request.host)

    def check_origin(self, origin: str | None, host: str) -> str | None:
        """:meth:`check_handshake` from the ``Origin`` and ``Host`` headers' values."""
        allowed = origin_allowed(
            origin, host, self.limits.origins, allow_missing=not self.limits.require_origin
        )
        return None if allowed else origin_rejection(origin).message

    def handshake_token(self, request: web.Request) -> str | None:
        cookies = _LazyCookies(request)
        return self.authenticator.handshake_token(request.headers, request.query, cookies)

    def handshake_token_of(
        self, headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str | None:
        """:meth:`handshake_token` from the request's headers, query and cookies (the lean
        WebSocket path reads the request head itself)."""
        return self.authenticator.handshake_token(headers, query, cookies)

    def open_ip(self, ip: str) -> None:
        """Count a new socket from ``ip``; raises LimitExceeded."""
        self.counter.acquire_ip(ip)

    def close_ip(self, ip: str) -> None:
        self.counter.release_ip(ip)

    async def acquire_user(self, user: str) -> UserLease:
        """Count a CONNECTed session of ``user`` on every node; raises LimitExceeded."""
        return await self.counter.acquire_user(user)

    async def release_user(self, lease: UserLease) -> None:
        await self.counter.release_user(lease)

    def rate_limiter(
        self, transport: str, roles: frozenset[str] | None = None
    ) -> SessionRateLimiter:
        """The rates of a session on listener ``transport``; with ``roles``, of its identity
        (a service role has its own, see ``--service-roles``)."""
        rates = (
            self.rates.for_listener(transport)
            if roles is None
            else self.rates.for_session(transport, roles)
        )
        if not (rates.frames_per_second or rates.bytes_per_second):
            return self._no_rate_limits  # no buckets: nothing per session to keep
        return SessionRateLimiter(rates)

    # -- CONNECT -----------------------------------------------------------------------------

    async def authenticate(
        self,
        login: str | None,
        passcode: str | None,
        headers: Iterable[tuple[str, str]],
        handshake_token: str | None,
        now: float,
        *,
        anonymous: bool = True,
    ) -> Identity:
        """The identity of a CONNECT; without credentials, the configured anonymous identity
        (``anonymous=False`` for other requests, e.g. the history API, which never are)."""
        return await self.authenticator.authenticate_async(
            login,
            passcode,
            tuple(headers),
            handshake_token=handshake_token,
            now=now,
            anonymous=anonymous,
        )

    def deadline(self, identity: Identity) -> float | None:
        return self.authenticator.deadline(identity)

    # -- frames ------------------------------------------------------------------------------

    def authorize_send(
        self, identity: Identity, destination: str, headers: Iterable[tuple[str, str]]
    ) -> Awaitable[tuple[tuple[str, str], ...]]:
        """The gatekeeper's coroutine itself (every SEND: no coroutine of our own around it)."""
        return self.gatekeeper.authorize_send(identity, destination, headers)

    async def authorize_subscribe(self, identity: Identity, destination: str) -> None:
        await self.gatekeeper.authorize_subscribe(identity, destination)

    async def authorize(self, identity: Identity, authority: Authority) -> None:
        """What a plan needs besides its destination (one call per plan, before it runs)."""
        await self.gatekeeper.authorize(identity, authority)

    # -- HTTP --------------------------------------------------------------------------------

    async def authenticate_request(self, request: web.Request) -> Identity:
        """Who sends this HTTP request, judged like a CONNECT: a bearer token (header, query or
        cookie, as at the WebSocket handshake), or in development mode HTTP Basic with a dev
        login (never anonymous). Raises ``web.HTTPUnauthorized`` (the ``AuthError``'s text, e.g.
        ``token expired``, as its reason, and a ``WWW-Authenticate`` challenge)."""
        scheme = "Basic" if self.settings.mode is AuthMode.DEV else "Bearer"
        challenge = {"WWW-Authenticate": f'{scheme} realm="stompgate"'}
        login: str | None = None
        passcode: str | None = None
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise web.HTTPUnauthorized(
                    reason="malformed Basic credentials", headers=challenge
                ) from None
            login, _, passcode = decoded.partition(":")
        try:
            return await self.authenticate(
                login, passcode, (), self.handshake_token(request), time.time(), anonymous=False
            )
        except AuthError as exc:
            raise web.HTTPUnauthorized(reason=exc.text, headers=challenge) from None


class _LazyCookies(Mapping[str, str]):
    """``request.cookies``, parsed only if the token is looked for there.

    aiohttp caches the parsed cookies on the request, which lives as long as the WebSocket:
    parsing them when no cookie is consulted (dev mode, a token in a header or the query)
    would keep a second copy of every cookie per connection.
    """

    __slots__ = ("_request",)

    def __init__(self, request: web.Request) -> None:
        self._request = request

    def __getitem__(self, name: str) -> str:
        return self._request.cookies[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._request.cookies)

    def __len__(self) -> int:
        return len(self._request.cookies)


def build_access(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    auth: AuthSettings | None = None,
    membership_fallback: MembershipFallback | None = None,
) -> Access:
    """Auth from the environment (docs/security.md), with the gateway's flags winning (or
    ``auth``, already read by `auth_settings`).

    Raises ConfigurationError for settings that cannot be used."""
    if auth is None:
        auth = auth_settings(settings, environ)
    client = node_redis(settings, "access")
    return Access(
        auth,
        client,
        node_id=settings.node_id,
        key_prefix=settings.redis_prefix,
        membership_fallback=membership_fallback,
        rates=rate_policy(settings, auth),
    )


def rate_policy(settings: Settings, auth: AuthSettings) -> RatePolicy:
    """Rates per listener and role: WebSocket sessions get the abuse limits' (browsers),
    TCP sessions ``--tcp-*``, sessions of a service role ``--service-*`` on either."""
    tcp = RateProfile.derived(
        settings.tcp_frames_per_second,
        settings.tcp_bytes_per_second,
        settings.tcp_max_frame_size,
        frames_burst=settings.tcp_frames_burst,
        bytes_burst=settings.tcp_bytes_burst,
    )
    service = {
        name: RateProfile.derived(
            settings.service_frames_per_second,
            settings.service_bytes_per_second,
            size,
            frames_burst=settings.service_frames_burst,
            bytes_burst=settings.service_bytes_burst,
        )
        for name, size in (("ws", settings.max_frame_size), ("tcp", settings.tcp_max_frame_size))
    }
    return RatePolicy({"ws": auth.limits, "tcp": tcp}, service, settings.service_role_names)


def node_redis(settings: Settings, role: str) -> redis.Redis:
    """A Redis client of this node over its own bounded pool (``--redis-max-connections``,
    ``--redis-pool-timeout``), its connections named ``stompgate:<node id>:<role>``."""
    return redis_client(
        settings.redis_url,
        name=client_name(settings.node_id, role),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
    )


def auth_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> AuthSettings:
    """The auth settings `build_access` uses: the environment, the gateway's flags winning.

    Raises ConfigurationError for settings that cannot be used."""
    env = os.environ if environ is None else environ
    try:
        auth = AuthSettings.from_env(env, mode=settings.auth)
    except ValueError as exc:
        raise ConfigurationError(f"{exc} (see docs/security.md)") from None
    try:
        check_key_prefixes(
            settings.redis_url,
            [
                ("--redis-prefix", settings.redis_prefix),
                ("STOMPGATE_MEMBERSHIP_PREFIX", auth.membership_prefix),
            ],
        )
    except ValueError as exc:
        raise ConfigurationError(f"--redis-url: {exc} (see docs/operations.md)") from None
    limits = dataclasses.replace(
        auth.limits,
        max_frame_size=settings.max_frame_size,
        max_subscriptions=settings.max_subscriptions,
        connect_timeout=settings.connect_timeout,
    )
    queues = auth.queues
    if queues.deployment != settings.deployment:  # the gateway's setting, not an auth one
        queues = dataclasses.replace(queues, deployment=settings.deployment)
    return dataclasses.replace(auth, limits=limits, dev_users=settings.dev_users, queues=queues)
