"""`python -m workers notify`: push notifications to the people who are not there.

Three consumers on the worker framework (queues.py has the queues, notifier.py the rules):

1. `stompgate.notify` takes the room messages the persist worker takes (`amq.topic`
   `room.*`, `event-type: message`, chat.message.v1) and opens collapse windows for the
   room's members who are away;
2. `stompgate.notify.due` gets each window when it closes and queues one notification per
   target, unless the user came back, read the room or muted it;
3. `stompgate.notify.send` sends one notification to one target through its provider's
   gate, and is the one whose retries (`STOMPGATE_NOTIFY_BACKOFF`) and dead-letter queue
   (`stompgate.notify.send.dlq`, after `STOMPGATE_NOTIFY_MAX_ATTEMPTS`) catch a provider
   that keeps failing. Sends are idempotent on their key (Redis), so a redelivered one is
   not sent twice.

Chat never waits for any of it: the gateway publishes once, and these queues fill and drain
on their own. Providers are on when configured (settings.py): Web Push with a VAPID key,
FCM with a service account, APNs with a .p8 key, the webhook with a URL and secret.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

import schemas
from chatstate import ChatKeys, MembershipCache, PresenceReader, RoomMembers, UnreadReader
from chatstate.client import client_name, redis_client
from schemas.models import ChatMessage, PushNotification
from store import open_push_store, open_room_store
from store.push import PushStore
from store.rooms import RoomStore
from workers.framework import Delivery, RedisIdempotency, WorkerApp
from workers.notify.apns import ApnsProvider
from workers.notify.collapse import Collapser
from workers.notify.fcm import FcmProvider, ServiceAccount
from workers.notify.gate import ProviderGate
from workers.notify.notifier import Notifier, NotifyMetrics
from workers.notify.ports import Members, Presence, Unread
from workers.notify.providers import PushProvider
from workers.notify.queues import (
    TARGET_HEADER,
    DueJob,
    NotifyQueues,
    QueueNames,
    decode_due,
)
from workers.notify.settings import NotifySettings
from workers.notify.webhook import WebhookProvider
from workers.notify.webpush import WebPushProvider, load_vapid_key
from workers.settings import WorkerSettings

#: How long a sent notification's key is remembered (a redelivery after that sends again).
SENT_TTL = 86_400.0


@dataclass(slots=True)
class Clients:
    """The HTTP clients the providers share (the worker opens and closes them)."""

    http: aiohttp.ClientSession
    http2: httpx.AsyncClient | None = None

    async def close(self) -> None:
        await self.http.close()
        if self.http2 is not None:
            await self.http2.aclose()


def build_providers(settings: NotifySettings, clients: Clients) -> dict[str, PushProvider]:
    """Every provider the settings configure, by name (= the kind of target it serves)."""
    timeout = settings.limits.timeout
    providers: dict[str, PushProvider] = {}
    if settings.vapid_private_key:
        providers["webpush"] = WebPushProvider(
            clients.http,
            load_vapid_key(settings.vapid_private_key),
            subject=settings.vapid_subject,
            hosts=settings.webpush_hosts,
            ttl=settings.webpush_ttl,
            timeout=timeout,
        )
    if settings.webhook_url and settings.webhook_secret:
        providers["webhook"] = WebhookProvider(
            clients.http, settings.webhook_secret.encode(), timeout=timeout
        )
    if settings.fcm_credentials:
        providers["fcm"] = FcmProvider(
            clients.http,
            ServiceAccount.from_file(settings.fcm_credentials),
            project=settings.fcm_project,
            base_url=settings.fcm_url,
            token_url=settings.fcm_token_url,
            timeout=timeout,
        )
    if settings.apns_key and clients.http2 is not None:
        providers["apns"] = ApnsProvider(
            clients.http2,
            key=Path(settings.apns_key).read_text(encoding="utf-8"),
            key_id=settings.apns_key_id or "",
            team_id=settings.apns_team_id or "",
            topic=settings.apns_topic or "",
            base_url=settings.apns_url,
            ttl=settings.webpush_ttl,
            timeout=timeout,
        )
    return providers


def http2_client(settings: NotifySettings) -> httpx.AsyncClient | None:
    """The HTTP/2 client APNs needs (None when APNs is off)."""
    if not settings.apns_key:
        return None
    verify: ssl.SSLContext | bool = True
    if settings.apns_ca_file:
        verify = ssl.create_default_context(cafile=settings.apns_ca_file)
    return httpx.AsyncClient(http2=True, verify=verify)


def build_app(
    settings: WorkerSettings,
    notify: NotifySettings | None = None,
    *,
    store: PushStore | None = None,
    rooms: RoomStore | None = None,
    members: Members | None = None,
    presence: Presence | None = None,
    unread: Unread | None = None,
    providers: Mapping[str, PushProvider] | None = None,
    name: str = "notify",
) -> WorkerApp:
    """The notify worker. What is passed in is used as is (the caller opens and closes it);
    the rest is made from the settings and opened and closed with the app: the push store
    and, unless ``members`` are given, the room store (`settings.store_url`), Redis, the HTTP
    clients and the providers they configure. Members, presence and unread counts are read
    from the gateway's Redis (`chatstate`)."""
    config = notify or NotifySettings.from_env()
    app = WorkerApp(name)
    app.configure(settings)
    redis = redis_client(config.redis_url, name=client_name("notify", name), max_connections=0)
    keys = ChatKeys(config.redis_prefix)
    push_store = store if store is not None else open_push_store(settings.store_url)
    own_rooms: RoomStore | None = None  # the room store made here, opened with the app
    room_members = members
    if room_members is None:
        if rooms is None:
            rooms = own_rooms = open_room_store(settings.store_url)
        cache = MembershipCache(redis, keys, roster_prefix=config.membership_prefix)
        room_members = RoomMembers(cache, rooms)
    names = QueueNames(settings.deployment)
    queues = NotifyQueues(
        app.amqp_url or settings.broker_url,
        config.window,
        names,
        quorum_group_size=app.quorum_group_size,
        reconnect_interval=app.reconnect_interval or settings.reconnect_interval,
    )
    metrics = NotifyMetrics(app.metrics.registry)
    holder: list[Notifier] = []  # made at startup: the providers need a running loop
    opened: list[Clients] = []

    @app.on_startup
    async def start() -> None:
        if store is None:
            await push_store.open()
        if own_rooms is not None:
            await own_rooms.open()
        chosen = providers
        if chosen is None:
            clients = Clients(aiohttp.ClientSession(), http2_client(config))
            opened.append(clients)
            chosen = build_providers(config, clients)
        await queues.open()
        holder.append(
            Notifier(
                members=room_members,
                presence=presence or PresenceReader(redis, keys),
                unread=unread or UnreadReader(redis, keys),
                store=push_store,
                collapser=Collapser(redis, config.redis_prefix),
                queues=queues,
                gates={n: ProviderGate(p, config.limits) for n, p in chosen.items()},
                webhook_url=config.webhook_url,
                preview_chars=config.preview_chars,
                metrics=metrics,
            )
        )

    @app.on_shutdown
    async def stop() -> None:
        await queues.close()
        for clients in opened:
            await clients.close()
        opened.clear()
        if store is None:
            await push_store.close()
        if own_rooms is not None:
            await own_rooms.close()
        await redis.aclose()

    @app.consumer(
        (),
        exchange="",
        queue=names.send,
        validator=lambda body: schemas.decode(PushNotification, body),
        idempotency=RedisIdempotency(
            redis, prefix=f"{config.redis_prefix}notify:sent:", ttl=SENT_TTL
        ),
        max_attempts=config.max_attempts,
        backoff=config.backoff,
    )
    async def send(msg: Delivery[PushNotification]) -> None:
        target = msg.headers.get(TARGET_HEADER)
        target_id = target.decode() if isinstance(target, bytes) else str(target or "")
        await holder[0].on_send(msg.payload, msg.body, target_id)

    @app.consumer(
        (),
        exchange="",
        queue=names.due,
        validator=decode_due,
        max_attempts=config.max_attempts,
        backoff=config.backoff,
    )
    async def due(msg: Delivery[DueJob]) -> None:
        await holder[0].on_due(msg.payload)

    @app.consumer(
        "room.*",
        exchange=settings.topic_exchange,
        queue=names.queue,
        validator=lambda body: schemas.decode(ChatMessage, body),
        only_headers={"event-type": "message"},
        max_attempts=config.max_attempts,
        backoff=config.backoff,
    )
    async def message(msg: Delivery[ChatMessage]) -> None:
        await holder[0].on_message(msg.payload)

    return app
