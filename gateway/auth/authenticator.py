"""Who is this CONNECT?  ``Authenticator`` answers in the configured mode.

In ``jwt`` mode it verifies the token from the CONNECT frame or, failing that, the one offered
at the WebSocket handshake (a CONNECT token wins), and tells when the token runs out
(``deadline``, ``check_expiry``); ``authenticate_async`` may first fetch a JWKS URL's keys.
In ``dev`` mode it checks development logins; it logs that
mode at WARNING when built.  It keeps no per-session state: the adapter holds the ``Identity``
(the CONNECT and idle timeouts are the node ticker's: ``gateway.node``).
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
        """The identity of a CONNECT, or ``AuthError``.  A CONNECT token beats a handshake one.
        Verifies with the keys at hand (see ``authenticate_async``)."""
        if self._dev is not None:
            return self._dev.verify_login(login, passcode)
        assert self._jwt is not None
        return self._jwt.verify(self._token(login, passcode, headers, handshake_token), now)

    async def authenticate_async(
        self,
        login: str | None,
        passcode: str | None,
        headers: HeaderInput,
        *,
        handshake_token: str | None = None,
        now: float | None = None,
    ) -> Identity:
        """``authenticate``, but with a JWKS URL configured the keys may be fetched first (on
        first use, when stale, or once more for a token whose key is unknown)."""
        if self._dev is not None:
            return self._dev.verify_login(login, passcode)
        assert self._jwt is not None
        token = self._token(login, passcode, headers, handshake_token)
        return await self._jwt.verify_async(token, now)

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
        """``AuthError("token expired")`` once the token has run out mid-session, else None."""
        deadline = self.deadline(identity)
        current = time.time() if now is None else now
        if deadline is not None and current >= deadline:
            return AuthError(
                "token expired", "the session's token expired; reconnect with a fresh token"
            )
        return None
