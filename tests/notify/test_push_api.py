"""The gateway's push API (`/api/me/push-subscriptions`, `/api/me/mutes`) on an in-process
node in development mode, its subscriptions in the SQLite store; and one subscription
registered through it reaching the browser's push endpoint through the notify worker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.settings import Settings
from store import SQLitePushStore
from tests.support.gateway_proc import free_port
from tests.workers.amqp import wait_for

from .conftest import Env
from .fakes import Browser
from .test_worker import post


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = basic("alice", "pw-a")
BOB = basic("bob", "pw-b")
API = "/api/me/push-subscriptions"


def webpush_body(endpoint: str, browser: Browser) -> dict[str, object]:
    """What a browser's `PushSubscription.toJSON()` gives."""
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": browser.p256dh, "auth": browser.auth_b64},
    }


async def start_gateway(amqp_url: str, redis_url: str, redis_prefix: str, store: str) -> Gateway:
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        stomp_host="127.0.0.1",
        stomp_port=free_port(),
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        auth="dev",
        dev_users="alice:pw-a,bob:pw-b",
        node_id="gw-push-api",
        store=store,
    )
    node = Gateway(settings)
    await node.start()
    return node


@pytest.fixture
async def api(
    amqp_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    node = await start_gateway(
        amqp_url, redis_url, redis_prefix, f"sqlite:///{tmp_path / 'chat.db'}"
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{node.http_port}") as http:
            yield http, str(tmp_path / "chat.db")
    finally:
        await node.stop()


async def test_register_list_and_remove_subscriptions(
    api: tuple[aiohttp.ClientSession, str],
) -> None:
    http, path = api
    browser = Browser()
    endpoint = "https://fcm.googleapis.com/fcm/send/abc:def"
    async with http.post(API, json=webpush_body(endpoint, browser), headers=BOB) as r:
        assert r.status == 201
        web = await r.json()
    assert web["kind"] == "webpush"
    assert web["endpoint"] == endpoint
    async with http.post(API, json=webpush_body(endpoint, browser), headers=BOB) as r:
        assert r.status == 200  # the same browser again: same id
        assert (await r.json())["id"] == web["id"]
    async with http.post(API, json={"kind": "fcm", "token": "fcm:tok-1"}, headers=BOB) as r:
        assert r.status == 201
        fcm = await r.json()
    async with http.post(API, json={"kind": "apns", "token": "AB" * 32}, headers=BOB) as r:
        assert r.status == 201
        assert (await r.json())["token"] == "ab" * 32
    async with http.get(API, headers=BOB) as r:
        listed = (await r.json())["subscriptions"]
    assert [s["kind"] for s in listed] == ["webpush", "fcm", "apns"]
    async with http.get(API, headers=ALICE) as r:
        assert (await r.json())["subscriptions"] == []  # only one's own
    async with http.delete(f"{API}/{fcm['id']}", headers=ALICE) as r:
        assert r.status == 404  # not alice's
    async with http.delete(f"{API}/{fcm['id']}", headers=BOB) as r:
        assert r.status == 204
    async with http.delete(f"{API}/{fcm['id']}", headers=BOB) as r:
        assert r.status == 404
    store = SQLitePushStore(path)  # durable: in the store's file, not in Redis
    await store.open()
    try:
        assert [s.kind for s in await store.subscriptions("bob")] == ["webpush", "apns"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"kind": "webpush", "endpoint": "https://push.example/x", "keys": "k"}, "`keys`"),
        (
            {"endpoint": "http://push.example/x", "keys": {"p256dh": "A" * 87, "auth": "A" * 22}},
            "https://",
        ),
        (
            {"endpoint": "https://p.example/x", "keys": {"p256dh": "AAAA", "auth": "A" * 22}},
            "P-256",
        ),
        ({"kind": "fcm", "token": "has space"}, "FCM"),
        ({"kind": "apns", "token": "xyz"}, "APNs"),
        ({"kind": "sms", "token": "1"}, "`kind`"),
        ([1, 2], "JSON object"),
    ],
)
async def test_bad_subscriptions_are_refused(
    api: tuple[aiohttp.ClientSession, str], body: object, error: str
) -> None:
    http, _ = api
    async with http.post(API, json=body, headers=BOB) as r:
        assert r.status == 400
        assert error in (await r.json())["error"]


async def test_authentication_is_required(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, _ = api
    async with http.get(API) as r:
        assert r.status == 401
    async with http.get(API, headers=basic("bob", "wrong")) as r:
        assert r.status == 401
    async with http.put("/api/me/mutes/general") as r:
        assert r.status == 401


async def test_mute_and_unmute_rooms(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, _ = api
    for room in ("general", "random"):
        async with http.put(f"/api/me/mutes/{room}", headers=BOB) as r:
            assert r.status == 204
    async with http.get("/api/me/mutes", headers=BOB) as r:
        assert await r.json() == {"rooms": ["general", "random"]}
    async with http.delete("/api/me/mutes/general", headers=BOB) as r:
        assert r.status == 204
    async with http.get("/api/me/mutes", headers=BOB) as r:
        assert await r.json() == {"rooms": ["random"]}
    async with http.get("/api/me/mutes", headers=ALICE) as r:
        assert await r.json() == {"rooms": []}
    async with http.put("/api/me/mutes/not.a.room", headers=BOB) as r:
        assert r.status == 400


async def test_without_a_store_the_api_says_so(
    amqp_url: str, redis_url: str, redis_prefix: str
) -> None:
    node = await start_gateway(amqp_url, redis_url, redis_prefix, "")
    try:
        url = f"http://127.0.0.1:{node.http_port}{API}"
        async with aiohttp.ClientSession() as http, http.get(url, headers=BOB) as r:
            assert r.status == 503
            assert "--store" in (await r.json())["error"]
    finally:
        await node.stop()


async def test_a_browser_registered_through_the_api_gets_the_push(env: Env, redis_url: str) -> None:
    node = await start_gateway(env.url, redis_url, env.prefix, f"sqlite:///{env.store.path}")
    try:
        endpoint, browser = env.services.endpoint("bob-browser")
        async with aiohttp.ClientSession(f"http://127.0.0.1:{node.http_port}") as http:
            async with http.post(API, json=webpush_body(endpoint, browser), headers=BOB) as r:
                assert r.status == 201
            async with http.put("/api/me/mutes/muted-room", headers=BOB) as r:
                assert r.status == 204
        await env.members("lobby", "alice", "bob")
        await env.members("muted-room", "alice", "bob")
        await env.start()
        await post(env, "muted-room", 1, "you will not see this")
        await post(env, "lobby", 2, "you will see this")
        await wait_for(lambda: len(env.services.pushes) == 1, 10, "bob's push")
        await asyncio.sleep(1.0)
        [push] = env.services.pushes
        assert (push.payload["room"], push.payload["body"]) == ("lobby", "you will see this")
    finally:
        await node.stop()
