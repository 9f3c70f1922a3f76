"""The notify worker on the state a real gateway keeps (an in-process node in development mode,
its rooms in a SQLite store the worker reads too): a room made through the rooms API, a
member whose presence is set by a live STOMP session, messages posted through the chat layer.
Nothing is arranged behind the gateway's back: the worker must read what the gateway wrote."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.presence import PresenceSettings
from gateway.settings import Settings
from tests.support.gateway_proc import free_port
from tests.support.security import StompPeer
from tests.workers.amqp import wait_for

from .conftest import WINDOW, Env

GRACE = 1.5
PRESENCE = PresenceSettings(grace=GRACE, lease=0.5, interval=0.1)
QUIET = WINDOW * 3


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = basic("alice", "pw-a")
BOB = basic("bob", "pw-b")


@pytest.fixture
async def node(
    env: Env, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("STOMPGATE_MEMBERSHIP_PREFIX", env.prefix)  # as the worker reads it
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        stomp_host="127.0.0.1",
        stomp_port=free_port(),
        amqp_url=env.url,
        redis_url=redis_url,
        redis_prefix=env.prefix,
        auth="dev",
        dev_users="alice:pw-a,bob:pw-b",
        node_id="gw-notify-state",
        store=f"sqlite:///{tmp_path / 'chat.db'}",
    )
    gateway = Gateway(settings, presence=PRESENCE)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def call(
    http: aiohttp.ClientSession, method: str, path: str, auth: dict[str, str], body: Any = None
) -> Any:
    async with http.request(method, path, json=body, headers=auth) as reply:
        assert reply.status < 300, (reply.status, await reply.text())
        return await reply.json()


async def status_of(http: aiohttp.ClientSession, user: str) -> str:
    snapshot = await call(http, "GET", f"/api/presence?users={user}", ALICE)
    status: str = snapshot["users"][0]["status"]
    return status


async def wait_status(http: aiohttp.ClientSession, user: str, want: str, within: float) -> None:
    deadline = time.monotonic() + within
    while await status_of(http, user) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} not {want} after {within} s")
        await asyncio.sleep(0.05)


async def session(stack: AsyncExitStack, node: Gateway, user: str, password: str) -> StompPeer:
    peer = await stack.enter_async_context(StompPeer.tcp(node.stomp_port))
    frame = await peer.connect(headers=(("login", user), ("passcode", password)))
    assert frame.command == "CONNECTED", frame
    return peer


async def post(peer: StompPeer, room: str, text: str) -> None:
    body = json.dumps({"client_id": uuid.uuid4().hex, "text": text})
    receipt = f"post-{uuid.uuid4().hex[:8]}"
    await peer.send_frame(
        "SEND", {"destination": f"/app/rooms/{room}/messages", "receipt": receipt}, body
    )
    await peer.receipt(receipt)


async def test_push_only_when_the_member_is_away_with_the_rooms_api_s_unread_count(
    env: Env, node: Gateway, tmp_path: Path
) -> None:
    await env.webpush("bob", "bob-phone")
    async with (
        aiohttp.ClientSession(f"http://127.0.0.1:{node.http_port}") as http,
        AsyncExitStack() as stack,
    ):
        made = await call(http, "POST", "/api/rooms", ALICE, {"name": "Team", "members": ["bob"]})
        room = made["id"]
        await env.start(store_url=f"sqlite:///{tmp_path / 'chat.db'}")
        alice = await session(stack, node, "alice", "pw-a")

        async with StompPeer.tcp(node.stomp_port) as bob:
            frame = await bob.connect(headers=(("login", "bob"), ("passcode", "pw-b")))
            assert frame.command == "CONNECTED", frame
            await wait_status(http, "bob", "online", 10)
            await post(alice, room, "bob is here: no push")
            await asyncio.sleep(WINDOW + QUIET)
            assert env.services.pushes == []
        await wait_status(http, "bob", "offline", GRACE + 10)  # gone, and the grace is over

        await post(alice, room, "first while away")
        await post(alice, room, "second while away")
        await wait_for(lambda: len(env.services.pushes) == 1, 10, "bob's push")
        await asyncio.sleep(QUIET)
        [push] = env.services.pushes  # one for the burst: the window collapses them
        assert (push.path, push.payload["room"]) == ("/push/bob-phone", room)
        assert push.payload["body"] == "second while away"
        mine = await call(http, "GET", "/api/rooms", BOB)
        [listed] = [r for r in mine["rooms"] if r["id"] == room]
        assert listed["unread"] == 3
        assert push.payload["data"]["unread"] == listed["unread"]
