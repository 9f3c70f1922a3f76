"""May this identity SUBSCRIBE or SEND here?  ``Gatekeeper`` answers, frame by frame.

Destination hygiene first (so an ACL message only ever echoes allowed characters), then the
ACL (rules, token claims, room membership); on SEND it strips headers a client could use to
pose as someone else and stamps the sender.  Then, once the relay has planned what the frame
becomes on the broker, :meth:`Gatekeeper.authorize` decides everything the plan needs besides
its destination (:class:`~gateway.auth.authority.Authority`), in one call and before anything
runs: the queue arguments within this deployment's bounds; each queue it names owned by the
user, allowed by an ACL ``queue`` rule, or neither reserved nor named by header
(:mod:`gateway.auth.queue_policy`); each dead-letter target allowed as a SEND there.  It keeps
no per-session state.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.auth.acl import Acl, MembershipLookup
from gateway.auth.authority import Authority
from gateway.auth.errors import (
    AccessDenied,
    AccessRefused,
    DestinationRejected,
    QueueArgumentRefused,
)
from gateway.auth.hygiene import check_destination, strip_spoofed_headers
from gateway.auth.identity import Identity
from gateway.auth.limits import AbuseLimits
from gateway.auth.queue_policy import QueuePolicy, shown_name

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
        queues: QueuePolicy | None = None,
    ) -> None:
        self.acl = acl
        self.limits = limits or AbuseLimits()
        self.membership = membership
        self.sender_header = sender_header
        self.queues = queues or QueuePolicy()

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

    async def authorize(self, identity: Identity, authority: Authority) -> None:
        """Everything a plan needs besides its destination (already authorized), or raise
        ``QueueArgumentRefused`` (bounds, for every identity) or ``AccessRefused`` (a queue
        or dead-letter target that is not the user's; development identities may use all)."""
        refusal = self.queues.argument_refusal(authority.arguments)
        if refusal is not None:
            raise QueueArgumentRefused(refusal)
        if identity.dev:
            return
        user = identity.user
        for use in authority.queues:
            refusal = self.queues.queue_refusal(user, use)
            if refusal is not None and not await self._queue_rule_allows(identity, use.name):
                raise AccessRefused(user, refusal)
        if authority.dead_letter_unbounded:
            raise AccessRefused(
                user,
                "x-dead-letter-exchange without x-dead-letter-routing-key: dead letters would "
                "keep their own routing keys, which cannot be authorized in advance; give "
                "x-dead-letter-routing-key",
                reason="dead_letter_denied",
            )
        for target in authority.dead_letters:
            try:
                check_destination(
                    target, for_send=True, max_length=self.limits.max_destination_length
                )
                await self.acl.check(identity, "send", target, membership=self.membership)
            except (AccessDenied, DestinationRejected) as exc:
                raise AccessRefused(
                    user,
                    f"dead-letter target {shown_name(target)} is authorized as a SEND there: "
                    f"{exc.detail}",
                    reason="dead_letter_denied",
                ) from None

    async def _queue_rule_allows(self, identity: Identity, name: str) -> bool:
        try:
            await self.acl.check(identity, "queue", "/queue/" + name, membership=self.membership)
        except AccessDenied:
            return False
        return True
