"""May this identity SUBSCRIBE or SEND here?  ``Gatekeeper`` answers, frame by frame.

Destination hygiene first (so an ACL message only ever echoes allowed characters), then the
ACL (rules, token claims, room membership); on SEND it strips headers a client could use to
pose as someone else and stamps the sender.  It keeps no per-session state.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.auth.acl import Acl, MembershipLookup
from gateway.auth.hygiene import check_destination, strip_spoofed_headers
from gateway.auth.identity import Identity
from gateway.auth.limits import AbuseLimits

__all__ = ["Gatekeeper"]


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
