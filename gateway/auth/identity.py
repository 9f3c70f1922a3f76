"""Who a session is: the authenticated user, stamped on everything the session sends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

__all__ = ["Identity"]

# Shared empty values: an identity lives as long as its session, and since Python 3.10 every
# ``frozenset()`` is a new 216-byte object (an empty dict plus its proxy, 100 more).
_NO_CLAIMS: Final[Mapping[str, Any]] = MappingProxyType({})
_NO_NAMES: Final[frozenset[str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Identity:
    """The authenticated principal of one session.

    - ``user``: the token's ``sub`` (or the dev login); this is what the gateway stamps as the
      sender of every SEND, whatever the client claims.
    - ``claims``: the verified token claims, read-only (a ``MappingProxyType`` over a copy).
    - ``expires_at``: the token's ``exp`` in epoch seconds (``None``: never, e.g. dev mode).
    - ``roles``: from the configured roles claim (``JwtSettings.roles_claim``).
    - ``rooms``: from the configured rooms claim (``JwtSettings.rooms_claim``); the ACL's
      ``rooms`` condition reads it.
    - ``dev``: a development-mode identity; the ACL allows it everything.
    """

    user: str
    claims: Mapping[str, Any] = field(default_factory=dict, hash=False)
    expires_at: float | None = None
    roles: frozenset[str] = _NO_NAMES
    dev: bool = False
    rooms: frozenset[str] = _NO_NAMES

    def __post_init__(self) -> None:
        if not isinstance(self.claims, MappingProxyType):
            claims = MappingProxyType(dict(self.claims)) if self.claims else _NO_CLAIMS
            object.__setattr__(self, "claims", claims)
        if not self.roles and self.roles is not _NO_NAMES:
            object.__setattr__(self, "roles", _NO_NAMES)
        if not self.rooms and self.rooms is not _NO_NAMES:
            object.__setattr__(self, "rooms", _NO_NAMES)

    def expired(self, now: float, leeway: float = 0.0) -> bool:
        """True once ``now`` is past ``expires_at + leeway``."""
        return self.expires_at is not None and now >= self.expires_at + leeway
