"""Wires the chat layer (:mod:`gateway.chat`) into a gateway node.

* ``/app/...`` SENDs go to :class:`~gateway.chat.layer.ChatLayer`, which publishes through the
  node's relay (so a chat RECEIPT, too, means the broker confirmed).
* Subscribe-time catch-up: a SUBSCRIBE to ``/topic/room.<room>`` with a ``cur-max-message-id``
  header first gets every message of the room after that id (Redis recent cache, then the
  store), then live ones, with no gap and no duplicate. See :meth:`ChatBridge.replay`; the
  node's :class:`~gateway.router.Router` binds it, and
  :class:`~gateway.chat.catch_up.CatchUpSink` holds and de-duplicates the live ones.
* ``GET /api/rooms/{room}/messages``, authenticated like a CONNECT (a bearer token; in
  development mode HTTP Basic with a dev login: `gateway.access.Access.authenticate_request`)
  and allowed when the user may SUBSCRIBE to the room's topic (:func:`room_authorizer`); with
  the members' read pointers ("seen by") in small rooms.
* With a store: rooms and membership (`gateway.chat.rooms`, its HTTP API in
  `gateway.chat.rooms_api`, authenticated the same way), whose Redis roster the ACL reads
  (`build_rooms`, made before the access policy: its membership answers the ACL's cache
  misses from the store); a removal is broadcast to every node (`gateway.chat.control`),
  which ends the removed user's subscriptions to the room (``evict``, the node's), forgets
  the ACL's cached answer and ends the typing the user showed there
  (:meth:`~gateway.chat.layer.ChatLayer.member_removed`); unread counts go to
  ``/user/<reader>/queue/unread`` through the relay's user exchange, and a SUBSCRIBE to
  ``/user/queue/unread`` first gets a snapshot of all the user's rooms.
  :func:`request_user` authenticates the same way for the ``/api/me/...`` routes (push
  subscriptions and mutes, :mod:`gateway.chat.push_api`).
* With a store: profiles (`gateway.chat.profiles`, its HTTP API ``/api/me/profile`` in
  `gateway.chat.profile_api`): the language each user reads, chosen or claimed by the
  token, which the node records at CONNECT (`build_profiles`: its recorder is a lifecycle
  listener of the node); the translations the translation worker stored, which the history
  API and a catch-up replay carry with their messages.
* Typing ends when the session that typed leaves the room or is gone
  (:meth:`ChatBridge.left_room`, :meth:`ChatBridge.session_gone`; the router calls them).
* The Snowflake node id is leased in Redis for as long as the node runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from chatstate.amqp_urls import split_amqp_urls
from chatstate.deployment import Namespace, claim_namespace, lease_key_prefix
from chatstate.keys import ChatKeys
from gateway import stomp_headers
from gateway.access import Access, AccessDenied, DestinationRejected, node_redis
from gateway.chat import events
from gateway.chat.control import MembershipControl
from gateway.chat.destinations import is_valid_room, room_topic
from gateway.chat.errors import (
    ChatError,
    RemovedFromRoomError,
    StoreBehindError,
    StoreUnreachableError,
)
from gateway.chat.history_api import Authorize, history_routes
from gateway.chat.layer import UNREAD_QUEUE, ChatLayer, ChatResult, PublishFn, ReplayItem
from gateway.chat.membership import Membership
from gateway.chat.node_lease import NodeLease
from gateway.chat.profile_api import profile_routes
from gateway.chat.profiles import ClaimRecorder, ProfileService
from gateway.chat.rooms import Actor, RoomService
from gateway.chat.rooms_api import Authenticate, rooms_routes
from gateway.chat.snowflake import MAX_ID
from gateway.chat.store_api import HistoryStore, ProfileStore, RoomStore, TranslationStore
from gateway.chat.typing import TypingSettings
from gateway.delivery import SystemSink
from gateway.errors import ClientError, ErrorMessage
from gateway.relay import Relay
from gateway.relay.destinations import UserQueue
from gateway.settings import Settings
from store import UNAVAILABLE_ERRORS

__all__ = [
    "REPLAY_HEADER",
    "ROOM_TOPIC_PREFIX",
    "ChatBridge",
    "ChatError",
    "StoreBehindError",
    "build_chat",
    "relay_publisher",
    "request_user",
    "room_authorizer",
]

log = logging.getLogger("stompgate.chat")

UNREAD_DESTINATION = f"/user/queue/{UNREAD_QUEUE}"
"""A SUBSCRIBE here first gets the unread snapshot of all the user's rooms."""

Evict = Callable[[str, str, ClientError], int]
"""(user, destination, error): end that user's sessions subscribed there (the node's)."""

REPLAY_HEADER = "cur-max-message-id"
REPLAY_MORE_HEADER = (stomp_headers.REPLAY_MORE, "true")
ROOM_TOPIC_PREFIX = "/topic/room."


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    room: str
    after_id: int


def post_receipt_headers(result: ChatResult) -> tuple[tuple[str, str], ...]:
    """What the RECEIPT of an ``/app`` SEND carries besides ``receipt-id``."""
    if result.action != "messages" or result.message_id is None:
        return ()
    found = ((stomp_headers.MESSAGE_ID, str(result.message_id)),)
    return (*found, (stomp_headers.DUPLICATE, "true")) if result.duplicate else found


@dataclass(frozen=True, slots=True)
class RoomsParts:
    """What rooms need that the access policy needs too: made first (`build_rooms`)."""

    redis: aioredis.Redis
    store: RoomStore
    membership: Membership


@dataclass(frozen=True, slots=True)
class ProfileParts:
    """Profiles, made before the node (whose lifecycle listener the recorder is)."""

    store: ProfileStore
    recorder: ClaimRecorder


def build_profiles(settings: Settings) -> ProfileParts | None:
    """The profile store (not opened yet) and the recorder of tokens' language claims, with
    a store only."""
    if not settings.store:
        return None
    from store import open_profile_store

    store = open_profile_store(settings.store)
    return ProfileParts(store, ClaimRecorder(store, claim=settings.lang_claim, clock=_clock))


def build_rooms(settings: Settings, roster_prefix: str) -> RoomsParts | None:
    """The room store (not opened yet) and the membership caches, with a store only.

    ``roster_prefix``: the ACL's membership prefix, under which the rosters live."""
    if not settings.store:
        return None
    from store import open_room_store

    redis = node_redis(settings, "chat")
    store = open_room_store(settings.store)
    membership = Membership(
        redis, ChatKeys(settings.redis_prefix), store, roster_prefix=roster_prefix
    )
    return RoomsParts(redis, store, membership)


class ChatBridge:
    def __init__(
        self,
        layer: ChatLayer,
        lease: NodeLease,
        redis: aioredis.Redis,
        store: HistoryStore | None,
        replay_limit: int,
        seed_order: Callable[[str, int, int], None] = lambda key, seq, top: None,
        *,
        rooms: RoomService | None = None,
        control: MembershipControl | None = None,
        translations: TranslationStore | None = None,
        profiles: ProfileParts | None = None,
    ) -> None:
        self.rooms = rooms
        self.control = control
        self.translations = translations
        self.profiles = profiles
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
        self,
        user: str,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        session: str = "",
    ) -> tuple[tuple[str, str], ...]:
        """Handle an ``/app`` SEND of ``session``; the headers its RECEIPT carries: for a post,
        the message id (``stompgate-message-id``; for a retry the original one, with
        ``stompgate-duplicate: true``)."""
        result = await self.layer.handle_send(user, destination, headers, body, session=session)
        return post_receipt_headers(result)

    def room_of(self, destination: str) -> str | None:
        """The room of a ``/topic/room.<room>`` destination, or None."""
        if not destination.startswith(ROOM_TOPIC_PREFIX):
            return None
        room = destination[len(ROOM_TOPIC_PREFIX) :]
        return room if is_valid_room(room) else None

    async def left_room(self, session: str, room: str) -> None:
        """``session`` unsubscribed from the room's topic: the typing it showed there ends
        (never raises: the UNSUBSCRIBE itself went through)."""
        await _quietly(self.layer.left_room(session, room), session)

    async def session_gone(self, session: str) -> None:
        """``session`` is gone: the typing it showed ends (never raises)."""
        await _quietly(self.layer.session_gone(session), session)

    def replay_request(self, destination: str, headers: Mapping[str, str]) -> ReplayRequest | None:
        """The catch-up a SUBSCRIBE (its destination, its headers, first occurrence of each)
        asks for, or None; `ChatError` for a bad header.

        Checked before the subscription is bound, so a bad header binds nothing.
        """
        raw = headers.get(REPLAY_HEADER)
        if raw is None:
            return None
        room = self.room_of(destination)
        if room is None:
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
            raise ChatError(
                f"invalid {REPLAY_HEADER} header: '{raw[:40]}'",
                "it must be the decimal id of the last message this device has",
                message=ErrorMessage.INVALID_HEADER,
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
        if len(items) > self.replay_limit:
            items = items[: self.replay_limit]
            last = items[-1]
            items[-1] = ReplayItem(
                last.message_id, last.destination, (*last.headers, REPLAY_MORE_HEADER), last.body
            )
        return await self._with_translations(items)

    async def _with_translations(self, items: list[ReplayItem]) -> list[ReplayItem]:
        """Each replayed message followed by its stored translations (``event-type:
        translation``, as the translation worker publishes them)."""
        if self.translations is None or not items:
            return items
        found: dict[int, list[ReplayItem]] = {}
        try:
            stored = await self.translations.of_messages([item.message_id for item in items])
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnreachableError(str(exc)) from exc
        for t in stored:
            headers = (*events.translation_headers(), events.REPLAY_HEADER)
            found.setdefault(t.message_id, []).append(
                ReplayItem(t.message_id, items[0].destination, headers, t.event)
            )
        return [each for item in items for each in (item, *found.get(item.message_id, ()))]

    def wants_snapshot(self, destination: str) -> bool:
        """Whether a SUBSCRIBE to ``destination`` first gets the unread snapshot."""
        return destination == UNREAD_DESTINATION and self.rooms is not None

    async def unread_snapshot(self, user: str) -> ReplayItem:
        """chat.unread_snapshot.v1 of all of ``user``'s rooms, as the first MESSAGE of a
        SUBSCRIBE to ``/user/queue/unread``."""
        assert self.rooms is not None
        rooms = await self.rooms.unread_snapshot(user)
        body = events.unread_snapshot_event(rooms=rooms, at=time.time_ns() // 1_000_000)
        headers = events.event_headers("unread-snapshot", user)
        return ReplayItem(0, UNREAD_DESTINATION, headers, body)

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self.layer.close()
        await self.lease.release()
        closer = getattr(self.store, "close", None)
        if closer is not None:
            await closer()
        if self.rooms is not None:
            await self.rooms.store.close()
        if self.translations is not None:
            await self.translations.close()
        if self.profiles is not None:
            await self.profiles.recorder.close()
            await self.profiles.store.close()
        await self.redis.aclose()


async def _quietly(ending: Awaitable[None], session: str) -> None:
    try:
        await ending
    except Exception:
        log.warning("could not end the typing of session %s", session, exc_info=True)


def request_user(access: Access) -> Callable[[web.Request], Awaitable[str]]:
    """The user an HTTP request is authenticated as (for the `/api/me/...` routes)."""

    async def user(request: web.Request) -> str:
        return (await access.authenticate_request(request)).user

    return user


def room_authorizer(access: Access) -> Authorize:
    """(request, room) -> user: authenticated like a CONNECT, and allowed to SUBSCRIBE to the
    room's topic; 401 or 403 otherwise (the history and presence APIs)."""

    async def authorize(request: web.Request, room: str) -> str:
        identity = await access.authenticate_request(request)
        try:
            await access.authorize_subscribe(identity, ROOM_TOPIC_PREFIX + room)
        except (AccessDenied, DestinationRejected) as exc:
            raise web.HTTPForbidden(reason=exc.detail) from None
        return identity.user

    return authorize


def relay_publisher(relay: Relay, name: str) -> PublishFn:
    """Publishes on the node's own account (not a client's: the relay's client is a
    `SystemSink` called ``name``) through the relay; returns once the broker confirmed."""
    sink = SystemSink(name)

    async def publish(destination: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        await relay.publish(sink, destination, headers, body)

    return publish


def _authenticator(access: Access) -> Authenticate:
    async def authenticate(request: web.Request) -> Actor:
        identity = await access.authenticate_request(request)
        return Actor(identity.user, identity.roles)

    return authenticate


def _clock() -> int:
    return time.time_ns() // 1_000_000


async def check_namespace(settings: Settings, redis: aioredis.Redis) -> None:
    """Refuse to issue ids (`NamespaceClashError`) unless this deployment's name and topic
    exchange belong to its node-id lease namespace (`chatstate.deployment`)."""
    me = Namespace(
        settings.deployment,
        settings.topic_exchange,
        settings.redis_url,
        settings.redis_prefix,
        who=f"gateway node {settings.node_id}",
    )
    await claim_namespace(split_amqp_urls(settings.broker_url), redis, me)


async def build_chat(
    settings: Settings,
    relay: Relay,
    access: Access,
    app: web.Application,
    *,
    rooms: RoomsParts | None = None,
    evict: Evict | None = None,
    profiles: ProfileParts | None = None,
    typing: TypingSettings | None = None,
    confirm_latency: Callable[[float], None] | None = None,
) -> ChatBridge:
    """The chat layer, its HTTP routes and, with ``rooms`` (`build_rooms`), the rooms; with
    ``profiles`` (`build_profiles`), the profile API; with a store, the translations that
    history and catch-up carry. ``confirm_latency`` hears how long each post waited for the
    broker's confirm (the node's publish-confirm histogram)."""
    redis = rooms.redis if rooms is not None else node_redis(settings, "chat")
    await check_namespace(settings, redis)
    lease = NodeLease(redis, key_prefix=lease_key_prefix(settings.redis_prefix))
    await lease.acquire()
    store: HistoryStore | None = None
    translations: TranslationStore | None = None
    if settings.store:
        from store import open_store, open_translation_store

        opened = open_store(settings.store)
        await opened.open()
        store = opened
        translations = open_translation_store(settings.store)
        await translations.open()
    if profiles is not None:
        await profiles.store.open()
        service_of_profiles = ProfileService(
            profiles.store, claim=settings.lang_claim, clock=_clock
        )
        app.router.add_routes(
            profile_routes(profiles=service_of_profiles, identify=access.authenticate_request)
        )
    if rooms is not None:
        await rooms.store.open()
    publish = relay_publisher(relay, "chat-layer")  # who publishes chat events: the node itself

    async def notify_user(user: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        await publish(str(UserQueue(UNREAD_QUEUE, user)), headers, body)

    layer = ChatLayer(
        redis=redis,
        key_prefix=settings.redis_prefix,
        ids=lease,
        clock=_clock,
        publish=publish,
        store=store,
        pointers=None if rooms is None else rooms.store,
        notify_user=notify_user,
        rooms_of=None if rooms is None else rooms.membership.rooms_of,
        recent_limit=settings.chat_recent_limit,
        max_body=settings.chat_max_body,
        idempotency_ttl_s=settings.post_idempotency_ttl,
        typing=typing,
        on_post_confirmed=confirm_latency,
    )
    service: RoomService | None = None
    control: MembershipControl | None = None
    if rooms is not None:
        lookup = access.gatekeeper.membership

        async def on_removed(room: str, user: str) -> None:
            if lookup is not None:
                lookup.invalidate(Membership.roster(room), user)
            if evict is not None:
                evict(user, room_topic(room), RemovedFromRoomError(room))
            await layer.member_removed(room, user)

        control = MembershipControl(
            redis, ChatKeys(settings.redis_prefix).control_channel(), on_removed
        )
        await control.start()
        service = RoomService(
            store=rooms.store,
            membership=rooms.membership,
            chat=layer,
            publish=publish,
            clock=_clock,
            group_limit=settings.room_max_members,
            seen_by_limit=settings.seen_by_limit,
            on_removed=control.removed,
        )
        app.router.add_routes(
            rooms_routes(rooms=service, authenticate=_authenticator(access), clock=_clock)
        )
    app.router.add_routes(
        history_routes(
            reader=store,
            chat=layer,
            authorize=room_authorizer(access),
            seen_by=None if service is None else service.seen_by,
            translations=translations,
        )
    )
    log.info(
        "chat layer on: snowflake node id %d, history store %s",
        lease.node_id,
        settings.store or "none (recent cache only)",
    )
    return ChatBridge(
        layer,
        lease,
        redis,
        store,
        settings.chat_replay_limit,
        seed_order=relay.seed_order,
        rooms=service,
        control=control,
        translations=translations,
        profiles=profiles,
    )
