"""gateway.auth: who a session is, and what it may do.

One job per module, all pure except where Redis or HTTP is named:

- ``errors``         AuthError, AccessDenied, DestinationRejected, LimitExceeded (exact messages)
- ``identity``       Identity: the authenticated user stamped on everything a session sends
- ``jwt_auth``       JwtSettings, JwtAuthenticator (pinned algorithms, keys, JWKS reload),
                     DevAuthenticator (development mode logins)
- ``jwks_url``       JwksUrlSettings, RemoteJwks: a JWKS fetched from the issuer's URL
                     (HTTP: cached, refreshed on an unknown kid, bounded)
- ``tokens``         TokenSources; where the token is found (handshake or CONNECT)
- ``acl``            Acl rules file -> SUBSCRIBE/SEND/queue decisions; MembershipLookup (Redis)
- ``authority``      Authority: what a relay plan needs besides its destination (queues,
                     dead-letter targets, queue arguments)
- ``queue_policy``   QueuePolicy: users' queue namespaces, durable queue names that name their
                     owner, reserved names, queue argument bounds, the durable cap
- ``hygiene``        check_destination, strip_spoofed_headers
- ``limits``         AbuseLimits (every abuse limit), Breach and its kinds, frame-size and
                     subscription checks
- ``origin``         origin_allowed, origin_rejection: the WebSocket Origin allow-list
- ``rates``          TokenBucket, SessionRateLimiter (frames/s and bytes/s of one session),
                     RatePolicy (the rates of each listener and of service roles)
- ``input_budget``   InputMeter, NodeInputBudget: every frame and byte charged (inside
                     transactions, before a frame is whole), the node's budget of held input
- ``counter``        ConnectionCounter, UserLease: connections per IP, and per user across
                     nodes (Redis)
- ``settings``       AuthMode, AuthSettings.from_env: every auth setting from the environment
- ``authenticator``  Authenticator: who is this CONNECT (jwt or dev mode); token expiry
- ``gatekeeper``     Gatekeeper: may this identity SUBSCRIBE/SEND here, and use what the plan
                     for the frame needs; sender stamping

Order of checks for a session (see docs/security.md):
handshake (Origin, per-IP count, optional token) -> CONNECT within connect_timeout
(authenticate, per-user count) -> every frame (size, rate) -> SUBSCRIBE/SEND (hygiene, ACL,
sender stamp; then the plan's authority) -> token expiry timer -> close (release counts).
"""

from gateway.auth.acl import Acl, MembershipLookup, Rule
from gateway.auth.authenticator import Authenticator
from gateway.auth.counter import ConnectionCounter, UserLease
from gateway.auth.errors import AccessDenied, AuthError, DestinationRejected, LimitExceeded
from gateway.auth.gatekeeper import Gatekeeper
from gateway.auth.hygiene import check_destination, strip_spoofed_headers
from gateway.auth.identity import Identity
from gateway.auth.jwt_auth import DevAuthenticator, JwtAuthenticator, JwtSettings
from gateway.auth.limits import AbuseLimits, Breach
from gateway.auth.origin import origin_allowed, origin_rejection
from gateway.auth.rates import SessionRateLimiter, TokenBucket
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.auth.tokens import TokenSources, token_from_connect, token_from_handshake

__all__ = [
    "AbuseLimits",
    "AccessDenied",
    "Acl",
    "AuthError",
    "AuthMode",
    "AuthSettings",
    "Authenticator",
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
