"""Who a session is: the authenticated user, stamped on everything the session sends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Identity"]


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
    roles: frozenset[str] = frozenset()
    dev: bool = False
    rooms: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    def expired(self, now: float, leeway: float = 0.0) -> bool:
        """True once ``now`` is past ``expires_at + leeway``."""
        return self.expires_at is not None and now >= self.expires_at + leeway
