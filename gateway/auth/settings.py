"""Every auth setting in one frozen dataclass, built from the environment.

``AuthSettings.from_env`` reads the mode, token sources, JWT settings, abuse limits and rules
file (``STOMPGATE_*``, see docs/security.md); ``load_acl`` loads the rules it names.

Modes: ``jwt`` (the default) or ``dev``.  Development mode is used only when chosen explicitly
(``STOMPGATE_AUTH=dev`` or the CLI's ``--auth dev``).  A broken JWT configuration is a
start-up error, never a fall-back to development mode.

Anonymous CONNECT (no ``login`` and no token anywhere) is refused in ``jwt`` mode unless an
operator names the identity it gets (``STOMPGATE_ANONYMOUS_USER``, with the roles its ACL
rules match, ``STOMPGATE_ANONYMOUS_ROLES``); in ``dev`` mode it is ``guest``, as RabbitMQ's
``default_user`` (``STOMPGATE_ANONYMOUS_USER=off`` refuses it there too).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.auth import _env
from gateway.auth.acl import Acl
from gateway.auth.jwt_auth import JwtSettings, valid_user_name
from gateway.auth.limits import AbuseLimits
from gateway.auth.queue_policy import QueuePolicy
from gateway.auth.tokens import TokenSources

__all__ = ["DEV_ANONYMOUS_USER", "AuthMode", "AuthSettings"]

#: The identity of an anonymous CONNECT in dev mode unless configured otherwise (RabbitMQ's
#: ``default_user``).
DEV_ANONYMOUS_USER = "guest"
#: ``STOMPGATE_ANONYMOUS_USER`` value that refuses anonymous CONNECT (in dev mode too).
_OFF = "off"

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
    ``ANONYMOUS_USER``            ``anonymous_user``           unset (refused) in jwt mode,
                                                               ``guest`` in dev mode;
                                                               ``off`` refuses it
    ``ANONYMOUS_ROLES``           ``anonymous_roles``          none
    ============================  ===========================  =============================

    plus ``TokenSources``, ``JwtSettings`` (jwt mode only), ``AbuseLimits`` and
    ``QueuePolicy`` (reserved queue names, queue argument bounds, durable subscriptions per
    user) variables.
    """

    mode: AuthMode = AuthMode.JWT
    jwt: JwtSettings | None = None
    sources: TokenSources = field(default_factory=TokenSources)
    limits: AbuseLimits = field(default_factory=AbuseLimits)
    queues: QueuePolicy = field(default_factory=QueuePolicy)
    dev_users: str = "guest:guest"
    acl_file: str | None = None
    sender_header: str = "sender"
    membership_prefix: str = "stompgate:"
    membership_cache_ttl: float = 2.0
    #: The identity of a CONNECT with no ``login`` and no token (None: refused).
    anonymous_user: str | None = None
    #: The roles of that identity, for the ACL's ``roles`` conditions (jwt mode).
    anonymous_roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mode is AuthMode.JWT and self.jwt is None:
            raise ValueError("jwt auth mode needs JWT settings (algorithms and keys)")
        if self.anonymous_user is not None and not valid_user_name(self.anonymous_user):
            raise ValueError(
                f"STOMPGATE_ANONYMOUS_USER must be a printable user name of 1-255 characters, "
                f"got {self.anonymous_user!r}"
            )

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
        anonymous = _env.get_str(
            environ,
            f"{prefix}ANONYMOUS_USER",
            DEV_ANONYMOUS_USER if chosen is AuthMode.DEV else None,
        )
        return cls(
            mode=chosen,
            anonymous_user=None if anonymous is None or anonymous.lower() == _OFF else anonymous,
            anonymous_roles=frozenset(_env.get_list(environ, f"{prefix}ANONYMOUS_ROLES", ())),
            jwt=JwtSettings.from_env(environ, prefix) if chosen is AuthMode.JWT else None,
            sources=TokenSources.from_env(environ, prefix),
            limits=AbuseLimits.from_env(environ, prefix),
            queues=QueuePolicy.from_env(environ, prefix),
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
