"""gateway.auth: who a session is, and what it may do.

One job per module, all pure except where Redis is named:

- ``errors``    AuthError, AccessDenied, DestinationRejected, LimitExceeded (exact messages)
- ``identity``  Identity: the authenticated user stamped on everything a session sends
- ``jwt_auth``  JwtSettings, JwtAuthenticator (pinned algorithms, keys, JWKS reload),
                DevAuthenticator (development mode logins)
- ``tokens``    TokenSources; where the token is found (handshake or CONNECT)
- ``acl``       Acl rules file -> SUBSCRIBE/SEND decisions; MembershipLookup (Redis SISMEMBER)
- ``hygiene``   check_destination, strip_spoofed_headers
- ``limits``    AbuseLimits, TokenBucket, SessionRateLimiter, ConnectionCounter
                (Redis for per-user counts across nodes), origin_allowed
- ``session``   AuthSettings.from_env, SessionAuthenticator, Gatekeeper: the adapter's view

Order of checks for a session (see docs/security.md):
handshake (Origin, per-IP count, optional token) -> CONNECT within connect_timeout
(authenticate, per-user count) -> every frame (size, rate) -> SUBSCRIBE/SEND (hygiene, ACL,
sender stamp) -> token expiry timer -> close (release counts).
"""

from gateway.auth.acl import Acl, MembershipLookup, Rule
from gateway.auth.errors import AccessDenied, AuthError, DestinationRejected, LimitExceeded
from gateway.auth.hygiene import check_destination, strip_spoofed_headers
from gateway.auth.identity import Identity
from gateway.auth.jwt_auth import DevAuthenticator, JwtAuthenticator, JwtSettings
from gateway.auth.limits import (
    AbuseLimits,
    Breach,
    ConnectionCounter,
    SessionRateLimiter,
    TokenBucket,
    UserLease,
    origin_allowed,
    origin_rejection,
)
from gateway.auth.session import AuthMode, AuthSettings, Gatekeeper, SessionAuthenticator
from gateway.auth.tokens import TokenSources, token_from_connect, token_from_handshake

__all__ = [
    "AbuseLimits",
    "AccessDenied",
    "Acl",
    "AuthError",
    "AuthMode",
    "AuthSettings",
    "Breach",
    "ConnectionCounter",
    "DestinationRejected",
    "DevAuthenticator",
    "Gatekeeper",
    "Identity",
    "JwtAuthenticator",
    "JwtSettings",
    "LimitExceeded",
    "MembershipLookup",
    "Rule",
    "SessionAuthenticator",
    "SessionRateLimiter",
    "TokenBucket",
    "TokenSources",
    "UserLease",
    "check_destination",
    "origin_allowed",
    "origin_rejection",
    "strip_spoofed_headers",
    "token_from_connect",
    "token_from_handshake",
]
