"""Where a session's token is found: the WebSocket handshake or the CONNECT frame.

Precedence (first found wins; each source can be switched off in ``TokenSources``):

- handshake: ``Authorization: Bearer <token>`` header, then the ``access_token`` query
  parameter, then the cookie named by ``ws_cookie``;
- CONNECT: ``Authorization: Bearer <token>`` header (name case-insensitive; first occurrence
  wins, as for every STOMP header), then the ``passcode`` header (``login`` is ignored and may
  be empty; an optional ``Bearer `` prefix in the passcode is accepted).

A token presented in CONNECT takes precedence over one from the handshake (see
``gateway.auth.authenticator``): a client that reconnects with a refreshed token in its connect
headers should not be judged by a stale cookie.

Cookies ride along on cross-site requests, so cookie authentication is only as safe as the
Origin check (``gateway.auth.origin.origin_allowed``) in front of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.auth import _env

__all__ = ["TokenSources", "bearer_token", "token_from_connect", "token_from_handshake"]

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TokenSources:
    """Which places may carry the token.  Environment variables (prefix ``STOMPGATE_``):

    ==================================  ===================  ===================
    variable                            field                default
    ==================================  ===================  ===================
    ``TOKEN_FROM_PASSCODE``             ``connect_passcode`` ``true``
    ``TOKEN_FROM_CONNECT_HEADER``       ``connect_header``   ``true``
    ``TOKEN_FROM_WS_HEADER``            ``ws_header``        ``true``
    ``TOKEN_FROM_WS_QUERY``             ``ws_query``         ``true``
    ``TOKEN_COOKIE``                    ``ws_cookie``        ``stompgate_token``; ``off`` disables
    ``TOKEN_QUERY_PARAMETER``           ``query_parameter``  ``access_token``
    ==================================  ===================  ===================
    """

    connect_passcode: bool = True
    connect_header: bool = True
    ws_header: bool = True
    ws_query: bool = True
    ws_cookie: str | None = "stompgate_token"
    query_parameter: str = "access_token"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_") -> TokenSources:
        cookie = _env.get_str(environ, f"{prefix}TOKEN_COOKIE", "stompgate_token")
        if cookie is not None and cookie.lower() in {"off", "none", "false", "0"}:
            cookie = None
        return cls(
            connect_passcode=_env.get_bool(environ, f"{prefix}TOKEN_FROM_PASSCODE", True),
            connect_header=_env.get_bool(environ, f"{prefix}TOKEN_FROM_CONNECT_HEADER", True),
            ws_header=_env.get_bool(environ, f"{prefix}TOKEN_FROM_WS_HEADER", True),
            ws_query=_env.get_bool(environ, f"{prefix}TOKEN_FROM_WS_QUERY", True),
            ws_cookie=cookie,
            query_parameter=_env.get_str(environ, f"{prefix}TOKEN_QUERY_PARAMETER", None)
            or "access_token",
        )


def bearer_token(value: str | None) -> str | None:
    """The token in an ``Authorization`` value ``Bearer <token>`` (scheme case-insensitive)."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def _first(headers: HeaderInput, name: str) -> str | None:
    """First header value whose name equals ``name`` case-insensitively."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lowered = name.lower()
    for key, value in items:
        if key.lower() == lowered:
            return value
    return None


def token_from_handshake(
    headers: HeaderInput,
    query: Mapping[str, str],
    cookies: Mapping[str, str],
    sources: TokenSources,
) -> str | None:
    """The token presented at the WebSocket handshake, or ``None``."""
    if sources.ws_header:
        token = bearer_token(_first(headers, "authorization"))
        if token:
            return token
    if sources.ws_query:
        value = query.get(sources.query_parameter, "").strip()
        if value:
            return value
    if sources.ws_cookie:
        value = cookies.get(sources.ws_cookie, "").strip()
        if value:
            return value
    return None


def token_from_connect(
    login: str | None,
    passcode: str | None,
    headers: HeaderInput,
    sources: TokenSources,
) -> str | None:
    """The token presented in a CONNECT/STOMP frame, or ``None``.  ``login`` is not used."""
    del login  # may be empty or anything; the identity comes from the token's sub
    if sources.connect_header:
        token = bearer_token(_first(headers, "authorization"))
        if token:
            return token
    if sources.connect_passcode and passcode is not None:
        value = passcode.strip()
        prefixed = bearer_token(value)
        value = prefixed if prefixed is not None else value
        if value:
            return value
    return None
