"""The notify worker on the real RabbitMQ (a vhost per test) and Redis (a key prefix per
test), its push and room stores on SQLite; fakes only for the push services themselves.

Room state is arranged as the gateway keeps it: rooms in the room store (the worker reads
their members from there while Redis has no roster), presence through the gateway's presence
steps (a node per online user), room counters and read pointers under `chatstate`'s keys."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.presence.store import PresenceStore
from store import Member, Room, SQLitePushStore, SQLiteRoomStore, new_subscription
from store.push import Kind, PushSubscription
from tests.support import rabbit
from workers.framework import WorkerApp
from workers.notify import NotifySettings, build_app
from workers.notify.apns import ApnsProvider
from workers.notify.fcm import FcmProvider, ServiceAccount
from workers.notify.providers import PushProvider
from workers.notify.settings import GateLimits
from workers.notify.webhook import WebhookProvider
from workers.notify.webpush import WebPushProvider, load_vapid_key
from workers.settings import WorkerSettings

from .fakes import WEBHOOK_SECRET, FakeApns, PushServices, service_account

WINDOW = 0.4
VAPID_KEY = "Zh2VDnAfO2yr6Vk8ooZ0HcBNMQbn4GB4jrRtf-pO-Ls"  # raw base64url P-256 scalar
TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.chat"


@dataclass
class Env:
    """What a test arranges and inspects: room state in Redis and the room store,
    subscriptions in the push store."""

    url: str
    redis: aioredis.Redis
    prefix: str
    store: SQLitePushStore
    rooms: SQLiteRoomStore
    services: PushServices
    http: aiohttp.ClientSession
    tmp: Path
    apps: list[WorkerApp] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    _seq: dict[str, int] = field(default_factory=dict)

    @property
    def keys(self) -> ChatKeys:
        return ChatKeys(self.prefix)

    async def members(self, room: str, *users: str) -> None:
        """A group room of ``users`` in the room store (as the rooms API makes it)."""
        await self.rooms.create_room(
            Room(id=room, kind="group", name=room, lang="", owner=users[0], created_at=1),
            [Member(room, user, "member", 1) for user in users],
        )

    async def online(self, user: str, here: bool = True) -> None:
        """``user`` has a live session (on a node of its own, whose lease lasts the test), or
        not any more."""
        presence = PresenceStore(self.redis, key_prefix=self.prefix, grace_ms=0, lease_ms=60_000)
        node = f"test-node-{user}"
        if here:
            await presence.sync(node, joins=[user], full=True)
        else:
            await presence.retire(node)

    async def posted(self, room: str) -> int:
        """Count a post in the room as the gateway does (its ordinal), for unread counts."""
        self._seq[room] = self._seq.get(room, 0) + 1
        await self.redis.set(self.keys.room_seq(room), self._seq[room])
        return self._seq[room]

    async def read(self, user: str, room: str, message_id: int, seq: int) -> None:
        await self.redis.hset(self.keys.read(room, user), mapping={"id": message_id, "seq": seq})

    async def subscribe(
        self, user: str, kind: Kind, address: str, *, p256dh: str = "", auth: str = ""
    ) -> PushSubscription:
        s = new_subscription(
            user, kind, address, p256dh=p256dh, auth=auth, created_at=int(time.time() * 1000)
        )
        await self.store.save_subscription(s)
        return s

    async def webpush(self, user: str, name: str) -> PushSubscription:
        endpoint, browser = self.services.endpoint(name)
        return await self.subscribe(
            user, "webpush", endpoint, p256dh=browser.p256dh, auth=browser.auth_b64
        )

    def providers(self, *, apns: FakeApns | None = None) -> dict[str, PushProvider]:
        services = self.services
        account_fields, public = service_account(f"{services.url}/token")
        services.fcm_key = public
        key_file = self.tmp / "service-account.json"
        key_file.write_bytes(orjson.dumps(account_fields))
        account = ServiceAccount.from_file(str(key_file))
        chosen: dict[str, PushProvider] = {
            "webpush": WebPushProvider(
                self.http,
                load_vapid_key(VAPID_KEY),
                subject="mailto:ops@chat.example",
                hosts=["127.0.0.1"],
                ttl=3600,
                timeout=5,
            ),
            "webhook": WebhookProvider(self.http, WEBHOOK_SECRET, timeout=5),
            "fcm": FcmProvider(self.http, account, base_url=services.url, timeout=5),
        }
        if apns is not None:
            client = httpx.AsyncClient(http2=True, verify=apns.client_context())
            self.closers.append(client.aclose)
            chosen["apns"] = ApnsProvider(
                client,
                key=apns.key_pem,
                key_id=KEY_ID,
                team_id=TEAM,
                topic=TOPIC,
                base_url=apns.url,
                timeout=5,
            )
        return chosen

    def settings(self, **overrides: Any) -> NotifySettings:
        values: dict[str, Any] = {
            "window": WINDOW,
            "redis_prefix": self.prefix,
            "membership_prefix": self.prefix,
            "max_attempts": 3,
            "backoff": (0.05, 0.1),
            "limits": GateLimits(breaker_failures=50, max_retry_wait=5),
            "webhook_url": None,
        }
        values.update(overrides)
        return NotifySettings(**values)

    async def start(
        self,
        providers: Mapping[str, PushProvider] | None = None,
        *,
        store_url: str | None = None,
        **overrides: Any,
    ) -> WorkerApp:
        """The worker, with this env's push store, and its room store (``store_url``: the
        room store the worker opens itself on that store instead, as in production)."""
        app = build_app(
            WorkerSettings(
                amqp_url=self.url, metrics_port=None, store_url=store_url or "sqlite://:memory:"
            ),
            self.settings(**overrides),
            store=self.store,
            rooms=self.rooms if store_url is None else None,
            providers=providers if providers is not None else self.providers(),
        )
        self.apps.append(app)
        await app.start()
        return app


@pytest.fixture
async def env(
    fresh_vhost: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Env]:
    client = aioredis.Redis.from_url(redis_url)
    store = SQLitePushStore(str(tmp_path / "push.db"))
    await store.open()
    rooms = SQLiteRoomStore(str(tmp_path / "rooms.db"))
    await rooms.open()
    services = PushServices()
    await services.start()
    http = aiohttp.ClientSession()
    e = Env(
        rabbit.amqp_url(fresh_vhost), client, redis_prefix, store, rooms, services, http, tmp_path
    )
    try:
        yield e
    finally:
        for app in e.apps:
            await app.abort()
        for close in reversed(e.closers):  # clients before the servers they talk to
            await close()
        await http.close()
        await services.close()
        await store.close()
        await rooms.close()
        keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
