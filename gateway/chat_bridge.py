"""Wires the chat layer (:mod:`gateway.chat`) into a gateway node.

* ``/app/...`` SENDs go to :class:`~gateway.chat.layer.ChatLayer`, which publishes through the
  node's relay (so a chat RECEIPT, too, means the broker confirmed).
* Subscribe-time catch-up: a SUBSCRIBE to ``/topic/room.<room>`` with a ``cur-max-message-id``
  header first gets every message of the room after that id (Redis recent cache, then the
  store), then live ones, with no gap and no duplicate. See :meth:`ChatBridge.replay`; the
  node's :class:`~gateway.router.Router` binds it, and
  :class:`~gateway.chat.catch_up.CatchUpSink` holds and de-duplicates the live ones.
* ``GET /api/rooms/{room}/messages``, authenticated like a CONNECT (a bearer token; in
  development mode HTTP Basic with a dev login) and allowed when the user may SUBSCRIBE to the
  room's topic. :func:`request_user` authenticates the same way for the ``/api/me/...``
  routes (push subscriptions and mutes, :mod:`gateway.chat.push_api`).
* The Snowflake node id is leased in Redis for as long as the node runs.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from gateway import stomp_headers
from gateway.access import Access, AccessDenied, AuthError, DestinationRejected, Identity
from gateway.chat.destinations import is_valid_room
from gateway.chat.errors import ChatError, StoreBehindError
from gateway.chat.history_api import Authorize, history_routes
from gateway.chat.layer import ChatLayer, ReplayItem
from gateway.chat.node_lease import NodeLease
from gateway.chat.snowflake import MAX_ID
from gateway.chat.store_api import MessageReader
from gateway.relay import Relay
from gateway.settings import Settings

__all__ = [
    "REPLAY_HEADER",
    "ChatBridge",
    "ChatError",
    "StoreBehindError",
    "build_chat",
    "request_user",
]

log = logging.getLogger("stompgate.chat")

REPLAY_HEADER = "cur-max-message-id"
REPLAY_MORE_HEADER = (stomp_headers.REPLAY_MORE, "true")
ROOM_TOPIC_PREFIX = "/topic/room."


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    room: str
    after_id: int


class _SystemSink:
    """The relay's idea of who publishes chat events: the node itself (no reply queues)."""

    session_id = "chat-layer"
    user: str | None = None

    def deliver(self, subscription_id: str, message: object, ack_id: str | None) -> None:
        return None


class ChatBridge:
    def __init__(
        self,
        layer: ChatLayer,
        lease: NodeLease,
        redis: aioredis.Redis,
        store: MessageReader | None,
        replay_limit: int,
        seed_order: Callable[[str, int, int], None] = lambda key, seq, top: None,
    ) -> None:
        self.seed_order = seed_order
        self.layer = layer
        #: Whether a SEND to a destination is the chat layer's (the layer's own check, bound
        #: once: every SEND asks).
        self.handles: Callable[[str], bool] = layer.handles
        self.lease = lease
        self.redis = redis
        self.store = store
        self.replay_limit = replay_limit

    async def handle_send(
        self, user: str, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        await self.layer.handle_send(user, destination, headers, body)

    def replay_request(self, destination: str, headers: Mapping[str, str]) -> ReplayRequest | None:
        """The catch-up a SUBSCRIBE (its destination, its headers, first occurrence of each)
        asks for, or None; `ChatError` for a bad header.

        Checked before the subscription is bound, so a bad header binds nothing.
        """
        raw = headers.get(REPLAY_HEADER)
        if raw is None or not destination.startswith(ROOM_TOPIC_PREFIX):
            return None
        room = destination[len(ROOM_TOPIC_PREFIX) :]
        if not is_valid_room(room):
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
            raise ChatError(
                f"invalid {REPLAY_HEADER} header: '{raw[:40]}'",
                "it must be the decimal id of the last message this device has",
            )
        return ReplayRequest(room, int(raw))

    async def replay(self, request: ReplayRequest) -> list[ReplayItem]:
        """The messages a catch-up SUBSCRIBE missed, oldest first, at most ``replay_limit``.

        When more were missed, the last item carries ``stompgate-replay-more: true``: the
        client fetches the rest with ``GET /api/rooms/{room}/messages?after=<its id>`` (live
        messages keep coming meanwhile; merge by id). `StoreBehindError` when the store has
        not caught up with what left the recent cache.
        """
        # The room's counter is read after the binding and before the replay: every post
        # numbered up to it is in the replay, so the node's room order starts right after it
        # (unless the node follows the room already), and no live post can overtake another.
        seq, newest = await self.layer.position(request.room)
        self.seed_order(ROOM_TOPIC_PREFIX[len("/topic/") :] + request.room, seq + 1, newest)
        items = await self.layer.replay(request.room, request.after_id, self.replay_limit + 1)
        if len(items) <= self.replay_limit:
            return items
        items = items[: self.replay_limit]
        last = items[-1]
        items[-1] = ReplayItem(
            last.message_id, last.destination, (*last.headers, REPLAY_MORE_HEADER), last.body
        )
        return items

    async def close(self) -> None:
        await self.layer.close()
        await self.lease.release()
        closer = getattr(self.store, "close", None)
        if closer is not None:
            await closer()
        await self.redis.aclose()


async def _identity(access: Access, request: web.Request) -> Identity:
    """Who an HTTP request comes from, authenticated like a CONNECT: a bearer token, or (in
    development mode) HTTP Basic with a dev login; HTTPUnauthorized otherwise."""
    login: str | None = None
    passcode: str | None = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPUnauthorized(reason="malformed Basic credentials") from None
        login, _, passcode = decoded.partition(":")
    try:
        return await access.authenticate(
            login, passcode, (), access.handshake_token(request), time.time()
        )
    except AuthError as exc:
        raise web.HTTPUnauthorized(reason=exc.message) from None


def request_user(access: Access) -> Callable[[web.Request], Awaitable[str]]:
    """The user an HTTP request is authenticated as (for the `/api/me/...` routes)."""

    async def user(request: web.Request) -> str:
        return (await _identity(access, request)).user

    return user


def _authorizer(access: Access) -> Authorize:
    async def authorize(request: web.Request, room: str) -> str:
        identity = await _identity(access, request)
        try:
            await access.authorize_subscribe(identity, ROOM_TOPIC_PREFIX + room)
        except AuthError as exc:
            raise web.HTTPUnauthorized(reason=exc.message) from None
        except (AccessDenied, DestinationRejected) as exc:
            raise web.HTTPForbidden(reason=exc.message) from None
        return identity.user

    return authorize


async def build_chat(
    settings: Settings, relay: Relay, access: Access, app: web.Application
) -> ChatBridge:
    redis = aioredis.Redis.from_url(settings.redis_url)
    lease = NodeLease(redis, key_prefix=f"{settings.redis_prefix}snowflake:")
    await lease.acquire()
    store: MessageReader | None = None
    if settings.store:
        from store import open_store

        opened = open_store(settings.store)
        await opened.open()
        store = opened
    sink = _SystemSink()

    async def publish(destination: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        await relay.publish(sink, destination, headers, body)

    layer = ChatLayer(
        redis=redis,
        key_prefix=settings.redis_prefix,
        ids=lease,
        clock=lambda: time.time_ns() // 1_000_000,
        publish=publish,
        store=store,
        recent_limit=settings.chat_recent_limit,
        max_body=settings.chat_max_body,
    )
    app.router.add_routes(history_routes(reader=store, chat=layer, authorize=_authorizer(access)))
    log.info(
        "chat layer on: snowflake node id %d, history store %s",
        lease.node_id,
        settings.store or "none (recent cache only)",
    )
    return ChatBridge(
        layer, lease, redis, store, settings.chat_replay_limit, seed_order=relay.seed_order
    )
