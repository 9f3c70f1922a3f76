"""One client's subscriptions: a SUBSCRIBE authorized and handed to the router, and where
the client's UNSUBSCRIBE, ACK and NACK frames go.

The connection calls :meth:`Subscriptions.subscribe` and sends the RECEIPT, then starts what
the router held until it (a catch-up's replay, messages a queue held already). An ACK or
NACK reaches the subscription it names, or else the one that owns its ack id (STOMP 1.2
sends only the id). Acking what this client no longer holds (already acked, or its
subscription is gone) is harmless: the broker redelivers what is unacked.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.auth.authority import Authorize
from gateway.auth.identity import Identity
from gateway.ports import AccessPort, DeliverySink, RouterPort, Subscription
from gateway.stomp import events

__all__ = ["Subscriptions"]


class Subscriptions:
    __slots__ = ("_access", "_by_id", "_router", "_sink")

    def __init__(self, sink: DeliverySink, *, access: AccessPort, router: RouterPort) -> None:
        self._sink = sink
        self._access = access
        self._router = router
        # Made by the first SUBSCRIBE: most sessions never need it, and an empty dict per
        # session adds up.
        self._by_id: dict[str, Subscription] | None = None

    async def subscribe(
        self, identity: Identity, event: events.SubscribeRequested, *, authorize: Authorize
    ) -> Callable[[], None] | None:
        """Subscribe once the binding exists (ClientError when refused); what starts the
        deliveries held meanwhile, to call right after the RECEIPT (None: nothing held)."""
        await self._access.authorize_subscribe(identity, event.destination)
        headers = dict(reversed(event.headers))  # first occurrence wins
        sub, start = await self._router.subscribe(
            self._sink,
            event.subscription_id,
            event.destination,
            event.ack,
            headers,
            authorize=authorize,
        )
        if self._by_id is None:
            self._by_id = {}
        self._by_id[event.subscription_id] = sub
        return start

    async def unsubscribe(self, event: events.UnsubscribeRequested) -> None:
        """Cancel the subscription, then tell the router (nothing if it is gone already)."""
        subs = self._by_id
        sub = None if subs is None else subs.pop(event.subscription_id, None)
        if sub is not None:
            await sub.cancel(dict(reversed(event.headers)))  # first occurrence wins
            await self._router.unsubscribed(self._sink, sub.destination)

    async def acknowledge(self, event: events.AckRequested | events.NackRequested) -> None:
        """Hand an ACK or NACK to the subscription that holds its message, if any does."""
        subs = self._by_id or {}
        sub = None if event.subscription_id is None else subs.get(event.subscription_id)
        if sub is None:
            sub = next((s for s in subs.values() if s.owns(event.ack_id)), None)
        if sub is None:
            return
        if isinstance(event, events.AckRequested):
            await sub.ack(event.ack_id)
        else:
            await sub.nack(event.ack_id, requeue=event.requeue)

    def clear(self) -> None:
        """Forget them all (the router releases them with the client)."""
        self._by_id = None
