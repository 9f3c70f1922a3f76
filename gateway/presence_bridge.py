"""Wires presence (:mod:`gateway.presence`) into a gateway node.

* The node's lifecycle events reach the :class:`~gateway.presence.tracker.PresenceTracker`
  the app gave the node as a listener; the :class:`~gateway.presence.keeper.PresenceKeeper`
  turns them into one Redis step per interval and publishes the changes through the node's
  relay (to ``/topic/room.<room>``, like the chat layer's events).
* ``/app/presence/query``, ``/app/presence/invisible`` and ``/app/rooms/<room>/presence`` go to
  the :class:`~gateway.presence.service.PresenceService` (the router asks :meth:`handles`);
  answers go to ``/user/<asker>/queue/presence``.
* The HTTP API (``/api/presence``, ``/api/rooms/{room}/presence``, ``/api/me/presence``) is
  authenticated like the history API.
* Room membership is the rooms' (:class:`~gateway.presence.membership.RoomMembership` over
  the node's :class:`~gateway.chat.membership.Membership`; none without a store).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from aiohttp import web

from gateway.access import Access, node_redis
from gateway.chat_bridge import RoomsParts, relay_publisher, request_user, room_authorizer
from gateway.presence.announcer import PresenceAnnouncer
from gateway.presence.api import presence_routes
from gateway.presence.keeper import PresenceKeeper
from gateway.presence.membership import NoRooms, RoomMembership, RoomsOfUser
from gateway.presence.service import PresenceService
from gateway.presence.settings import PresenceSettings
from gateway.presence.store import PresenceStore
from gateway.presence.tracker import PresenceTracker
from gateway.relay import Relay
from gateway.settings import Settings

__all__ = ["PresenceBridge", "build_presence"]


class PresenceBridge:
    def __init__(
        self, service: PresenceService, keeper: PresenceKeeper, redis: aioredis.Redis
    ) -> None:
        self.service = service
        self.keeper = keeper
        self._redis = redis

    def handles(self, destination: str) -> bool:
        return self.service.handles(destination)

    async def handle_send(
        self, user: str, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        await self.service.handle_send(user, destination, headers, body)

    async def close(self) -> None:
        """Hand this node's users over (the node's sessions are closed by now)."""
        await self.keeper.stop()
        await self._redis.aclose()


async def build_presence(
    settings: Settings,
    presence: PresenceSettings,
    tracker: PresenceTracker,
    relay: Relay,
    access: Access,
    app: web.Application,
    *,
    rooms: RoomsParts | None = None,
) -> PresenceBridge:
    """Start presence for a node: register it in Redis with the users it has, start its loop,
    add the HTTP routes. ``rooms``: the node's rooms (`gateway.chat_bridge.build_rooms`),
    whose membership says which rooms hear of a user's changes (None: no rooms)."""
    redis = node_redis(settings, "presence")
    store = PresenceStore(
        redis,
        key_prefix=settings.redis_prefix,
        grace_ms=round(presence.grace * 1000),
        lease_ms=round(presence.lease_seconds * 1000),
    )
    members: RoomsOfUser = NoRooms() if rooms is None else RoomMembership(rooms.membership)
    publish = relay_publisher(relay, "presence")
    announcer = PresenceAnnouncer(members, publish, fanout_max=presence.fanout_max)
    keeper = PresenceKeeper(
        store, tracker, announcer, interval=presence.interval, node_id=settings.node_id
    )
    service = PresenceService(store, members, announcer, publish)
    app.router.add_routes(
        presence_routes(
            service, authenticate=request_user(access), authorize_room=room_authorizer(access)
        )
    )
    await keeper.start()
    return PresenceBridge(service, keeper, redis)
