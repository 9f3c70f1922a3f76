from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.chat.history_api import history_routes
from gateway.chat.layer import ChatLayer
from store import SQLiteTranslationStore, StoredTranslation
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher

POST = "/app/rooms/general/messages"
URL = "/api/rooms/general/messages"


async def authorize(request: web.Request, room: str) -> str:
    token = request.headers.get("Authorization")
    if token is None:
        raise web.HTTPUnauthorized(reason="missing token")
    if room == "secret":
        raise web.HTTPForbidden(reason="not a member")
    return token.removeprefix("Bearer ")


@pytest.fixture
async def client(chat: ChatLayer, store: InMemoryReader) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app.add_routes(history_routes(reader=store, chat=chat, authorize=authorize))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
async def posted(
    chat: ChatLayer, clock: ManualClock, store: InMemoryReader, publisher: RecordingPublisher
) -> list[int]:
    """12 messages; the cache keeps the newest 5, the store has the oldest 10."""
    ids = []
    for i in range(12):
        clock.advance()
        body = orjson.dumps({"client_id": f"h{i}", "text": f"m{i}"})
        result = await chat.handle_send("alice", POST, [], body)
        assert result.message_id is not None
        ids.append(result.message_id)
    for pub in publisher.published[:10]:
        store.add_event(pub.body)
    return ids


async def get(client: TestClient[Any, Any], url: str = URL, **params: str) -> Any:
    response = await client.get(url, params=params, headers={"Authorization": "Bearer bob"})
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def ids_of(page: Any) -> list[int]:
    return [int(m["id"]) for m in page["messages"]]


async def test_newest_page_from_the_cache(
    client: TestClient[Any, Any], posted: list[int], store: InMemoryReader
) -> None:
    page = await get(client, limit="3")
    assert page["room"] == "general"
    assert ids_of(page) == posted[-3:]
    assert page["next_before"] == str(posted[-3])
    assert page["next_after"] is None
    assert page["messages"][0]["text"] == "m9"
    assert store.calls == []  # the cache covered it


async def test_paging_backwards_through_cache_and_store(
    client: TestClient[Any, Any], posted: list[int]
) -> None:
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"limit": "4"} if cursor is None else {"limit": "4", "before": cursor}
        page = await get(client, **params)
        seen = ids_of(page) + seen
        cursor = page["next_before"]
        if cursor is None:
            break
    assert seen == posted


async def test_paging_forwards(client: TestClient[Any, Any], posted: list[int]) -> None:
    page = await get(client, after="0", limit="7")
    assert ids_of(page) == posted[:7]
    assert page["next_after"] == str(posted[6])
    assert page["next_before"] is None
    page = await get(client, after=page["next_after"], limit="7")
    assert ids_of(page) == posted[7:]
    assert page["next_after"] is None


async def test_default_limit_and_empty_room(client: TestClient[Any, Any]) -> None:
    page = await get(client, "/api/rooms/empty/messages")
    assert page == {"room": "empty", "messages": [], "next_before": None, "next_after": None}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"before": "abc"}, "`before` must be a message id"),
        ({"after": "-1"}, "`after` must be a message id"),
        ({"after": "99999999999999999999"}, "`after` must be a message id"),
        ({"before": "5", "after": "3"}, "give `before` or `after`, not both"),
        ({"limit": "0"}, "`limit` must be an integer from 1 to 200"),
        ({"limit": "201"}, "`limit` must be an integer from 1 to 200"),
        ({"limit": "ten"}, "`limit` must be an integer from 1 to 200"),
    ],
)
async def test_bad_parameters(
    client: TestClient[Any, Any], params: dict[str, str], reason: str
) -> None:
    response = await client.get(URL, params=params, headers={"Authorization": "Bearer bob"})
    assert response.status == 400
    assert (await response.json())["error"].startswith(reason)


async def test_bad_room_id(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/rooms/a.b/messages", headers={"Authorization": "x"})
    assert response.status == 400
    assert "invalid room id" in (await response.json())["error"]


async def test_authorization_is_delegated(client: TestClient[Any, Any]) -> None:
    response = await client.get(URL)
    assert response.status == 401
    assert response.reason == "missing token"
    response = await client.get("/api/rooms/secret/messages", headers={"Authorization": "x"})
    assert response.status == 403


async def test_without_a_store_the_cache_answers_alone(chat: ChatLayer, posted: list[int]) -> None:
    app = web.Application()
    app.add_routes(history_routes(reader=None, chat=chat, authorize=authorize))
    async with TestClient(TestServer(app)) as test_client:
        page = await get(test_client, limit="50")
    assert ids_of(page) == posted[-5:]


async def test_translations_come_with_their_messages(
    chat: ChatLayer, store: InMemoryReader, posted: list[int]
) -> None:
    translations = SQLiteTranslationStore(":memory:")
    await translations.open()
    try:
        for message_id, lang in ((posted[0], "es"), (posted[-1], "fr"), (posted[-1], "de")):
            event = orjson.dumps({"message_id": str(message_id), "lang": lang})
            await translations.insert(
                StoredTranslation(message_id, lang, "general", "apertium", event)
            )
        app = web.Application()
        app.add_routes(
            history_routes(reader=store, chat=chat, authorize=authorize, translations=translations)
        )
        async with TestClient(TestServer(app)) as test_client:
            newest = await get(test_client, limit="3")
            oldest = await get(test_client, after="0", limit="2")
            middle = await get(test_client, after=str(posted[2]), limit="3")
    finally:
        await translations.close()
    last = str(posted[-1])
    assert newest["translations"] == [
        {"message_id": last, "lang": "de"},
        {"message_id": last, "lang": "fr"},
    ]
    assert oldest["translations"] == [{"message_id": str(posted[0]), "lang": "es"}]
    assert middle["translations"] == []
