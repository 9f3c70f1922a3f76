"""Profiles on the gateway: the token's language claim, its recorder (a lifecycle listener),
and the profile API, over a real SQLite profile store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.auth.identity import Identity
from gateway.chat.profile_api import profile_routes
from gateway.chat.profiles import ClaimRecorder, ProfileService, token_lang
from store import Profile, SQLiteProfileStore


@pytest.fixture
async def profiles() -> AsyncIterator[SQLiteProfileStore]:
    store = SQLiteProfileStore(":memory:")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def ms() -> int:
    return 1_700_000_000_000


@pytest.mark.parametrize(
    ("claims", "claim", "expected"),
    [
        ({"locale": "es"}, "locale", "es"),
        ({"locale": "pt_BR"}, "locale", "pt-BR"),
        ({"locale": " de-CH "}, "locale", "de-CH"),
        ({"profile": {"lang": "fr"}}, "profile.lang", "fr"),
        ({"locale": "es"}, "", None),  # no claim configured
        ({}, "locale", None),
        ({"locale": 5}, "locale", None),
        ({"locale": "not a language"}, "locale", None),
        ({"locale": "es\n"}, "locale", "es"),  # stripped
        ({"locale": "e"}, "locale", None),
        ({"profile": "fr"}, "profile.lang", None),
        ({"locale": "x" * 40}, "locale", None),
    ],
)
def test_the_token_s_language(claims: dict[str, Any], claim: str, expected: str | None) -> None:
    assert token_lang(claims, claim) == expected


@dataclass
class Conn:
    identity: Identity | None


async def test_the_recorder_writes_a_claim_once_and_only_changes(
    profiles: SQLiteProfileStore,
) -> None:
    recorder = ClaimRecorder(profiles, claim="locale", clock=ms)
    recorder.on_opened(Conn(None))
    recorder.on_authenticated(Conn(None))  # not authenticated: nothing
    alice = Identity("alice", claims={"locale": "es"})
    for _ in range(3):  # three devices connect
        recorder.on_authenticated(Conn(alice))
    recorder.on_authenticated(Conn(Identity("bob")))  # no claim: nothing
    await recorder.flush()
    assert await profiles.profile("alice") == Profile("alice", "", "es", ms())
    assert await profiles.profile("bob") is None
    written: list[str] = []
    original = profiles.record_token_lang

    async def counting(user: str, lang: str, *, at: int) -> bool:
        written.append(f"{user}:{lang}")
        return await original(user, lang, at=at)

    profiles.record_token_lang = counting  # type: ignore[method-assign]
    recorder.on_authenticated(Conn(alice))  # the same claim again: no write
    recorder.on_authenticated(Conn(Identity("alice", claims={"locale": "fr"})))
    await recorder.flush()
    assert written == ["alice:fr"]
    found = await profiles.profile("alice")
    assert found is not None
    assert found.token_lang == "fr"
    recorder.on_closed(Conn(alice), "disconnect")
    recorder.on_activity([Conn(alice)])
    await recorder.close()


async def test_the_recorder_never_blocks_nor_raises(profiles: SQLiteProfileStore) -> None:
    recorder = ClaimRecorder(profiles, claim="locale", clock=ms, queue=2)
    for i in range(5):  # more than the queue holds, before the writer ran
        recorder.on_authenticated(Conn(Identity(f"u{i}", claims={"locale": "de"})))
    assert recorder.dropped == 3
    await recorder.flush()
    assert {p.user for p in await profiles.profiles([f"u{i}" for i in range(5)])} == {"u0", "u1"}
    await profiles.close()  # the store fails now: logged, not raised
    recorder.note("u9", "it")
    await recorder.flush()
    await recorder.close()
    await profiles.open()


async def test_the_recorder_forgets_the_oldest_users(profiles: SQLiteProfileStore) -> None:
    recorder = ClaimRecorder(profiles, claim="locale", clock=ms, remembered=2)
    written: list[str] = []
    original = profiles.record_token_lang

    async def counting(user: str, lang: str, *, at: int) -> bool:
        written.append(user)
        return await original(user, lang, at=at)

    profiles.record_token_lang = counting  # type: ignore[method-assign]
    for user in ("a", "b", "c"):
        recorder.note(user, "es")
        await recorder.flush()
    recorder.note("a", "es")  # forgotten: asked again (the store changes nothing)
    recorder.note("c", "es")  # remembered: not asked
    await recorder.flush()
    assert written == ["a", "b", "c", "a"]
    assert (await profiles.profile("a")) == Profile("a", "", "es", ms())
    await recorder.close()


@pytest.fixture
async def client(profiles: SQLiteProfileStore) -> AsyncIterator[TestClient[Any, Any]]:
    async def identify(request: web.Request) -> Identity:
        user = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not user:
            raise web.HTTPUnauthorized(reason="missing token")
        claims = {"locale": request.headers["X-Locale"]} if "X-Locale" in request.headers else {}
        return Identity(user, claims=claims)

    app = web.Application()
    service = ProfileService(profiles, claim="locale", clock=ms)
    app.add_routes(profile_routes(profiles=service, identify=identify))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def call(
    client: TestClient[Any, Any], method: str, user: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    reply = await client.request(
        method,
        "/api/me/profile",
        json=body,
        headers={"Authorization": f"Bearer {user}", **headers},
    )
    return reply.status, await reply.json()


async def test_the_profile_api(client: TestClient[Any, Any]) -> None:
    assert await call(client, "GET", "alice") == (200, {"v": 1, "user": "alice"})
    status, body = await call(client, "GET", "alice", **{"X-Locale": "en_GB"})
    assert (status, body) == (
        200,
        {"v": 1, "user": "alice", "token_lang": "en-GB", "preferred_lang": "en-GB"},
    )
    status, body = await call(client, "PUT", "alice", {"lang": "es"})
    assert body == {
        "v": 1,
        "user": "alice",
        "lang": "es",
        "token_lang": "en-GB",
        "preferred_lang": "es",  # the choice wins over the token
    }
    status, body = await call(client, "PUT", "alice", {})  # cleared: the token's applies
    assert body["preferred_lang"] == "en-GB"
    assert "lang" not in body
    status, body = await call(client, "PUT", "alice", {"lang": "es", "user": "mallory"})
    assert status == 400
    assert "user" in body["error"]
    assert "schemas/users.profile_update.v1.json" in body["detail"]
    status, body = await call(client, "PUT", "alice", {"lang": "no way"})
    assert status == 400
    reply = await client.get("/api/me/profile")
    assert reply.status == 401


async def test_concurrent_recorders_and_api_writes_agree(profiles: SQLiteProfileStore) -> None:
    recorder = ClaimRecorder(profiles, claim="locale", clock=ms)
    service = ProfileService(profiles, claim="locale", clock=ms)
    recorder.note("zoe", "de")
    await asyncio.gather(recorder.flush(), service.set_lang("zoe", "es"))
    found = await service.profile("zoe")
    assert (found.lang, found.token_lang, found.preferred_lang) == ("es", "de", "es")
    await recorder.close()
