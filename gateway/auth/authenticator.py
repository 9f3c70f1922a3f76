"""Who is this CONNECT?  ``Authenticator`` answers in the configured mode.

In ``jwt`` mode it verifies the token from the CONNECT frame or, failing that, the one offered
at the WebSocket handshake (a CONNECT token wins), and tells when the token runs out
(``deadline``, ``check_expiry``); ``authenticate_async`` may first fetch a JWKS URL's keys.
In ``dev`` mode it checks development logins; it logs that mode at WARNING when built.  A
CONNECT without ``login`` and without any token is anonymous: it gets the configured
``anonymous_user`` (``guest`` in dev mode, as RabbitMQ's ``default_user``; in jwt mode only if
an operator configured one, with its roles), else it is refused like any CONNECT without
credentials.  It keeps no per-session state: the adapter holds the ``Identity`` (the CONNECT
and idle timeouts are the node ticker's: ``gateway.node``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from gateway.auth.errors import AuthError
from gateway.auth.identity import Identity
from gateway.auth.jwt_auth import DevAuthenticator, JwtAuthenticator
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.auth.tokens import HeaderInput, token_from_connect, token_from_handshake
from gateway.errors import ErrorMessage

__all__ = ["Authenticator"]

log = logging.getLogger("stompgate.auth")


class Authenticator:
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
        user = settings.anonymous_user
        # One identity shared by every anonymous session (it is immutable).
        self._anonymous: Identity | None = None
        if user is not None:
            self._anonymous = Identity(
                user=user, roles=settings.anonymous_roles, dev=self._dev is not None
            )
            log.warning(
                "anonymous CONNECT allowed: a client without login or token is %r%s",
                user,
                f" with roles {','.join(sorted(settings.anonymous_roles))}"
                if settings.anonymous_roles
                else "",
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
        anonymous: bool = False,
    ) -> Identity:
        """The identity of a CONNECT, or ``AuthError``.  A CONNECT token beats a handshake one.
        Verifies with the keys at hand (see ``authenticate_async``). ``anonymous``: a CONNECT
        with no login and no token gets the configured anonymous identity (STOMP CONNECT only;
        other requests must bring credentials)."""
        if self._dev is not None:
            return self._dev_identity(login, passcode, anonymous)
        assert self._jwt is not None
        token = self._token(login, passcode, headers, handshake_token)
        found = self._anonymous_identity(login, token, anonymous)
        return found if found is not None else self._jwt.verify(token, now)

    async def authenticate_async(
        self,
        login: str | None,
        passcode: str | None,
        headers: HeaderInput,
        *,
        handshake_token: str | None = None,
        now: float | None = None,
        anonymous: bool = False,
    ) -> Identity:
        """``authenticate``, but with a JWKS URL configured the keys may be fetched first (on
        first use, when stale, or once more for a token whose key is unknown)."""
        if self._dev is not None:
            return self._dev_identity(login, passcode, anonymous)
        assert self._jwt is not None
        token = self._token(login, passcode, headers, handshake_token)
        found = self._anonymous_identity(login, token, anonymous)
        return found if found is not None else await self._jwt.verify_async(token, now)

    def _dev_identity(self, login: str | None, passcode: str | None, anonymous: bool) -> Identity:
        assert self._dev is not None
        if login is None and anonymous and self._anonymous is not None:
            return self._anonymous
        return self._dev.verify_login(login, passcode)

    def _anonymous_identity(
        self, login: str | None, token: str | None, anonymous: bool
    ) -> Identity | None:
        if anonymous and token is None and login is None:
            return self._anonymous
        return None

    def _token(
        self,
        login: str | None,
        passcode: str | None,
        headers: HeaderInput,
        handshake_token: str | None,
    ) -> str | None:
        return token_from_connect(login, passcode, headers, self.settings.sources) or (
            handshake_token
        )

    def deadline(self, identity: Identity) -> float | None:
        """Epoch seconds at which the session must be closed because its token expired."""
        return None if self._jwt is None else self._jwt.deadline(identity)

    def check_expiry(self, identity: Identity, now: float | None = None) -> AuthError | None:
        """``AuthError("token expired")`` (``Credential expired``) once the token has run out
        mid-session, else None."""
        deadline = self.deadline(identity)
        current = time.time() if now is None else now
        if deadline is not None and current >= deadline:
            return AuthError(
                "token expired",
                "the session's token expired; reconnect with a fresh token",
                message=ErrorMessage.CREDENTIAL_EXPIRED,
            )
        return None
