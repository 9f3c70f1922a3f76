"""The auth layer as the session adapter sees it: settings, who-are-you, may-you.

``AuthSettings.from_env`` builds every auth setting (mode, token sources, JWT, limits, rules
file) from the environment.  ``SessionAuthenticator`` answers "who is this CONNECT?" in the
configured mode; ``Gatekeeper`` answers "may this identity SUBSCRIBE/SEND here?" (hygiene, then
ACL) and stamps the sender on SENDs.  Neither keeps per-session state: the adapter holds the
``Identity`` and the per-session ``SessionRateLimiter`` from ``limits`` (the CONNECT and idle
timeouts are the node ticker's: ``gateway.node``).

Modes: ``jwt`` (the default) or ``dev``.  Development mode is used only when chosen explicitly
(``STOMPGATE_AUTH=dev`` or the CLI's ``--auth dev``); it is logged at WARNING on start-up.  A
broken JWT configuration is a start-up error, never a fall-back to development mode.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.auth import _env
from gateway.auth.acl import Acl, MembershipLookup
from gateway.auth.errors import AuthError
from gateway.auth.hygiene import check_destination, strip_spoofed_headers
from gateway.auth.identity import Identity
from gateway.auth.jwt_auth import DevAuthenticator, JwtAuthenticator, JwtSettings
from gateway.auth.limits import AbuseLimits
from gateway.auth.tokens import (
    HeaderInput,
    TokenSources,
    token_from_connect,
    token_from_handshake,
)

__all__ = ["AuthMode", "AuthSettings", "Gatekeeper", "SessionAuthenticator"]

log = logging.getLogger("stompgate.auth")


class AuthMode(enum.Enum):
    JWT = "jwt"
    DEV = "dev"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Everything gateway.auth needs.  Environment variables (prefix ``STOMPGATE_``):

    ============================  ===========================  =============================
    variable                      field                        default
    ============================  ===========================  =============================
    ``AUTH``                      ``mode``                     ``jwt`` (``dev`` explicit only)
    ``DEV_USERS``                 ``dev_users``                ``guest:guest``
    ``ACL_FILE``                  ``acl_file``                 unset: built-in default rules
    ``SENDER_HEADER``             ``sender_header``            ``sender``
    ``MEMBERSHIP_PREFIX``         ``membership_prefix``        ``stompgate:``
    ``MEMBERSHIP_CACHE_TTL``      ``membership_cache_ttl``     ``2`` seconds (0: no cache)
    ============================  ===========================  =============================

    plus ``TokenSources``, ``JwtSettings`` (jwt mode only) and ``AbuseLimits`` variables.
    """

    mode: AuthMode = AuthMode.JWT
    jwt: JwtSettings | None = None
    sources: TokenSources = field(default_factory=TokenSources)
    limits: AbuseLimits = field(default_factory=AbuseLimits)
    dev_users: str = "guest:guest"
    acl_file: str | None = None
    sender_header: str = "sender"
    membership_prefix: str = "stompgate:"
    membership_cache_ttl: float = 2.0

    def __post_init__(self) -> None:
        if self.mode is AuthMode.JWT and self.jwt is None:
            raise ValueError("jwt auth mode needs JWT settings (algorithms and keys)")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        prefix: str = "STOMPGATE_",
        *,
        mode: AuthMode | str | None = None,
    ) -> AuthSettings:
        """``mode`` (e.g. from ``--auth``) overrides ``STOMPGATE_AUTH``."""
        raw = mode if mode is not None else _env.get_str(environ, f"{prefix}AUTH", "jwt")
        try:
            chosen = raw if isinstance(raw, AuthMode) else AuthMode(str(raw).lower())
        except ValueError:
            raise ValueError(f"{prefix}AUTH must be 'jwt' or 'dev', got {raw!r}") from None
        return cls(
            mode=chosen,
            jwt=JwtSettings.from_env(environ, prefix) if chosen is AuthMode.JWT else None,
            sources=TokenSources.from_env(environ, prefix),
            limits=AbuseLimits.from_env(environ, prefix),
            dev_users=_env.get_str(environ, f"{prefix}DEV_USERS", "guest:guest") or "",
            acl_file=_env.get_str(environ, f"{prefix}ACL_FILE", None),
            sender_header=_env.get_str(environ, f"{prefix}SENDER_HEADER", "sender") or "sender",
            membership_prefix=_env.get_str(environ, f"{prefix}MEMBERSHIP_PREFIX", "stompgate:")
            or "",
            membership_cache_ttl=_env.get_float(environ, f"{prefix}MEMBERSHIP_CACHE_TTL", 2.0),
        )

    def load_acl(self) -> Acl:
        if self.acl_file is None:
            log.info("no ACL file configured: using the built-in default rules")
            return Acl.default()
        return Acl.from_file(self.acl_file)


class SessionAuthenticator:
    """Authenticates a session from its handshake and CONNECT frame, in the configured mode."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        jwt: JwtAuthenticator | None = None,
        dev: DevAuthenticator | None = None,
    ) -> None:
        self.settings = settings
        self.mode = settings.mode
        if self.mode is AuthMode.JWT:
            if jwt is None:
                assert settings.jwt is not None
                jwt = JwtAuthenticator(settings.jwt)
            self._jwt: JwtAuthenticator | None = jwt
            self._dev: DevAuthenticator | None = None
            log.info(
                "auth mode jwt: algorithms %s, audience %s, issuer %s",
                ",".join(jwt.settings.algorithms),
                jwt.settings.audience,
                jwt.settings.issuer,
            )
        else:
            self._jwt = None
            self._dev = dev or DevAuthenticator.from_string(settings.dev_users)
            log.warning(
                "AUTH MODE DEV: no token checks; dev users %s may use every destination. "
                "Never run this in production.",
                ",".join(self._dev.logins),
            )

    def handshake_token(
        self, headers: HeaderInput, query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str | None:
        """The token offered at the WebSocket handshake (None in dev mode or if absent)."""
        if self._jwt is None:
            return None
        return token_from_handshake(headers, query, cookies, self.settings.sources)

    def authenticate(
        self,
        login: str | None,
        passcode: str | None,
        headers: HeaderInput,
        *,
        handshake_token: str | None = None,
        now: float | None = None,
    ) -> Identity:
        """The identity of a CONNECT, or ``AuthError``.  A CONNECT token beats a handshake one."""
        if self._dev is not None:
            return self._dev.verify_login(login, passcode)
        assert self._jwt is not None
        token = token_from_connect(login, passcode, headers, self.settings.sources)
        return self._jwt.verify(token or handshake_token, now)

    def deadline(self, identity: Identity) -> float | None:
        """Epoch seconds at which the session must be closed because its token expired."""
        return None if self._jwt is None else self._jwt.deadline(identity)

    def check_expiry(self, identity: Identity, now: float | None = None) -> AuthError | None:
        """``AuthError("token expired")`` once the token has run out mid-session, else None."""
        deadline = self.deadline(identity)
        current = time.time() if now is None else now
        if deadline is not None and current >= deadline:
            return AuthError(
                "token expired", "the session's token expired; reconnect with a fresh token"
            )
        return None


class Gatekeeper:
    """Per-frame checks: destination hygiene, then the ACL; sender stamping for SEND."""

    def __init__(
        self,
        acl: Acl,
        *,
        limits: AbuseLimits | None = None,
        membership: MembershipLookup | None = None,
        sender_header: str = "sender",
    ) -> None:
        self.acl = acl
        self.limits = limits or AbuseLimits()
        self.membership = membership
        self.sender_header = sender_header

    async def authorize_subscribe(self, identity: Identity, destination: str) -> None:
        """Raise ``DestinationRejected`` or ``AccessDenied``, or return."""
        check_destination(
            destination, for_send=False, max_length=self.limits.max_destination_length
        )
        await self.acl.check(identity, "subscribe", destination, membership=self.membership)

    async def authorize_send(
        self, identity: Identity, destination: str, headers: Iterable[tuple[str, str]]
    ) -> tuple[tuple[str, str], ...]:
        """The SEND's headers with identity headers stripped and the sender stamped."""
        check_destination(destination, for_send=True, max_length=self.limits.max_destination_length)
        if not identity.dev:  # development identities may do everything (Acl.check)
            await self.acl.check(identity, "send", destination, membership=self.membership)
        return strip_spoofed_headers(headers, identity.user, sender_header=self.sender_header)
